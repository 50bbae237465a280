"""`kirag submit`: package and validate leaderboard submissions."""

from __future__ import annotations

import argparse

from kirag.cli.common import add_command
from kirag.errors import KiragError


def register(subparsers) -> None:
    parser = add_command(subparsers, "submit", help="package and validate leaderboard submissions")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise KiragError("`kirag submit` is not built yet (issue 4)")
