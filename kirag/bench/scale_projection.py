"""`kirag bench scale --sections projection` (e): time and storage of MS MARCO and
DPR-Wikipedia on one 2-core node, 32 such nodes and a GPU, computed from rates, each figure
marked measured (m: on this project's machines), published (p: a named source) or extrapolated
(x: a measured or published rate scaled to the corpus or the cluster). Rates measured by the
`triple-memory` and `bm25` sections are read from their results file when given."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from kirag.bench.harness import format_table
from kirag.bench.scale_bm25 import extrapolate

CORPORA = {"MS MARCO": 8_841_823, "DPR-Wikipedia": 21_015_324}
NODES = 32
TRIPLES_PER_PASSAGE = 11.7  # measured: spaCy on the bundled sample (issue 20)
FLAT_BYTES = 384 * 4  # MiniLM float32 vector in a Flat index
IVFPQ_BYTES = 64 + 8 + 8  # PQ m=64 code + id + direct map (kirag's default m for 384-d)


@dataclass(frozen=True)
class Rate:
    """Items per second on one 2-core node (and on one GPU, when there is a figure), with
    where each figure comes from."""

    node: float
    node_source: str  # "m" measured here, "p" published
    gpu: float | None = None
    gpu_source: str = ""


# Rates for planning (DESIGN.md "Scale beyond one machine", measured 2026-12-02 unless marked)
RATES = {
    "passage encoding (MiniLM)": Rate(40.0, "m", 14_000.0, "p: sentence-transformers table"),
    "triple extraction (spaCy; GPU: Llama-3.1-8B FP8 LLM extractor)": Rate(
        40.0,
        "m",
        5_800.0 / (TRIPLES_PER_PASSAGE * 12),
        "x: 5.8k tok/s H100 (MLPerf), 12 tok/triple",
    ),
    "triple embedding (MiniLM)": Rate(
        160.0 / TRIPLES_PER_PASSAGE, "m", 14_000.0 / TRIPLES_PER_PASSAGE, "p: 14k sentences/s"
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scale-results",
        default=None,
        help="projection: a results file of the triple-memory and bm25 sections (measured rates)",
    )


def _hours(passages: int, per_second: float) -> float:
    return passages / per_second / 3600


def _cell(value: float, mark: str, unit: str) -> str:
    return f"{value:,.1f} {unit} ({mark})"


def time_rows(measured: dict) -> list[dict]:
    """One row per (corpus, stage): hours on 1 node, 32 nodes (linear: shards are
    independent), 1 GPU."""
    rows = []
    for corpus, passages in CORPORA.items():
        for stage, rate in RATES.items():
            rows.append(
                {
                    "corpus": corpus,
                    "stage": stage,
                    "1 node": _cell(_hours(passages, rate.node), "x", "h"),
                    f"{NODES} nodes": _cell(_hours(passages, rate.node * NODES), "x", "h"),
                    "1 GPU": _cell(_hours(passages, rate.gpu), "x", "h") if rate.gpu else "—",
                    "rate source": f"node {rate.node:,.1f} passages/s ({rate.node_source}); "
                    f"GPU {rate.gpu_source or '—'}",
                }
            )
        for backend, label in (("bm25s", "bm25s"), ("lucene", "Lucene, 2 threads")):
            builds = measured.get("bm25", {}).get(backend, {})
            sizes = [v for k, v in builds.items() if k.isdigit()]
            if not sizes:
                continue
            sizes.sort(key=lambda v: v["passages"])
            largest = sizes[-1]
            if len(sizes) > 1:  # fixed cost + per-passage cost, from the two largest builds
                seconds = extrapolate(sizes[-2], largest, passages)["seconds"]
                source = f"line through {sizes[-2]['passages']:,} and {largest['passages']:,} passages (m)"
            else:
                seconds = passages / largest["passages_per_s"]
                source = (
                    f"{largest['passages_per_s']:,.0f} passages/s at {largest['passages']:,} (m)"
                )
            rows.append(
                {
                    "corpus": corpus,
                    "stage": f"BM25 index ({label})",
                    "1 node": _cell(seconds / 3600, "x", "h"),
                    f"{NODES} nodes": "— (not measured)",
                    "1 GPU": "—",
                    "rate source": source,
                }
            )
    return rows


def storage_rows(measured: dict) -> list[dict]:
    """One row per corpus: the triple vectors in Flat and IVF-PQ, and the triple and graph
    tables (stored once, on shared storage, whatever the number of nodes)."""
    rows = []
    per_triple = measured.get("bytes_per_triple")
    for corpus, passages in CORPORA.items():
        triples = passages * TRIPLES_PER_PASSAGE
        rows.append(
            {
                "corpus": corpus,
                "triples": f"{triples / 1e6:,.0f}M (x)",
                "triple vectors, Flat": f"{triples * FLAT_BYTES / 1e9:,.0f} GB (x)",
                "triple vectors, IVF-PQ m=64": f"{triples * IVFPQ_BYTES / 1e9:,.1f} GB (x)",
                "triples.sqlite + graph.sqlite": (
                    f"{triples * per_triple / 1e9:,.0f} GB (x, {per_triple:,.0f} B/triple m)"
                    if per_triple
                    else "—"
                ),
                "passage vectors, Flat": f"{passages * FLAT_BYTES / 1e9:,.1f} GB (x)",
            }
        )
    return rows


def measured_rates(path: str | None) -> dict:
    """The bm25 section's results and the bytes per triple of the largest triple-memory build."""
    if not path:
        return {}
    results = json.loads(Path(path).read_text("utf-8"))
    out = {"bm25": results.get("bm25", {})}
    builds = results.get("triple-memory", {}).get("builds", {})
    if builds:
        largest = max(builds.values(), key=lambda b: b["passages"])
        files = largest.get("files_mb", {})
        tables = files.get("triples.sqlite", 0) + files.get("graph.sqlite", 0)
        if tables:
            out["bytes_per_triple"] = tables * 2**20 / largest["triples"]
    return out


def run(args: argparse.Namespace) -> dict:
    measured = measured_rates(args.scale_results)
    times, storage = time_rows(measured), storage_rows(measured)
    return {
        "time": times,
        "storage": storage,
        "markdown": format_table(times) + "\n\n" + format_table(storage),
    }
