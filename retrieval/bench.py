"""`kirag bench retrieval`: BM25 backends against raw bm25s and Lucene, dense encoding against
SentenceTransformer.encode, FAISS Flat against HNSW — every ratio against a baseline measured in
the same run. Corpora: the bundled 4,996-passage Wikipedia sample, and a synthetic corpus of
any size made by sampling the sample's sentences (seeded)."""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sections", default="bm25,dense,faiss", help="comma-separated: bm25, dense, faiss"
    )
    parser.add_argument(
        "--synthetic-docs",
        type=int,
        default=100_000,
        help="size of the sampled-sentence corpus for BM25",
    )
    parser.add_argument(
        "--dense-docs",
        type=int,
        default=100_000,
        help="passages encoded for the dense throughput / peak-RSS measurement",
    )
    parser.add_argument(
        "--pseudo-queries",
        type=int,
        default=500,
        help="pseudo-queries sampled from the sample's sentences",
    )
    parser.add_argument(
        "--workdir",
        default=None,
        help="where to build the benchmark indexes (default: a temp folder)",
    )


def sample_documents() -> list:
    from kirag.io.corpus import read_corpus

    return list(read_corpus("enwiki-sample"))


def sentences_of(documents) -> list[str]:
    splitter = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
    return [s for d in documents for s in splitter.split(d.text) if len(s.split()) >= 5]


def synthetic_corpus(documents, size: int, seed: int = 42):
    """`size` passages of 2-5 sentences drawn at random from the sample (seeded)."""
    from kirag.types import Document

    rng = random.Random(seed)
    sentences = sentences_of(documents)
    return [
        Document(f"syn{i}", " ".join(rng.sample(sentences, rng.randint(2, 5)))) for i in range(size)
    ]


def benchmark_queries(documents, count: int, seed: int = 42) -> dict[str, str]:
    """The multi-hop questions, the TREC DL 2019/2020 topics shipped with the tests when present,
    and pseudo-queries (6-10 word windows of random sentences)."""
    from kirag.multihop import load_fixture

    queries = {q.id: q.question for q in load_fixture()}
    rng = random.Random(seed)
    sentences = sentences_of(documents)
    for i in range(count):
        words = rng.choice(sentences).split()
        start = rng.randrange(max(1, len(words) - 10))
        queries[f"pseudo{i}"] = " ".join(words[start : start + rng.randint(6, 10)])
    return queries


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def bench_bm25(documents, queries: dict[str, str], root: Path, label: str) -> dict:
    """kirag bm25s vs raw bm25s vs kirag Lucene on one corpus."""
    import bm25s
    from kirag.retrieval.analysis import EnglishAnalyzer
    from kirag.retrieval.bm25 import BM25Retriever, top10_overlap

    texts = list(queries.values())
    out: dict = {"corpus": label, "documents": len(documents), "queries": len(queries)}
    kirag_bm25s, seconds = _timed(
        BM25Retriever.build, documents, root / f"{label}-bm25s", overwrite=True
    )
    out["kirag_bm25s_index_docs_per_s"] = len(documents) / seconds
    lucene, seconds = _timed(
        BM25Retriever.build, documents, root / f"{label}-lucene", backend="lucene", overwrite=True
    )
    out["lucene_index_docs_per_s"] = len(documents) / seconds

    # raw bm25s, same analysis, no document store, no kirag layers
    analyzer = EnglishAnalyzer()

    def raw_build():
        model = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
        model.index([analyzer(d.contents) for d in documents], show_progress=False)
        return model

    raw, seconds = _timed(raw_build)
    out["raw_bm25s_index_docs_per_s"] = len(documents) / seconds

    def raw_search(batch):
        vocab = raw.vocab_dict
        tokens = [[t for t in analyzer(q) if t in vocab] or [""] for q in batch]
        return raw.retrieve(tokens, k=10, show_progress=False, n_threads=1)

    for name, search in (
        ("kirag_bm25s", lambda batch: kirag_bm25s.batch_search(dict(enumerate(batch)), k=10)),
        ("raw_bm25s", raw_search),
        ("lucene", lambda batch: lucene.batch_search(dict(enumerate(batch)), k=10)),
    ):
        _, single = _timed(lambda search=search: [search([q]) for q in texts])
        _, batched = _timed(search, texts)
        out[f"{name}_queries_per_s_single"] = len(texts) / single
        out[f"{name}_queries_per_s_batched"] = len(texts) / batched
    kirag_run = kirag_bm25s.batch_search(queries, k=10)
    lucene_run = lucene.batch_search(queries, k=10)
    out["top10_overlap_bm25s_vs_lucene"] = top10_overlap(lucene_run, kirag_run)
    out["top1_agreement_bm25s_vs_lucene"] = float(
        np.mean(
            [
                bool(lucene_run[q])
                and bool(kirag_run[q])
                and lucene_run[q][0].doc_id == kirag_run[q][0].doc_id
                for q in queries
                if lucene_run[q]
            ]
        )
    )
    out["kirag_over_raw_bm25s_single_time_ratio"] = (
        out["raw_bm25s_queries_per_s_single"] / out["kirag_bm25s_queries_per_s_single"]
    )
    out["kirag_over_raw_bm25s_batched_time_ratio"] = (
        out["raw_bm25s_queries_per_s_batched"] / out["kirag_bm25s_queries_per_s_batched"]
    )
    out["kirag_bm25s_over_lucene_batched_speedup"] = (
        out["kirag_bm25s_queries_per_s_batched"] / out["lucene_queries_per_s_batched"]
    )
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


DENSE_CHILD = """
import json, resource, sys, time
from pathlib import Path
from kirag.retrieval.bench import sample_documents, synthetic_corpus
mode, size, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
texts = [d.contents for d in synthetic_corpus(sample_documents(), size)]
if mode == "kirag":
    from kirag.retrieval.dense import Encoder, encode_to_shards, merge_shards
    encoder = Encoder("minilm")
    start = time.perf_counter()
    shards = encode_to_shards(encoder, iter(texts), out / "shards", len(texts))
    merge_shards(shards, out / "embeddings.npy", encoder.dimension)
else:
    from kirag.models import load_sentence_transformer
    model = load_sentence_transformer("minilm")
    start = time.perf_counter()
    model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _encode_child(mode: str, size: int, out: Path) -> dict:
    import os

    out.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-c", DENSE_CHILD, mode, str(size), str(out)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "KIRAG_PROGRESS": "0"},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def bench_dense(size: int, root: Path, rss_size: int = 0) -> dict:
    """Encoding throughput, kirag's sharded on-disk encoder vs SentenceTransformer.encode on the
    same `size` synthetic passages, each in its own process (so peak RSS is its own); optionally
    a kirag-only run on `rss_size` passages for the peak-RSS figure at scale."""
    out: dict = {"passages": size}
    for mode in ("direct", "kirag"):
        data = _encode_child(mode, size, root / f"dense-{mode}")
        out[f"{mode}_passages_per_s"] = size / data["seconds"]
        out[f"{mode}_peak_rss_mb"] = data["peak_rss_mb"]
    out["kirag_over_direct_throughput"] = out["kirag_passages_per_s"] / out["direct_passages_per_s"]
    if rss_size:
        data = _encode_child("kirag", rss_size, root / "dense-rss")
        out[f"kirag_{rss_size}_passages_per_s"] = rss_size / data["seconds"]
        out[f"kirag_{rss_size}_peak_rss_mb"] = data["peak_rss_mb"]
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def bench_faiss(documents, queries: dict[str, str], vectors: np.ndarray | None = None) -> dict:
    """HNSW against exact search: on the real embeddings of the sample, or on given vectors."""
    from kirag.retrieval.dense import Encoder
    from kirag.retrieval.faiss_index import build_faiss_index

    encoder = Encoder("minilm")
    encode_seconds = None
    if vectors is None:
        vectors, encode_seconds = _timed(encoder.encode, [d.contents for d in documents])
    query_vectors = encoder.encode(list(queries.values()))
    flat = build_faiss_index(vectors, "flat")
    hnsw, hnsw_build = _timed(build_faiss_index, vectors, "hnsw")
    _, truth = flat.search(query_vectors, 10)
    _, approx = hnsw.search(query_vectors, 10)
    reps = 20
    _, flat_total = _timed(lambda: [flat.search(query_vectors, 10) for _ in range(reps)])
    _, hnsw_total = _timed(lambda: [hnsw.search(query_vectors, 10) for _ in range(reps)])
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, approx, strict=True)]))
    return {
        "vectors": int(vectors.shape[0]),
        "queries": int(query_vectors.shape[0]),
        "encode_passages_per_s": round(len(documents) / encode_seconds, 2)
        if encode_seconds
        else None,
        "hnsw_build_seconds": round(hnsw_build, 3),
        "hnsw_recall_at_10_vs_flat": round(recall, 4),
        "flat_queries_per_s": round(reps * len(queries) / flat_total, 1),
        "hnsw_queries_per_s": round(reps * len(queries) / hnsw_total, 1),
        "hnsw_speedup_over_flat": round(flat_total / hnsw_total, 3),
    }


def run(args: argparse.Namespace) -> dict:
    sections = {s.strip() for s in args.sections.split(",")}
    documents = sample_documents()
    queries = benchmark_queries(documents, args.pseudo_queries)
    results: dict = {"machine": {"cpus": __import__("os").cpu_count()}}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        root = Path(tmp)
        if "bm25" in sections:
            results["bm25_sample"] = bench_bm25(documents, queries, root, "sample")
            if args.synthetic_docs:
                synthetic = synthetic_corpus(documents, args.synthetic_docs)
                results["bm25_synthetic"] = bench_bm25(synthetic, queries, root, "synthetic")
        if "faiss" in sections:
            results["faiss_sample"] = bench_faiss(documents, queries)
        if "dense" in sections and args.dense_docs:
            results["dense_encoding"] = bench_dense(args.dense_docs, root, args.dense_rss_docs)
            vectors = np.load(root / "dense-kirag" / "embeddings.npy")
            results["faiss_synthetic"] = bench_faiss(documents, queries, vectors)
    results["peak_rss_mb_this_process"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    return results
