"""`kirag report`: one self-contained HTML file (no network, assets inline) of KiRAG answers,
Rank1 explanations or an evaluation of runs, to open from disk in any browser."""

from __future__ import annotations

import argparse

from kirag.cli.arguments import INPUT, OUTPUT
from kirag.cli.common import add_command
from kirag.core.ranges import COUNT

EPILOG = """\
examples:
  kirag report answers.jsonl --questions questions.jsonl --index indexes/enwiki-triples --html answers.html
  kirag report rank1.explanations.jsonl --topics topics.tsv --qrels qrels.txt --index indexes/enwiki-bm25 --html rank1.html
  kirag report bm25.trec rank1.trec --qrels qrels.txt --metrics nDCG@10 R@100 --html eval.html
  kirag report per-query.json --html eval.html          # kirag eval --per-query output
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "report",
        help="write an HTML report of answers, reranking or runs",
        epilog=EPILOG,
    )
    parser.add_argument(
        "inputs",
        type=INPUT,
        nargs="+",
        metavar="INPUT",
        help="kirag answer --answers JSONL, kirag rerank --explanations JSONL, kirag eval "
        "--per-query JSON, or run files (with --qrels); several of one kind",
    )
    parser.add_argument("--html", type=OUTPUT, required=True, help="the HTML file to write")
    parser.add_argument(
        "--qrels", type=INPUT, help="judgments: relevance marks (Rank1), metrics (runs)"
    )
    parser.add_argument("--topics", type=INPUT, help="query texts (Rank1, runs)")
    parser.add_argument(
        "--index", type=INPUT, help="index folder whose docs.sqlite holds the passages"
    )
    parser.add_argument(
        "--questions", type=INPUT, help="KiRAG: the question file (gold answers and support)"
    )
    parser.add_argument("--metrics", nargs="+", default=["nDCG@10", "MRR@10", "R@100"])
    parser.add_argument("--rel-level", type=COUNT, default=None)
    parser.add_argument("--trials", type=COUNT, default=10_000, help="randomisation-test trials")
    parser.add_argument("--title", default=None)
    parser.set_defaults(func=run)


def add_html(parser: argparse.ArgumentParser) -> None:
    """The --html flag of answer, rerank and eval: the same report, written from the run."""
    parser.add_argument(
        "--html", type=OUTPUT, default=None, help="also write an HTML report here (kirag report)"
    )


def write_report(payload: dict, path: str) -> None:
    from kirag.report import write_page

    size = write_page(payload, payload.get("title", "kirag report"), path)
    counts = ", ".join(f"{v} {k}" for k, v in payload["summary"].items())
    print(f"wrote {path} ({size / 1e6:.2f} MB: {counts})")


def run(args: argparse.Namespace) -> int:
    from kirag.cli.common import prepare_output
    from kirag.report import ReportOptions, build_payload

    prepare_output(args.html)
    options = ReportOptions(
        qrels=args.qrels,
        topics=args.topics,
        index=args.index,
        questions=args.questions,
        metrics=tuple(args.metrics),
        rel_level=args.rel_level,
        trials=args.trials,
        title=args.title,
    )
    write_report(build_payload(args.inputs, options), args.html)
    return 0
