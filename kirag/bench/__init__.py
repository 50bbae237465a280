"""The benchmarks wing: `kirag bench NAME`. Each benchmark is a module with
`add_arguments(parser)` and `run(args) -> dict`; steps that need a process of their own live in
`kirag.bench.children`. Library packages never import from here (tests/test_layering.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Benchmark:
    module: str
    help: str


BENCHMARKS: dict[str, Benchmark] = {
    "retrieval": Benchmark(
        "kirag.bench.retrieval",
        "BM25 backends vs raw bm25s vs Lucene; dense encoding; FAISS Flat vs HNSW",
    ),
    "eval": Benchmark(
        "kirag.bench.evaluation",
        "evaluating a dev-small-shaped run vs calling pytrec_eval directly",
    ),
    "rerank": Benchmark(
        "kirag.bench.rerank",
        "Rank1 scoring: engines and precisions, thinking budgets, batching and prefix reuse",
    ),
    "kirag": Benchmark(
        "kirag.bench.multihop",
        "triple extraction speed, questions/min and LLM calls of KiRAG vs baselines",
    ),
    "kirag-cv": Benchmark(
        "kirag.bench.settings_cv",
        "the offline default's settings chosen by leave-one-out cross-validation",
    ),
    "reproduce": Benchmark(
        "kirag.bench.reproduce",
        "paper Table 1 on a prepared dataset: KiRAG-reference vs baselines, R@3/R@5, EM/F1",
    ),
    "serve": Benchmark(
        "kirag.bench.serve",
        "kirag serve: HTTP search latency/throughput vs the Python API, and 503s under overload",
    ),
    "scale": Benchmark(
        "kirag.bench.scale",
        "corpus scale: serial vs Ray, index memory vs corpus size, CPU encoding backends",
    ),
    "quantize": Benchmark(
        "kirag.bench.quantize",
        "GGUF formats x calibrations (kirag quantize): fidelity to the base, recall, size, speed",
    ),
    "gpu-check": Benchmark(
        "kirag.bench.gpu_check",
        "a lent GPU machine vs its CPU: Rank1 fp16 vs fp32 agreement, dense encoding, versions",
    ),
}
