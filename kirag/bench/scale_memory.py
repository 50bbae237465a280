"""`kirag bench scale --sections triple-memory` (b): peak RSS of `kirag index triples` (spaCy
extraction, MiniLM triple and passage embedding, bm25s) at two corpus sizes, each build in a
child process. The streaming build's goal: peak RSS within 1.3x while the corpus grows 10x."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from kirag.bench.corpora import iter_synthetic, sample_documents
from kirag.bench.harness import rounded, run_child

GOAL = 1.3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--memory-sizes",
        default="5000,50000",
        help="triple-memory: two corpus sizes (passages sampled from the bundled sample)",
    )
    parser.add_argument(
        "--memory-index-type", default="flat", help="triple-memory: FAISS type of the triples"
    )
    parser.add_argument(
        "--memory-encoder-backend",
        default="torch",
        help="triple-memory: encoder backend of the builds (torch, onnx, openvino); a faster one "
        "shortens the benchmark, the index's memory does not depend on it",
    )
    parser.add_argument(
        "--memory-quantize", default=None, help="triple-memory: int8 for an onnx/openvino encoder"
    )
    parser.add_argument(
        "--scale-workdir", default=None, help="where the scale benchmarks build (default: temp)"
    )


def write_synthetic(path: Path, size: int, seed: int = 42) -> Path:
    """A JSONL corpus of `size` passages sampled from the bundled sample's sentences (seeded,
    streamed to disk: the parent never holds it)."""
    sample = sample_documents()
    with open(path, "w", encoding="utf-8") as out:
        for doc in iter_synthetic(sample, size, seed):
            out.write(json.dumps({"id": doc.id, "contents": doc.text}, ensure_ascii=False) + "\n")
    return path


def build_child(index: Path, command: list[str], what: str) -> dict:
    """Run `kirag index COMMAND` in a child process: seconds, peak RSS MB, index MB, and the
    machine's 1-minute load average after it (timings on a shared machine need it)."""
    result = run_child("kirag.bench.children.scale_build", [index, *command], what)
    result["load_average_1m"] = os.getloadavg()[0]
    return result


def workdir(args: argparse.Namespace):
    """The benchmark's build folder: --scale-workdir (kept) or a temporary one."""
    if args.scale_workdir:
        Path(args.scale_workdir).mkdir(parents=True, exist_ok=True)
        return _Kept(Path(args.scale_workdir))
    return tempfile.TemporaryDirectory(prefix="kirag-scale-")


class _Kept:
    """A context manager yielding a folder that stays."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> str:
        return str(self.path)

    def __exit__(self, *exc) -> None:
        return None


def run(args: argparse.Namespace) -> dict:
    sizes = [int(s) for s in args.memory_sizes.split(",")]
    out: dict = {"index_type": args.memory_index_type, "extractor": "spacy", "builds": {}}
    out["encoder_backend"] = args.memory_encoder_backend
    out["quantize"] = args.memory_quantize
    with workdir(args) as root:
        root = Path(root)
        for size in sizes:
            corpus = write_synthetic(root / f"triples-corpus-{size}.jsonl", size)
            index = root / f"triples-{size}"
            command = ["triples", "--corpus", corpus, "--index", index, "--overwrite"]
            command += ["--index-type", args.memory_index_type]
            command += ["--encoder-backend", args.memory_encoder_backend]
            command += ["--quantize", args.memory_quantize] if args.memory_quantize else []
            cache = root / f"extraction-{size}.sqlite"
            command += ["--cache", cache]
            # a kept work folder reuses an earlier run's extractions: say so beside the figures
            cached = cache.exists()
            result = build_child(index, command, f"index triples ({size} passages)")
            result["extraction_from_earlier_cache"] = cached
            manifest = json.loads((index / "manifest.json").read_text("utf-8"))
            result.update(passages=size, **manifest["counts"])
            result["passages_per_s"] = size / result["seconds"]
            out["builds"][str(size)] = rounded(result, 2)
    small, large = (out["builds"][str(s)] for s in (min(sizes), max(sizes)))
    out["corpus_growth"] = large["passages"] / small["passages"]
    out["peak_rss_growth"] = round(large["peak_rss_mb"] / small["peak_rss_mb"], 3)
    out["goal"] = f"peak RSS within {GOAL}x while the corpus grows {out['corpus_growth']:.0f}x"
    out["goal_met"] = out["peak_rss_growth"] <= GOAL
    return out
