"""`kirag search`: search one index, or several fused, with a topics file or one query."""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from typing import get_args

from kirag.cli.arguments import INPUT, OUTPUT
from kirag.cli.common import add_command, add_on_error, add_seed, on_error, prepare_output
from kirag.core.ranges import COUNT
from kirag.eval.runs import RunFormat
from kirag.retrieval.fusion import FUSIONS

EPILOG = """\
examples:
  kirag search --index indexes/enwiki-bm25 --query "Who wrote Animal Farm?" --k 5
  kirag search --index indexes/dl19-bm25 --topics topics.dl19.tsv --output runs/bm25.trec --k 1000
  kirag search --index indexes/bm25 --index indexes/dense --fusion rrf --topics t.tsv --output hybrid.trec
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "search",
        help="search an index with a topics file and write a run",
        epilog=EPILOG,
    )
    parser.add_argument(
        "--index",
        type=INPUT,
        action="append",
        required=True,
        help="index folder; repeat to fuse several",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--topics",
        type=INPUT,
        help="topics file (TSV qid<TAB>text, JSONL, BEIR queries.jsonl, TREC)",
    )
    what.add_argument("--query", help="one query; without --output the hits are printed")
    parser.add_argument(
        "--output", type=OUTPUT, help="run file to write (.trec, .tsv for MS MARCO, .jsonl)"
    )
    parser.add_argument(
        "--format",
        default="auto",
        choices=["auto", *get_args(RunFormat)],
        help="run format (auto: from the file name)",
    )
    parser.add_argument("--k", type=COUNT, default=1000, help="hits per query")
    parser.add_argument("--threads", type=COUNT, default=1, help="search threads")
    parser.add_argument(
        "--fusion", default="rrf", choices=FUSIONS, help="fusion of several indexes"
    )
    parser.add_argument(
        "--depth", type=COUNT, default=100, help="candidates each index contributes to a fusion"
    )
    parser.add_argument("--tag", default="kirag", help="run tag (TREC format)")
    add_on_error(parser)
    add_seed(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kirag.core.runconfig import RunConfig
    from kirag.core.seeding import set_seed
    from kirag.errors import KiragError
    from kirag.eval.runs import write_run
    from kirag.io.topics import read_topics
    from kirag.retrieval.factory import load_retrievers
    from kirag.types import Query

    set_seed(args.seed)
    if args.topics and not args.output:
        raise KiragError("--topics needs --output (the run file to write)")
    prepare_output(args.output)
    retriever = load_retrievers(args.index, fusion=args.fusion, depth=args.depth)
    queries = (
        read_topics(args.topics, on_error=on_error(args))
        if args.topics
        else {"q": Query("q", args.query)}
    )
    started = time.perf_counter()
    run_hits = retriever.batch_search(
        queries, k=args.k, threads=args.threads, with_documents=args.output is None
    )
    seconds = time.perf_counter() - started
    results = {
        "queries": len(queries),
        "seconds": round(seconds, 3),
        "queries_per_second": round(len(queries) / max(seconds, 1e-9), 2),
    }
    empty = [qid for qid, hits in run_hits.items() if not hits]
    if empty:
        results["queries_without_hits"] = len(empty)
        print(
            f"warning: {len(empty)} of {len(run_hits)} queries got no hits (e.g. {', '.join(empty[:5])}): "
            "their text matches no indexed term (empty, stopwords only, or words the index never "
            "saw, e.g. Chinese or emoji in an English-analyzed index); the run has no lines for them",
            file=sys.stderr,
        )
    if args.output:
        write_run(run_hits, args.output, format=args.format, tag=args.tag)
        settings = {k: v for k, v in vars(args).items() if k != "func"}
        RunConfig("search", settings, results=results).write(args.output)
        print(
            f"wrote {args.output}: {len(queries)} queries, {sum(map(len, run_hits.values()))} hits ({results['queries_per_second']} queries/s)"
        )
    else:
        print_hits(run_hits["q"])
    return 0


def print_hits(hits, width: int = 100) -> None:
    """Rank, id, score, title and a snippet of each hit, for people reading a terminal."""
    for hit in hits:
        doc = hit.document
        title = f" [{doc.title}]" if doc is not None and doc.title else ""
        print(f"{hit.rank:>3}  {hit.doc_id}  {hit.score:.4f}{title}")
        if doc is not None:
            print(
                textwrap.indent(
                    textwrap.shorten(doc.text, width=width, placeholder=" ..."), "     "
                )
            )
