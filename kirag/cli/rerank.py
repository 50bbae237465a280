"""`kirag rerank`: rerank a run with a Rank1-style reasoning reranker or a cross-encoder."""

from __future__ import annotations

import argparse

from kirag.cli.common import add_command
from kirag.errors import KiragError


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "rerank",
        help="rerank a run with a Rank1-style reasoning reranker or a cross-encoder",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise KiragError("`kirag rerank` is not built yet (issue 5)")
