"""`kirag bench kirag`: KiRAG against its baselines on the bundled multi-hop questions over the
real Wikipedia sample, plus triple-extraction speed and precision.

Sections (all measured in the same run, on the same questions and corpus):
- extraction: documents/s and triples/document of the spaCy extractor and of the LLM extractor
  through llama.cpp and transformers (same SmolLM2-135M), and the store size per document;
- precision: triples of each extractor on hand-annotated sentences (kirag/data/annotated_triples)
  matched to the gold triples (head and tail token-F1 >= 0.5);
- multihop: supporting-passage Recall@3/5/10, EM, F1, questions/min and LLM calls per question
  for BM25, dense, RRF, retrieve-read-retrieve, KiRAG (aligner chains) and KiRAG (LLM
  constructor), on the full 4,996-passage sample;
- subcorpus: the same systems plus KiRAG with LLM-extracted triples, on a sub-corpus (the gold
  passages and each question's BM25 + dense top passages) small enough for the tiny LLM to
  extract;
- offline: the offline path's ablations, chosen on a dev split by cross-validation and scored
  once on a test split (kirag.bench.offline; `--dev`, `--test`, `--encoder`, `--aligner`).
- batching (only when asked for): reference mode one question at a time vs every question's
  turns batched through the engine (kirag.bench.reference_batching).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from importlib import resources
from pathlib import Path

from kirag.core.ranges import COUNT, COUNT_OR_ZERO
from kirag.models import DEFAULT_LLM

MATCH_F1 = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sections",
        default="extraction,precision,multihop,subcorpus",
        help="comma-separated sections",
    )
    parser.add_argument(
        "--index",
        default="indexes/enwiki-triples",
        help="spaCy triple index of the sample (built when missing)",
    )
    parser.add_argument(
        "--workdir",
        default="indexes/bench-kirag",
        help="where the benchmark's own indexes go (kept: re-runs reuse caches)",
    )
    parser.add_argument(
        "--llm-docs",
        type=COUNT,
        default=24,
        help="documents for the LLM extraction speed measurement",
    )
    parser.add_argument(
        "--spacy-docs",
        type=COUNT,
        default=500,
        help="documents for the spaCy extraction speed measurement",
    )
    parser.add_argument(
        "--subcorpus-depth",
        type=COUNT,
        default=5,
        help="BM25 and dense top-k per question added to the sub-corpus",
    )
    parser.add_argument(
        "--llm-max-tokens", type=COUNT, default=192, help="generation budget of the LLM extractor"
    )
    parser.add_argument(
        "--questions", type=COUNT_OR_ZERO, default=0, help="use only the first N questions (0: all)"
    )
    parser.add_argument(
        "--batching-docs",
        type=COUNT,
        default=300,
        help="section batching: sample passages in its index (besides the gold ones)",
    )
    parser.add_argument(
        "--batching-engines",
        default="llamacpp,transformers",
        help="section batching: engines compared (reference mode, one at a time vs batched)",
    )
    parser.add_argument(
        "--batching-turns", type=COUNT, default=5, help="section batching: turns per question"
    )
    parser.add_argument(
        "--batching-reference",
        type=Path,
        default=None,
        help="section batching: a checkout of jyfang6/kirag at 3098584d, whose own loop is "
        "timed beside kirag's on transformers (needs the reference's Python dependencies)",
    )
    parser.add_argument(
        "--systems",
        default="",
        help="run only the systems whose name this regular expression matches (default: all)",
    )
    from kirag.bench import offline

    offline.add_arguments(parser)  # section "offline": the offline path's ablations (dev/test)


# ---------------------------------------------------------------- extraction


def bench_extraction(documents, llm_docs: int, spacy_docs: int, max_tokens: int) -> dict:
    from kirag.knowledge.extraction import TripleStore, extract_corpus, make_extractor
    from kirag.knowledge.llm_extractor import LLMTripleExtractor
    from kirag.llm.factory import load_engine

    out = {}
    extractors = {
        "spacy": (lambda: make_extractor("spacy"), spacy_docs),
        "llm-llamacpp": (
            lambda: LLMTripleExtractor(
                engine=load_engine(DEFAULT_LLM, "llamacpp"), max_tokens=max_tokens
            ),
            llm_docs,
        ),
        "llm-transformers": (
            lambda: LLMTripleExtractor(
                engine=load_engine(DEFAULT_LLM, "transformers"), max_tokens=max_tokens
            ),
            llm_docs,
        ),
    }
    for name, (factory, count) in extractors.items():
        extractor = factory()
        with tempfile.TemporaryDirectory() as tmp:
            store = TripleStore(Path(tmp) / "store.sqlite")
            start = time.perf_counter()
            stats = extract_corpus(documents[:count], extractor, store, batch_size=8)
            seconds = time.perf_counter() - start
            store.close()
            size = (Path(tmp) / "store.sqlite").stat().st_size + sum(
                p.stat().st_size for p in Path(tmp).glob("store.sqlite-*")
            )
        out[name] = {
            "documents": stats.documents,
            "documents_per_second": round(stats.documents / seconds, 3),
            "triples_per_document": round(stats.triples_per_document, 2),
            "store_bytes_per_document": round(size / max(stats.documents, 1)),
        }
    return out


# ---------------------------------------------------------------- precision


def load_annotations() -> list[dict]:
    text = resources.files("kirag.data").joinpath("annotated_triples.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def triple_matches(predicted: tuple[str, str, str], gold: tuple[str, str, str]) -> bool:
    """Same fact: heads and tails overlap (token F1 >= 0.5 each); relations are worded too
    freely to compare."""
    from kirag.core.answers import token_f1

    return (
        token_f1(predicted[0], gold[0]) >= MATCH_F1 and token_f1(predicted[2], gold[2]) >= MATCH_F1
    )


def precision_recall(predictions: list[list[tuple]], gold: list[list[tuple]]) -> dict:
    predicted_total = sum(len(p) for p in predictions)
    correct = sum(
        any(triple_matches(p, g) for g in golds)
        for preds, golds in zip(predictions, gold, strict=True)
        for p in preds
    )
    found = sum(
        any(triple_matches(p, g) for p in preds)
        for preds, golds in zip(predictions, gold, strict=True)
        for g in golds
    )
    gold_total = sum(len(g) for g in gold)
    return {
        "sentences": len(gold),
        "gold_triples": gold_total,
        "predicted_triples": predicted_total,
        "precision": round(correct / predicted_total, 4) if predicted_total else 0.0,
        "recall": round(found / gold_total, 4) if gold_total else 0.0,
    }


def bench_precision(max_tokens: int) -> dict:
    """Each annotated sentence is extracted as a one-sentence document titled by its article."""
    from kirag.knowledge.extraction import make_extractor
    from kirag.knowledge.llm_extractor import LLMTripleExtractor
    from kirag.llm.factory import load_engine
    from kirag.types import Document

    annotations = load_annotations()
    documents = [Document(f"s{i}", a["sentence"], a["title"]) for i, a in enumerate(annotations)]
    gold = [[tuple(t) for t in a["triples"]] for a in annotations]
    out = {}
    extractors = {
        "spacy": make_extractor("spacy"),
        "llm-llamacpp": LLMTripleExtractor(
            engine=load_engine(DEFAULT_LLM, "llamacpp"), max_tokens=max_tokens
        ),
    }
    for name, extractor in extractors.items():
        results = extractor.extract(documents)
        predictions = [[(t.head, t.relation, t.tail) for t in triples] for triples in results]
        out[name] = precision_recall(predictions, gold)
    return out


# ---------------------------------------------------------------- multi-hop


def kirag_system(index_dir: Path, reader_max_tokens: int | None = None, **options):
    """A KiRAG pipeline over `index_dir` as a benchmark system: questions -> SystemOutputs.
    `reader_max_tokens`: the reader's generation budget, when not its own default."""
    from kirag.bench.harness import SystemOutput
    from kirag.rag.pipeline import KiRAG

    pipeline = KiRAG(index_dir, **options)
    if reader_max_tokens is not None and pipeline.reader is not None:
        pipeline.reader.max_tokens = reader_max_tokens

    def run(questions):
        answers = pipeline.answer_many([q.question for q in questions], k=10)
        return [SystemOutput(a.hits, a.answer, a.to_dict()["llm_calls"]) for a in answers]

    return run


class Rank1Rows:
    """Rank1 over the RRF top-20, each question scored once: the fused row reuses the plain row's
    Rank1 scores (the same scoring work, so its questions/min counts that time plus the fusion)."""

    def __init__(self, rrf, engine_name: str):
        self.rrf, self.engine_name = rrf, engine_name
        self.scored: dict[str, tuple[list, float]] = {}  # question -> (Rank1 hits, seconds)
        self.reranker = None  # loaded on first use

    def _score(self, question: str) -> tuple[list, float, bool]:
        reused = question in self.scored
        if not reused:
            from kirag.llm.factory import load_engine
            from kirag.rerank.rank1 import Rank1Reranker

            if self.reranker is None:
                engine = load_engine(DEFAULT_LLM, self.engine_name)
                self.reranker = Rank1Reranker(engine=engine, thinking_budget=0, batch_size=8)
            start = time.perf_counter()
            candidates = self.rrf.search(question, 20, with_documents=True)
            hits = self.reranker.rerank(question, candidates)
            self.scored[question] = (hits, time.perf_counter() - start)
        return (*self.scored[question], reused)

    def row(self, fusion_weight: float | None):
        """The system: plain Rank1 order (`None`) or fused with the first stage at that weight."""
        from kirag.bench.harness import SystemOutput
        from kirag.retrieval.fusion import fuse_with_first_stage

        def run(questions):
            outputs = []
            for q in questions:
                hits, seconds, reused = self._score(q.question)
                if fusion_weight is not None:
                    hits = fuse_with_first_stage(hits, "interpolate", fusion_weight)
                outputs.append(SystemOutput(hits[:10], "", len(hits), seconds if reused else 0.0))
            return outputs

        return run


def systems(
    index_dir: Path,
    bm25_dir: Path,
    dense_dir: Path,
    engine_name: str = "llamacpp",
    rerank_rows: bool = True,
) -> dict:
    """name -> function(questions) -> list[SystemOutput], all over the same corpus."""
    from kirag.bench.harness import SystemOutput
    from kirag.llm.factory import load_engine
    from kirag.rag.baselines import RetrieveReadRetrieve, SingleShotRAG
    from kirag.rag.reader import Reader
    from kirag.retrieval.factory import load_retriever
    from kirag.retrieval.hybrid import HybridRetriever

    bm25, dense = load_retriever(bm25_dir), load_retriever(dense_dir)
    rrf = HybridRetriever([bm25, dense], fusion="rrf", depth=50)
    reader = Reader(load_engine(DEFAULT_LLM, engine_name), max_tokens=16)

    def single(retriever):
        def run(questions):
            results = SingleShotRAG(retriever, reader).run([q.question for q in questions], k=10)
            return [SystemOutput(r.hits, r.answer, r.llm_calls) for r in results]

        return run

    rank1 = Rank1Rows(rrf, engine_name)

    def iterative(questions):
        results = RetrieveReadRetrieve(rrf, reader, rounds=2).run(
            [q.question for q in questions], k=10
        )
        return [SystemOutput(r.hits, r.answer, r.llm_calls) for r in results]

    rows = {
        "BM25 + reader": single(bm25),
        "dense + reader": single(dense),
        "RRF(BM25, dense) + reader": single(rrf),
        "retrieve-read-retrieve (RRF, 2 rounds)": iterative,
    }
    if rerank_rows:
        rows[f"RRF top-20 -> Rank1 ({DEFAULT_LLM}, budget 0)"] = rank1.row(None)
        rows["RRF top-20 -> Rank1, fused with RRF (weight 0.2)"] = rank1.row(0.2)
    return rows | {
        "KiRAG aligner chains (answer: chain tail)": kirag_system(
            index_dir, max_turns=3, beam_size=2
        ),
        "KiRAG aligner chains + reader": kirag_system(
            index_dir, max_turns=3, beam_size=2, reader_model=DEFAULT_LLM, engine=engine_name
        ),
        "KiRAG LLM constructor + reader": kirag_system(
            index_dir,
            mode="llm",
            constructor_model=DEFAULT_LLM,
            reader_model=DEFAULT_LLM,
            engine=engine_name,
            max_turns=2,
            beam_size=1,
            num_candidates=30,
        ),
        # the paper's algorithm with its own numbers (5 turns, top-10 documents, aligner top-20,
        # up to 100 candidate lines, its prompts and reader): the machinery, with a tiny model
        f"KiRAG reference ({DEFAULT_LLM} constructor + reader)": kirag_system(
            index_dir, mode="reference", constructor_model=DEFAULT_LLM, engine=engine_name
        ),
    }


def bench_multihop(
    questions,
    index_dir: Path,
    bm25_dir: Path,
    dense_dir: Path,
    extra: dict | None = None,
    rerank_rows: bool = True,
    only: str = "",
) -> dict:
    import re

    from kirag.bench.harness import evaluate_system, format_table

    rows, scores = [], {}
    compared = systems(index_dir, bm25_dir, dense_dir, rerank_rows=rerank_rows)
    for name, run in {**compared, **(extra or {})}.items():
        if only and not re.search(only, name):
            continue
        result = evaluate_system(
            name, run, questions, answers="Rank1" not in name
        )  # reranking rows have no reader
        rows.append(result.row())
        scores[name] = result.per_question
    return {
        "questions": len(questions),
        "table": rows,
        "markdown": format_table(rows),
        "per_question": scores,
    }


def build_indexes(corpus, root: Path, name: str) -> tuple[Path, Path, Path]:
    """BM25, dense and spaCy-triple indexes of one corpus (reused when already built)."""
    from kirag.knowledge.triple_index import build_from_corpus
    from kirag.retrieval.bm25 import BM25Retriever
    from kirag.retrieval.dense import DenseRetriever

    bm25, dense, triples = root / f"{name}-bm25", root / f"{name}-dense", root / f"{name}-triples"
    if not (bm25 / "manifest.json").exists():
        BM25Retriever.build(corpus, bm25, overwrite=True)
    if not (dense / "manifest.json").exists():
        DenseRetriever.build(corpus, dense, overwrite=True)
    if not (triples / "manifest.json").exists():
        build_from_corpus(
            corpus,
            triples,
            extractor="spacy",
            overwrite=True,
            cache=root / "extraction-cache.sqlite",
        )
    return triples, bm25, dense


def subcorpus(questions, bm25_dir: Path, dense_dir: Path, depth: int) -> list:
    """Gold passages plus each question's BM25 and dense top-`depth`, in sample order."""
    from kirag.io.corpus import read_corpus
    from kirag.retrieval.factory import load_retriever

    keep = {d for q in questions for d in q.gold_doc_ids}
    for path in (bm25_dir, dense_dir):
        retriever = load_retriever(path)
        for hits in retriever.batch_search({q.id: q.question for q in questions}, k=depth).values():
            keep.update(h.doc_id for h in hits)
    return [d for d in read_corpus("enwiki-sample") if d.id in keep]


def _checkpoint(args: argparse.Namespace, out: dict) -> None:
    """Sections finished so far, to `<output>.partial.json`: a late crash keeps the early ones."""
    if getattr(args, "output", None):
        from kirag.core.atomic import write_json

        write_json(f"{args.output}.partial.json", out)


def run(args: argparse.Namespace) -> dict:
    from kirag.eval.datasets import load_bundled_questions
    from kirag.io.corpus import read_corpus

    sections = {s.strip() for s in args.sections.split(",")}
    questions = load_bundled_questions()
    if args.questions:
        questions = questions[: args.questions]
    documents = list(read_corpus("enwiki-sample"))
    root = Path(args.workdir)
    root.mkdir(parents=True, exist_ok=True)
    out: dict = {
        "model": "SmolLM2-135M-Instruct (GGUF Q4_1, llama.cpp) for every LLM role",
        "questions": len(questions),
    }
    if "extraction" in sections:
        out["extraction"] = bench_extraction(
            documents, args.llm_docs, args.spacy_docs, args.llm_max_tokens
        )
    if "precision" in sections:
        out["precision"] = bench_precision(args.llm_max_tokens)
        _checkpoint(args, out)
    if "offline" in sections:
        from kirag.bench.offline import run_offline

        out["offline"] = run_offline(args)
        print(out["offline"]["markdown"])
        _checkpoint(args, out)
    if "batching" in sections:  # not a default section: `--sections batching`
        from kirag.bench.reference_batching import bench_batching

        engines = [e.strip() for e in args.batching_engines.split(",") if e.strip()]
        out["batching"] = bench_batching(
            questions, documents, root, engines, args.batching_docs,
            turns=args.batching_turns, reference=args.batching_reference,
        )  # fmt: skip
        _checkpoint(args, out)
    if "multihop" in sections or "subcorpus" in sections:
        triples, bm25, dense = build_indexes("enwiki-sample", root, "sample")
    if "multihop" in sections:
        out["multihop_full_sample"] = bench_multihop(
            questions, triples, bm25, dense, only=args.systems
        )
        print(out["multihop_full_sample"]["markdown"])
        _checkpoint(args, out)
    if "subcorpus" in sections:
        corpus = subcorpus(questions, bm25, dense, args.subcorpus_depth)
        sub_triples, sub_bm25, sub_dense = build_indexes(corpus, root, f"sub{args.subcorpus_depth}")
        llm_index = root / f"sub{args.subcorpus_depth}-llm-triples"
        if not (llm_index / "manifest.json").exists():
            from kirag.knowledge.triple_index import build_from_corpus

            build_from_corpus(
                corpus, llm_index, extractor="llm", extractor_options={"model": DEFAULT_LLM, "engine_name": "llamacpp", "max_tokens": args.llm_max_tokens},
                overwrite=True, cache=root / "extraction-cache.sqlite", batch_size=8,
            )  # fmt: skip
        extra = {
            "KiRAG on LLM-extracted triples, aligner chains": kirag_system(
                llm_index, max_turns=3, beam_size=2
            ),
            "KiRAG on LLM-extracted triples, LLM constructor + reader": kirag_system(
                llm_index,
                mode="llm",
                constructor_model=DEFAULT_LLM,
                reader_model=DEFAULT_LLM,
                engine="llamacpp",
                max_turns=2,
                beam_size=1,
            ),
            "KiRAG on LLM-extracted triples, reference": kirag_system(
                llm_index, mode="reference", constructor_model=DEFAULT_LLM, engine="llamacpp"
            ),
        }
        out["multihop_subcorpus"] = {
            "documents": len(corpus),
            # Rank1 rows only on the full sample: the sub-corpus compares the triple extractors
            **bench_multihop(
                questions, sub_triples, sub_bm25, sub_dense, extra, False, args.systems
            ),
        }
        print(out["multihop_subcorpus"]["markdown"])
    return out
