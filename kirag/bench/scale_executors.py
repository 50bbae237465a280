"""`kirag bench scale --sections executors`: the same sharded work run by the serial executor
and by Ray with 1 and 2 workers, on the same shards — dense encoding (MiniLM) and spaCy triple
extraction of passages of the bundled sample. Reports throughput (including each Ray pool's
start and its model loads: what a user waits for), the ratio to serial, and whether the outputs
agree (embeddings within 1e-6 in the same order; identical triple stores)."""

from __future__ import annotations

import argparse
import functools
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from kirag.bench.corpora import sample_documents
from kirag.bench.harness import rounded
from kirag.core.ranges import COUNT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--executor-encode-docs", type=COUNT, default=1000, help="passages encoded per executor"
    )
    parser.add_argument(
        "--executor-extract-docs", type=COUNT, default=300, help="passages extracted per executor"
    )
    parser.add_argument(
        "--executor-shard-size", type=COUNT, default=100, help="passages per shard (encoding)"
    )
    parser.add_argument(
        "--executor-workers", default="1,2", help="comma-separated Ray pool sizes to measure"
    )


def _encode(executor, texts: list[str], work: Path, shard_size: int) -> tuple[np.ndarray, float]:
    from kirag.retrieval.dense import Encoder, encode_to_shards

    started = time.perf_counter()
    # serial: the model loads here; Ray: in each worker (timed either way)
    encoder = Encoder("minilm")
    paths = encode_to_shards(encoder, texts, work, len(texts), shard_size, executor=executor)
    seconds = time.perf_counter() - started
    return np.concatenate([np.load(p) for p in paths]), seconds


def _extract(executor, documents, path: Path, shard_size: int) -> tuple[list, float]:
    from kirag.knowledge.extraction import TripleStore, extract_corpus, make_extractor

    started = time.perf_counter()
    extractor = make_extractor("spacy")
    store = TripleStore(path)
    extract_corpus(
        documents,
        extractor,
        store,
        batch_size=16,
        executor=executor,
        shard_size=shard_size,
        factory=functools.partial(make_extractor, "spacy"),
    )
    seconds = time.perf_counter() - started
    rows = store.dump()
    store.close()
    return rows, seconds


def run(args: argparse.Namespace) -> dict:
    import ray

    from kirag.scale import RayExecutor, SerialExecutor

    documents = sample_documents()
    texts = [d.contents for d in documents[: args.executor_encode_docs]]
    extract_docs = documents[: args.executor_extract_docs]
    extract_shard = max(1, args.executor_extract_docs // 6)
    pools = [int(n) for n in args.executor_workers.split(",") if n.strip()]
    cpus = os.cpu_count() or 1
    started = time.perf_counter()
    # 4 logical CPUs at least: on 2 cores a full pool would starve Ray's own tasks (DESIGN.md)
    ray.init(num_cpus=max(4, cpus), include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - started
    out: dict = {
        "cpus": cpus,
        "ray_version": ray.__version__,
        "ray_init_seconds": round(ray_start, 2),
        "encode": {"passages": len(texts), "shard_size": args.executor_shard_size},
        "extract": {"passages": len(extract_docs), "shard_size": extract_shard},
    }
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            runs = [("serial", SerialExecutor())] + [
                (f"ray-{n}", RayExecutor(workers=n, cpus_per_worker=1.0)) for n in pools
            ]
            base_vectors, base_rows = None, None
            serial_rate = {}
            for name, executor in runs:
                vectors, seconds = _encode(
                    executor, texts, root / f"enc-{name}", args.executor_shard_size
                )
                rate = len(texts) / seconds
                entry = {"seconds": seconds, "passages_per_second": rate}
                if base_vectors is None:
                    base_vectors, serial_rate["encode"] = vectors, rate
                else:
                    entry["max_abs_diff_vs_serial"] = float(np.abs(vectors - base_vectors).max())
                    entry["same_order"] = bool(
                        (np.argmax(vectors @ base_vectors.T, axis=1) == np.arange(len(texts))).all()
                    )
                    entry["ratio_vs_serial"] = rate / serial_rate["encode"]
                out["encode"][name] = rounded(entry, 9)

                rows, seconds = _extract(
                    None if name == "serial" else executor,
                    extract_docs,
                    root / f"ext-{name}.sqlite",
                    extract_shard,
                )
                rate = len(extract_docs) / seconds
                entry = {"seconds": seconds, "passages_per_second": rate}
                if base_rows is None:
                    base_rows, serial_rate["extract"] = rows, rate
                    entry["triples"] = sum(len(json.loads(r[3])) for r in rows)
                else:
                    entry["identical_store"] = rows == base_rows
                    entry["ratio_vs_serial"] = rate / serial_rate["extract"]
                out["extract"][name] = rounded(entry, 4)
    finally:
        ray.shutdown()
    out["note"] = (
        "serial extraction is the default in-process path (per-batch SQLite resume); Ray rows "
        "include the pool's start and one model load per worker. On a machine shared with other "
        "jobs the ratios move with the load: read them with the load measured below."
    )
    out["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    return out
