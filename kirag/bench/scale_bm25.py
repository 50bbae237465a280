"""`kirag bench scale --sections bm25` (c): bm25s (shard statistics reduced to global ones)
against Lucene (pyserini, 2 threads) on the same sampled-sentence corpus: index time, peak RSS
and index size at two sizes, each build in a child process, and a linear extrapolation of the
measured pair to MS MARCO's 8.8M passages."""

from __future__ import annotations

import argparse
from pathlib import Path

from kirag.bench.harness import rounded
from kirag.bench.scale_memory import build_child, workdir, write_synthetic
from kirag.core.ranges import COUNT

MSMARCO_PASSAGES = 8_841_823


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bm25-sizes",
        default="200000,1000000",
        help="bm25: two corpus sizes (the larger is the headline; both fit the extrapolation)",
    )
    parser.add_argument("--bm25-threads", type=COUNT, default=2, help="bm25: Lucene's threads")


def extrapolate(small: dict, large: dict, size: int) -> dict:
    """Each measured figure at `size` passages, on the line through the two measurements
    (fixed cost + per-passage cost), marked as extrapolated."""
    out = {"passages": size, "how": "extrapolated: line through the two measured sizes"}
    for key in ("seconds", "peak_rss_mb", "index_mb"):
        slope = (large[key] - small[key]) / (large["passages"] - small["passages"])
        out[key] = large[key] + slope * (size - large["passages"])
    return out


def run(args: argparse.Namespace) -> dict:
    sizes = sorted(int(s) for s in args.bm25_sizes.split(","))
    out: dict = {"lucene_threads": args.bm25_threads}
    with workdir(args) as root:
        root = Path(root)
        for size in sizes:
            corpus = write_synthetic(root / f"bm25-corpus-{size}.jsonl", size)
            for backend in ("bm25s", "lucene"):
                index = root / f"{backend}-{size}"
                command = ["bm25", "--corpus", corpus, "--index", index, "--overwrite"]
                command += ["--backend", backend, "--threads", args.bm25_threads]
                result = build_child(index, command, f"index bm25 {backend} ({size} passages)")
                result.update(passages=size, passages_per_s=size / result["seconds"])
                out.setdefault(backend, {})[str(size)] = rounded(result, 2)
            corpus.unlink()
    for backend in ("bm25s", "lucene"):
        small, large = (out[backend][str(s)] for s in (sizes[0], sizes[-1]))
        out[backend]["msmarco"] = rounded(extrapolate(small, large, MSMARCO_PASSAGES), 1)
    return out
