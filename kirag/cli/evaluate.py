"""`kirag eval`: evaluate runs or answers against judgments."""

from __future__ import annotations

import argparse

from kirag.cli.common import add_command
from kirag.errors import KiragError


def register(subparsers) -> None:
    parser = add_command(subparsers, "eval", help="evaluate runs or answers against judgments")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise KiragError("`kirag eval` is not built yet (issue 4)")
