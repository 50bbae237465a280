"""`kirag bench kirag --sections batching`: reference mode (`mode="reference"`) answering many
questions one at a time (`retrieve`, one engine call per question and turn) against all of them
in lockstep (`retrieve_many`, one engine call per turn holding every running question's prompt),
same engine, model and index, measured in the same run: questions/min of each and in how many
questions the chains differ (they must not where the engine's batched arithmetic equals its
one-at-a-time arithmetic; where padding or batch composition changes logits, this counts it).

The index: spaCy triples + dense documents of a small corpus — the chosen questions' gold
passages and the first `--batching-docs` passages of the sample — built once under --workdir.
"""

from __future__ import annotations

import time
from pathlib import Path


def batching_corpus(questions, documents, size: int) -> list:
    """The questions' gold passages and the first `size` passages, in sample order."""
    keep = {d for q in questions for d in q.gold_doc_ids}
    return [d for i, d in enumerate(documents) if i < size or d.id in keep]


def bench_batching(
    questions, documents, root: Path, engines: list[str], size: int, turns: int = 5
) -> dict:
    """questions/min one at a time vs batched per engine, and the chains that differ."""
    from kirag.knowledge.triple_index import build_from_corpus
    from kirag.rag.pipeline import KiRAG

    index = root / f"batching-{size}-triples"
    if not (index / "manifest.json").exists():
        corpus = batching_corpus(questions, documents, size)
        build_from_corpus(
            corpus, index, extractor="spacy", overwrite=True, with_bm25=False,
            cache=root / "extraction-cache.sqlite",
        )  # fmt: skip
    texts = [q.question for q in questions]
    out: dict = {"questions": len(texts), "index": str(index), "turns": turns, "engines": {}}
    for engine in engines:
        kirag = KiRAG(
            index, mode="reference", constructor_model="smollm2-135m", engine=engine,
            max_turns=turns,
        )  # fmt: skip
        kirag.retrieve(texts[0])  # warm-up: models loaded, caches filled
        start = time.perf_counter()
        alone = [kirag.retrieve(q) for q in texts]
        one_seconds = time.perf_counter() - start
        start = time.perf_counter()
        batched = kirag.retrieve_many(texts)
        batch_seconds = time.perf_counter() - start
        differ = sum(
            [c.steps for c in a.chains] != [c.steps for c in b.chains]
            for a, b in zip(alone, batched, strict=True)
        )
        out["engines"][engine] = {
            "one_at_a_time_qpm": round(60 * len(texts) / one_seconds, 2),
            "batched_qpm": round(60 * len(texts) / batch_seconds, 2),
            "speedup": round(one_seconds / batch_seconds, 3),
            "chains_differ": differ,
            "llm_calls_per_question": round(sum(r.llm_calls for r in batched) / len(texts), 2),
        }
        print(engine, out["engines"][engine], flush=True)
    return out
