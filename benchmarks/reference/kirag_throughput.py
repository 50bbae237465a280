"""Questions/min of the KiRAG reference's own loop (jyfang6/kirag at 3098584d, `KiRAG.retrieve`)
beside kirag's reference mode one question at a time and batched, in the same run, on the same
tiny model and engine (SmolLM2-135M-Instruct through transformers, fp32, CPU), the same questions,
the same triple index (its documents, dense document hits and triples) and the same chain
demonstrations (kirag's shipped pool, converted to the reference's format).

Model stand-ins on the reference's side, real models both: all-MiniLM-L6-v2 (a BERT, loaded by the
reference's own E5 classes) for its untrained E5 and for its aligner, as kirag uses the index's
MiniLM for both. Run by hand with a reference checkout (see kirag_differential.py):

    PYTHONPATH=/tmp/refdeps .venv/bin/python benchmarks/reference/kirag_throughput.py \\
        /tmp/kirag-ref indexes/bench-batching/batching-200-triples OUT.json --questions 6
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def reference_loop(reference: Path, index_dir: Path, num_turns: int = 5):
    """The reference's KiRAG object over kirag's index, SmolLM2 through transformers."""
    sys.path[:0] = [str(reference), str(ROOT)]
    import nltk

    from kirag.knowledge.sentences import _nltk_data_dirs

    nltk.data.path.extend(_nltk_data_dirs())
    import knowledge_graph.models as models
    import retriever.e5 as e5
    import torch
    from generator.generator import Generator
    from knowledge_graph.kg_generator import KGGenerator
    from retriever.retrievers import DenseRetriever
    from transformers import AutoModel, AutoTokenizer, LlamaForCausalLM

    from kirag.knowledge.demonstrations import load_pools
    from kirag.knowledge.triple_index import TripleIndex
    from kirag.models import packaged_path, resolve_model

    minilm = str(resolve_model("minilm", "embedder").location)
    bert = AutoTokenizer.from_pretrained(minilm)
    e5.tokenizer, e5.model, e5.device = bert, AutoModel.from_pretrained(minilm).eval(), "cpu"
    models.AutoTokenizer = types.SimpleNamespace(from_pretrained=lambda *a, **k: bert)
    gguf = packaged_path("smollm2-135m")
    chat = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    chat.pad_token = chat.pad_token or chat.eos_token
    chat.padding_side = "left"
    llm = LlamaForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, torch_dtype=torch.float32
    ).eval()

    index = TripleIndex(index_dir)
    dense = index.document_retrievers()["dense"]
    by_doc: dict[str, list] = {}
    for triple in index.triples(range(len(index))):
        by_doc.setdefault(triple.doc_id, []).append(triple)
    cache = {}
    for doc_id, triples in by_doc.items():
        (document,) = index.docstore.get_many([doc_id])
        cache[doc_id] = {
            "id": doc_id, "title": document.title or "", "text": document.text,
            "triples": [{"text": t.text, "sentence": t.sentence_index} for t in triples],
        }  # fmt: skip

    class KiragDenseHits(DenseRetriever):
        """The reference's DenseRetriever over kirag's dense document index."""

        def __init__(self):
            torch.nn.Module.__init__(self)
            self.corpus = types.SimpleNamespace(
                get_document=lambda d: cache.get(d) or {"id": d, "title": "", "text": "", "triples": []}
            )  # fmt: skip

        def forward(self, queries, topk, **_):
            return [
                [{"id": h.doc_id, "score": float(h.score)} for h in dense.search(q, topk)]
                for q in queries
            ]

    with contextlib.redirect_stdout(io.StringIO()):
        constructor = Generator(chat, llm, max_length=4096, max_new_tokens=64, is_chat=True)
        kg = KGGenerator(chat, llm)
        kg.cached_kg_triples = cache
        loop = models.KiRAG(
            retriever=KiragDenseHits(), kg_generator=kg, constructor=constructor,
            aligner_model="e5", aligner_model_name_or_path=minilm, num_turns=num_turns,
        )  # fmt: skip
        loop.reasoning_chain_examplars = [
            {"question": d.question, "chains": ", ".join(d.chain), "answer": d.answer}
            for d in load_pools().chains("wikipedia")
        ]
        loop.examplars_embeddings = loop.calculate_examplars_embeddings()
    return loop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("index", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--questions", type=int, default=6)
    args = parser.parse_args(argv)

    from kirag.eval.datasets import load_bundled_questions

    from kirag.rag.pipeline import KiRAG

    questions = [q.question for q in load_bundled_questions()[: args.questions]]
    out: dict = {"questions": len(questions), "index": str(args.index),
                 "model": "SmolLM2-135M-Instruct, transformers fp32, CPU", "reference": "jyfang6/kirag@3098584d"}  # fmt: skip
    kirag = KiRAG(
        args.index, mode="reference", constructor_model="smollm2-135m", engine="transformers",
        aligner_family="e5",  # the reference's aligner inputs, as its E5 collator writes them
    )  # fmt: skip
    kirag.retrieve(questions[0])  # warm-up
    start = time.perf_counter()
    alone = [kirag.retrieve(q) for q in questions]
    out["kirag_one_at_a_time_qpm"] = 60 * len(questions) / (time.perf_counter() - start)
    start = time.perf_counter()
    batched = kirag.retrieve_many(questions)
    out["kirag_batched_qpm"] = 60 * len(questions) / (time.perf_counter() - start)
    out["kirag_chains_differ"] = sum(
        a.chains[0].steps != b.chains[0].steps for a, b in zip(alone, batched, strict=True)
    )
    loop = reference_loop(args.reference.resolve(), args.index)
    with contextlib.redirect_stdout(io.StringIO()):
        loop.retrieve(questions[0])  # warm-up
        start = time.perf_counter()
        theirs = [loop.retrieve(q)[0][0] for q in questions]
        out["reference_qpm"] = 60 * len(questions) / (time.perf_counter() - start)
    out["chains_equal_to_reference"] = sum(
        a.chains[0].steps == t for a, t in zip(alone, theirs, strict=True)
    )
    out = {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}
    args.output.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
