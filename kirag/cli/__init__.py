"""The `kirag` command: one subcommand per job, flags mirroring the Python API."""

from __future__ import annotations

import argparse
import importlib
import logging
import sqlite3
import sys
from collections.abc import Sequence

from kirag import __version__
from kirag.errors import KiragError

# Subcommand -> module in kirag.cli that defines register(subparsers). Modules import their heavy
# dependencies inside their run functions, so `kirag --help` stays instant.
COMMANDS = {
    "index": "index",
    "search": "search",
    "rerank": "rerank",
    "answer": "answer",
    "eval": "evaluate",
    "submit": "submit",
    "bench": "bench",
    "data": "data",
    "doctor": "doctor",
    "models": "models",
    "train": "train",
    "quantize": "quantize",
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
    parser = argparse.ArgumentParser(
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
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    from kirag.progress import set_progress

    if args.quiet:
        set_progress(False)
    from kirag.io.lines import collect_reports

    try:
        with collect_reports():
            return int(args.func(args) or 0)
    except KiragError as exc:
        print(f"kirag {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:
        # the user's path and what to change, not a traceback (DEBUG logging still shows it)
        from kirag.oserrors import os_error_message, sqlite_error_message

        logging.getLogger("kirag").debug("OS error", exc_info=True)
        message = os_error_message(exc) if isinstance(exc, OSError) else sqlite_error_message(exc)
        print(f"kirag {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kirag {args.command}: interrupted", file=sys.stderr)
        return 130
