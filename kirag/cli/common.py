"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from kirag.seeding import DEFAULT_SEED


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults and keeps the line breaks of descriptions and epilogs."""


def add_command(
    subparsers, name: str, help: str, description: str | None = None, epilog: str | None = None
):
    return subparsers.add_parser(
        name,
        help=help,
        description=description or help,
        epilog=epilog,
        formatter_class=HelpFormatter,
    )


def add_seed(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")


def add_on_error(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skip-bad-lines",
        action="store_true",
        help="skip malformed input lines (counted and reported) instead of stopping at the first",
    )


def on_error(args: argparse.Namespace) -> str:
    return "skip" if getattr(args, "skip_bad_lines", False) else "raise"


def prepare_output(path: str | Path | None) -> None:
    """Create the parent folder of an output file and check it is writable, before any long
    work (model loads, reranking, benchmarks): an OSError naming the user's folder if not."""
    if not path:
        return
    parent = Path(path).absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(parent)) from None
