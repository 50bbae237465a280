"""`kirag search`: search an index with a topics file and write a run."""

from __future__ import annotations

import argparse

from kirag.cli.common import add_command
from kirag.errors import KiragError


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "search", help="search an index with a topics file and write a run"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise KiragError("`kirag search` is not built yet (issue 3)")
