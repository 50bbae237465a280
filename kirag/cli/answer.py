"""`kirag answer`: answer multi-hop questions with KiRAG."""

from __future__ import annotations

import argparse

from kirag.cli.common import add_command
from kirag.errors import KiragError


def register(subparsers) -> None:
    parser = add_command(subparsers, "answer", help="answer multi-hop questions with KiRAG")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise KiragError("`kirag answer` is not built yet (issue 6)")
