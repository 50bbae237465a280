"""`kirag index`: build an index (bm25, dense, triples) from a corpus."""

from __future__ import annotations

import argparse

from kirag.cli.common import add_command
from kirag.errors import KiragError


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "index", help="build an index (bm25, dense, triples) from a corpus"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise KiragError("`kirag index` is not built yet (issue 3)")
