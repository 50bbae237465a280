"""`kirag bench`: run the benchmarks (retrieval, eval, rerank, kirag)."""

from __future__ import annotations

import argparse

from kirag.cli.common import add_command
from kirag.errors import KiragError


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "bench", help="run the benchmarks (retrieval, eval, rerank, kirag)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise KiragError("`kirag bench` is not built yet (issue 3)")
