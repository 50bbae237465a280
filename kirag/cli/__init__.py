"""The `kirag` command: one subcommand per job, flags mirroring the Python API."""

from __future__ import annotations

import argparse
import importlib
import logging
import sqlite3
import sys
from collections.abc import Sequence

from kirag import __version__
from kirag.cli.arguments import (
    KiragArgumentParser,
    as_flags,
    check_paths,
    given_paths,
    leaf_parser,
)
from kirag.errors import KiragError

# Subcommand -> module in kirag.cli that defines register(subparsers). Modules import their heavy
# dependencies inside their run functions, so `kirag --help` stays instant.
COMMANDS = {
    "index": "index",
    "search": "search",
    "rerank": "rerank",
    "answer": "answer",
    "eval": "evaluate",
    "report": "report",
    "serve": "serve",
    "submit": "submit",
    "bench": "bench",
    "data": "data",
    "doctor": "doctor",
    "models": "models",
    "train": "train",
    "quantize": "quantize",
    "settings": "settings",
}

DESCRIPTION = """\
kirag: retrieval (BM25, dense, hybrid), Rank1-style reasoning reranking and KiRAG
knowledge-triple iterative RAG. Every command writes its resolved configuration as JSON
next to its outputs.

typical flow:
  kirag index bm25 --corpus enwiki-sample --index indexes/enwiki-bm25
  kirag search --index indexes/enwiki-bm25 --topics topics.tsv --output run.trec
  kirag rerank --run run.trec --topics topics.tsv --index indexes/enwiki-bm25 --output rr.trec
  kirag eval --run rr.trec --qrels qrels.txt
"""


def build_parser() -> argparse.ArgumentParser:
    parser = KiragArgumentParser(
        prog="kirag",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kirag {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default: WARNING)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMANDS.values():
        module = importlib.import_module(f"kirag.cli.{module_name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((w for w in words if w in COMMANDS), "")
    try:
        from kirag.core.interrupts import main_takes_over

        main_takes_over()  # from here a Ctrl-C is a KeyboardInterrupt, caught below
        return _main(words)
    except KeyboardInterrupt:  # at any moment: while importing, parsing, working or writing
        print(f"kirag {command}: interrupted" if command else "kirag: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    from kirag.core.progress import set_progress

    if args.quiet:
        set_progress(False)
    from kirag.core.interrupts import checkpoint
    from kirag.io.lines import collect_reports

    try:
        # paths before any work: no output or cache may be the same file as another path
        check_paths(given_paths(parser, args))
        checkpoint("command")  # every flag is checked: the command's own work starts here
        with collect_reports():
            return int(args.func(args) or 0)
    except KiragError as exc:
        # the library names its parameters; the user gave flags
        message = as_flags(str(exc), exc.parameters, leaf_parser(parser, args))
        print(f"kirag {args.command}: error: {_with_notes(message, exc)}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:
        # the user's path and what to change, not a traceback (DEBUG logging still shows it)
        from kirag.core.oserrors import os_error_message, sqlite_error_message

        logging.getLogger("kirag").debug("OS error", exc_info=True)
        message = os_error_message(exc) if isinstance(exc, OSError) else sqlite_error_message(exc)
        print(f"kirag {args.command}: error: {_with_notes(message, exc)}", file=sys.stderr)
        return 2


def _with_notes(message: str, exc: BaseException) -> str:
    """The message and the notes the library added (e.g. where resumable work is kept), one line."""
    notes = [" ".join(note.split()) for note in getattr(exc, "__notes__", ())]
    return "; ".join([message, *notes])
