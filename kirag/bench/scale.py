"""`kirag bench scale`: corpus-scale measurements, one section per module (each with
`add_arguments(parser)` and `run(args) -> dict`): serial vs Ray executors, the memory of the
triple index and bm25s builds, CPU encoding backends, and the 1-node / cluster / GPU projection."""

from __future__ import annotations

import argparse
import importlib

# section name -> module (each section is measured by its own module, run in this order)
SECTIONS: dict[str, str] = {
    "triple-memory": "kirag.bench.scale_memory",
    "bm25": "kirag.bench.scale_bm25",
    "projection": "kirag.bench.scale_projection",
    "executors": "kirag.bench.scale_executors",
    "encoding": "kirag.bench.scale_encoding",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated sections ({', '.join(SECTIONS) or 'none yet'})",
    )
    for module in SECTIONS.values():
        importlib.import_module(module).add_arguments(parser)


def run(args: argparse.Namespace) -> dict:
    from kirag.errors import InputError

    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        raise InputError(f"unknown scale section {unknown[0]!r}; known: {', '.join(SECTIONS)}")
    return {name: importlib.import_module(SECTIONS[name]).run(args) for name in chosen}
