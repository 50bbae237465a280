"""`kirag doctor`: check this setup: engines, models, extras, device."""

from __future__ import annotations

import argparse

from kirag.cli.common import add_command
from kirag.errors import KiragError


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "doctor", help="check this setup: engines, models, extras, device"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise KiragError("`kirag doctor` is not built yet (issue 7)")
