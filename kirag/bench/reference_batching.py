"""`kirag bench kirag --sections batching`: reference mode (`mode="reference"`) answering many
questions one at a time (`retrieve`, one engine call per question and turn) against all of them
in lockstep (`retrieve_many`, one engine call per turn holding every running question's prompt),
same engine, model and index, measured in the same run: questions/min of each, in how many
questions the chains differ, and why (the per-turn prompts and greedy outputs of both runs
compared: an identical prompt with another output is the engine's batched arithmetic; a prompt
that differs follows an earlier different output). With `--batching-reference`, a checkout of
jyfang6/kirag at 3098584d, the reference's own loop (`KiRAG.retrieve`, through
benchmarks/reference/kirag_throughput.py) answers the same questions on the same model through
transformers, timed in the same run.

The index: spaCy triples + dense documents of a small corpus — the chosen questions' gold
passages and the first `--batching-docs` passages of the sample — built once under --workdir.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Sequence
from pathlib import Path

from kirag.errors import KiragError

THROUGHPUT_SCRIPT = Path("benchmarks") / "reference" / "kirag_throughput.py"


def batching_corpus(questions, documents, size: int) -> list:
    """The questions' gold passages and the first `size` passages, in sample order."""
    keep = {d for q in questions for d in q.gold_doc_ids}
    return [d for i, d in enumerate(documents) if i < size or d.id in keep]


class RecordingEngine:
    """An engine whose `generate` calls are kept as (prompt, output) pairs, with each call's
    size: what the bench compares between the two runs."""

    def __init__(self, engine):
        self.engine = engine
        self.pairs: list[tuple[str, str]] = []
        self.batches: list[int] = []

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def generate(self, prompts, max_tokens, stop=None):
        outputs = self.engine.generate(prompts, max_tokens, stop)
        self.pairs += zip(prompts, outputs, strict=True)
        self.batches.append(len(prompts))
        return outputs


def difference_causes(
    alone: Sequence[tuple[str, str]], batched: Sequence[tuple[str, str]]
) -> dict[str, int]:
    """The batched run's generations against the one-at-a-time run's: how many had a prompt
    the other run also sent, how many of those got another output (the engine's batched
    arithmetic: the prompt was the same), and how many prompts the other run never sent
    (a consequence of an earlier different output)."""
    outputs = dict(alone)
    same = [(p, o) for p, o in batched if p in outputs]
    return {
        "generations": len(batched),
        "identical_prompts": len(same),
        "identical_prompts_other_output": sum(outputs[p] != o for p, o in same),
        "prompts_only_batched": len(batched) - len(same),
    }


def load_throughput_script():
    """benchmarks/reference/kirag_throughput.py of this source checkout (not packaged: it runs
    the reference's code, which kirag does not depend on)."""
    root = Path(__file__).resolve().parents[2]
    path = root / THROUGHPUT_SCRIPT
    if not path.exists():
        raise KiragError(
            f"--batching-reference needs {THROUGHPUT_SCRIPT} of a kirag source checkout "
            f"(not found under {root})"
        )
    spec = importlib.util.spec_from_file_location("kirag_throughput", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def time_kirag(kirag, texts: Sequence[str]) -> dict:
    """One at a time, then batched, on one loaded KiRAG; rates, chains and their differences."""
    recorder = RecordingEngine(kirag.retriever.engine)
    kirag.retriever.engine = recorder
    # an engine that keeps prompts cached between calls (llama.cpp) starts each run empty
    reset = getattr(recorder.engine, "reset", lambda: None)
    kirag.retrieve(texts[0])  # warm-up: models loaded
    recorder.pairs, recorder.batches = [], []
    reset()
    start = time.perf_counter()
    alone = [kirag.retrieve(q) for q in texts]
    one_seconds = time.perf_counter() - start
    alone_pairs, recorder.pairs, recorder.batches = recorder.pairs, [], []
    reset()
    start = time.perf_counter()
    batched = kirag.retrieve_many(texts)
    batch_seconds = time.perf_counter() - start
    kirag.retriever.engine = recorder.engine
    differ = [
        [c.steps for c in a.chains] != [c.steps for c in b.chains]
        for a, b in zip(alone, batched, strict=True)
    ]
    return {
        "one_at_a_time_qpm": round(60 * len(texts) / one_seconds, 3),
        "batched_qpm": round(60 * len(texts) / batch_seconds, 3),
        "batched_vs_one_at_a_time": round(one_seconds / batch_seconds, 3),
        "seconds": {"one_at_a_time": round(one_seconds, 1), "batched": round(batch_seconds, 1)},
        "chains_differ": sum(differ),
        "chains_differ_of": len(texts),
        "engine_calls_batched": recorder.batches,
        "llm_calls_per_question": round(sum(r.llm_calls for r in batched) / len(texts), 2),
        "causes": difference_causes(alone_pairs, recorder.pairs),
        "chains": [
            {"one_at_a_time": a.chains[0].steps, "batched": b.chains[0].steps}
            for a, b in zip(alone, batched, strict=True)
        ],
    }


def time_reference(reference: Path, index: Path, texts: Sequence[str], turns: int) -> dict:
    """The reference's own loop over the same index, questions and turns (transformers, CPU)."""
    import contextlib
    import io

    script = load_throughput_script()
    loop = script.reference_loop(Path(reference).resolve(), index, num_turns=turns)
    with contextlib.redirect_stdout(io.StringIO()):
        loop.retrieve(texts[0])  # warm-up
        start = time.perf_counter()
        chains = [loop.retrieve(q)[0][0] for q in texts]
        seconds = time.perf_counter() - start
    return {
        "qpm": round(60 * len(texts) / seconds, 3),
        "seconds": round(seconds, 1),
        "chains": chains,
    }


def bench_batching(
    questions,
    documents,
    root: Path,
    engines: list[str],
    size: int,
    turns: int = 5,
    reference: Path | None = None,
) -> dict:
    """questions/min one at a time vs batched per engine, the chains that differ and why; the
    reference's own loop beside them when a checkout of it is given."""
    from kirag.knowledge.triple_index import build_from_corpus
    from kirag.rag.pipeline import KiRAG

    if reference is not None and "transformers" not in engines:
        raise KiragError("--batching-reference compares with the transformers engine: add it to --batching-engines")  # fmt: skip
    index = root / f"batching-{size}-triples"
    if not (index / "manifest.json").exists():
        corpus = batching_corpus(questions, documents, size)
        build_from_corpus(
            corpus, index, extractor="spacy", overwrite=True, with_bm25=False,
            cache=root / "extraction-cache.sqlite",
        )  # fmt: skip
    texts = [q.question for q in questions]
    out: dict = {
        "model": "SmolLM2-135M-Instruct: its GGUF (Q4_1) through llama.cpp, dequantized to fp32 "
        "through transformers (CPU)",
        "questions": len(texts), "index": str(index), "turns": turns, "cpus": os.cpu_count(),
        "aligner_family": "e5", "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "engines": {},
    }  # fmt: skip
    for engine in engines:
        kirag = KiRAG(
            index, mode="reference", constructor_model="smollm2-135m", engine=engine,
            max_turns=turns, aligner_family="e5",  # the reference's aligner inputs (E5 prefixes)
        )  # fmt: skip
        out["engines"][engine] = time_kirag(kirag, texts)
        out["engines"][engine]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        print(engine, {k: v for k, v in out["engines"][engine].items() if k != "chains"}, flush=True)  # fmt: skip
        del kirag
    if reference is not None:
        theirs = time_reference(reference, index, texts, turns)
        ours = out["engines"]["transformers"]
        theirs["one_at_a_time_vs_reference"] = round(ours["one_at_a_time_qpm"] / theirs["qpm"], 3)
        theirs["batched_vs_reference"] = round(ours["batched_qpm"] / theirs["qpm"], 3)
        theirs["chains_equal_to_kirag_one_at_a_time"] = sum(
            c["one_at_a_time"] == t for c, t in zip(ours["chains"], theirs["chains"], strict=True)
        )
        theirs["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        out["reference_loop"] = theirs
        print("reference", {k: v for k, v in theirs.items() if k != "chains"}, flush=True)
    return out
