"""`kirag submit TARGET`: package a leaderboard submission (refusing invalid input), or
`kirag submit validate TARGET PATH` to check an existing one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kirag.cli.arguments import INPUT, OUTPUT
from kirag.cli.common import add_command
from kirag.core.ranges import COUNT
from kirag.eval.submission import QA_TARGETS

EPILOG = """\
examples:
  kirag submit msmarco --dev-run dev.tsv --eval-run eval.tsv --dev-topics queries.dev.small.tsv \\
      --eval-topics queries.eval.small.tsv --name mygroup-bm25 --team "My Group" \\
      --description "BM25 + Rank1 reranking" --type reranking --output-dir leaderboard/
  kirag submit trec --run run.trec --topics topics.dl20.txt --tag mygroup1 --output mygroup1.trec
  kirag submit qa --target hotpotqa --answers answers.jsonl --questions hotpot_dev.json --output pred.json
  kirag submit validate msmarco leaderboard/submissions/20261124-mygroup-bm25
  kirag submit validate hotpotqa pred.json --questions hotpot_dev.json
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "submit", help="package and validate leaderboard submissions", epilog=EPILOG
    )
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)

    msmarco = add_command(
        targets, "msmarco", help="MS MARCO passage ranking leaderboard submission"
    )
    msmarco.add_argument("--dev-run", type=INPUT, required=True)
    msmarco.add_argument("--eval-run", type=INPUT, required=True)
    msmarco.add_argument(
        "--dev-topics", type=INPUT, required=True, help="dev queries (every one must be ranked)"
    )
    msmarco.add_argument(
        "--eval-topics", type=INPUT, required=True, help="eval queries (every one must be ranked)"
    )
    msmarco.add_argument(
        "--name", required=True, help="submission name (the id becomes yyyymmdd-name)"
    )
    msmarco.add_argument("--team", required=True)
    msmarco.add_argument(
        "--description", required=True, help="model description shown on the leaderboard"
    )
    msmarco.add_argument("--type", required=True, choices=["full ranking", "reranking"])
    msmarco.add_argument("--paper", default="", help="URL of the paper (or empty)")
    msmarco.add_argument("--code", default="", help="URL of the code (or empty)")
    msmarco.add_argument(
        "--embargo-until", default="", help="yyyy/mm/dd: an anonymous submission until then"
    )
    msmarco.add_argument(
        "--depth",
        type=COUNT,
        default=10,
        help="passages per query (MRR@10 reads 10; the leaderboard's sanity check prefers 1000)",
    )
    msmarco.add_argument(
        "--output-dir", type=OUTPUT, required=True, help="folder in which submissions/ is created"
    )
    msmarco.set_defaults(func=run_msmarco)

    trec = add_command(targets, "trec", help="TREC-style run (TREC DL, BEIR)")
    trec.add_argument("--run", type=INPUT, required=True)
    trec.add_argument("--topics", type=INPUT, required=True, help="every topic must be present")
    trec.add_argument("--tag", required=True, help="run tag (1-20 letters, digits, _ . -)")
    trec.add_argument("--k", type=COUNT, default=1000, help="documents per topic at most")
    trec.add_argument("--output", type=OUTPUT, required=True)
    trec.set_defaults(func=run_trec)

    qa = add_command(
        targets,
        "qa",
        help="HotpotQA / 2WikiMultiHopQA / MuSiQue prediction file from `kirag answer` output",
    )
    qa.add_argument(
        "--target",
        dest="qa_target",
        required=True,
        choices=QA_TARGETS,
    )
    qa.add_argument(
        "--answers", type=INPUT, required=True, help="answers JSONL written by `kirag answer`"
    )
    qa.add_argument(
        "--questions", type=INPUT, help="the dataset file: every question must be answered"
    )
    qa.add_argument("--output", type=OUTPUT, required=True)
    qa.set_defaults(func=run_qa)

    validate = add_command(targets, "validate", help="check an existing submission file or folder")
    validate.add_argument("kind", choices=["msmarco", "trec", *QA_TARGETS])
    validate.add_argument("path", type=INPUT)
    validate.add_argument("--topics", type=INPUT, help="TREC: the topics that must all be present")
    validate.add_argument("--dev-topics", type=INPUT, help="MS MARCO: dev queries")
    validate.add_argument("--eval-topics", type=INPUT, help="MS MARCO: eval queries")
    validate.add_argument(
        "--questions", type=INPUT, help="QA: the dataset whose questions must all be answered"
    )
    validate.add_argument("--k", type=COUNT, default=1000, help="TREC: documents per topic at most")
    validate.set_defaults(func=run_validate)


def _written(args: argparse.Namespace, output, results: dict, config_beside=None) -> int:
    """Record the run's configuration beside `config_beside` (default: the output)."""
    from kirag.core.runconfig import RunConfig

    settings = {k: v for k, v in vars(args).items() if k != "func"}
    config = RunConfig(f"submit {args.target}", settings, results=results).write(
        config_beside or output
    )
    print(f"wrote {output} (configuration: {config})")
    return 0


def run_msmarco(args: argparse.Namespace) -> int:
    from kirag.eval.runs import read_run
    from kirag.eval.submission import MSMarcoMetadata, write_msmarco_submission
    from kirag.io.topics import read_topics

    folder = write_msmarco_submission(
        args.output_dir,
        args.name,
        read_run(args.dev_run),
        read_run(args.eval_run),
        list(read_topics(args.dev_topics)),
        list(read_topics(args.eval_topics)),
        MSMarcoMetadata(
            args.team, args.description, args.type, args.paper, args.code, args.embargo_until
        ),
        depth=args.depth,
    )
    # the configuration goes beside submissions/, not into the folder the leaderboard packs
    return _written(args, folder, {"folder": str(folder)}, Path(args.output_dir) / folder.name)


def run_trec(args: argparse.Namespace) -> int:
    from kirag.eval.runs import read_run
    from kirag.eval.submission import write_trec_submission
    from kirag.io.topics import read_topics

    path = write_trec_submission(
        read_run(args.run), args.output, args.tag, list(read_topics(args.topics)), args.k
    )
    return _written(args, path, {"output": str(path)})


def run_qa(args: argparse.Namespace) -> int:
    from kirag.eval.datasets import load_questions
    from kirag.eval.submission import write_qa_predictions
    from kirag.io.lines import read_records

    predictions = list(read_records(args.answers, _answer_record))
    ids = [e.id for e in load_questions(args.questions)] if args.questions else None
    path = write_qa_predictions(args.qa_target, predictions, args.output, ids)
    return _written(args, path, {"output": str(path), "predictions": len(predictions)})


def _answer_record(line: str):
    from kirag.errors import InputError
    from kirag.eval.submission import QAPrediction

    try:
        r = json.loads(line)
        return QAPrediction(
            str(r["id"]),
            r["answer"],
            [(str(t), int(i)) for t, i in r.get("supporting_facts", [])],
            list(r.get("supporting_doc_ids", [])),
            [int(i) for i in r.get("support_idxs", [])],
            [list(e) for e in r.get("evidence", [])],
            bool(r.get("answerable", True)),
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"not a `kirag answer` record ({exc!r})") from None


def run_validate(args: argparse.Namespace) -> int:
    from kirag.eval import submission
    from kirag.io.topics import read_topics

    if args.kind == "msmarco":
        dev = list(read_topics(args.dev_topics)) if args.dev_topics else None
        evl = list(read_topics(args.eval_topics)) if args.eval_topics else None
        problems = submission.validate_msmarco_submission(args.path, dev, evl)
    elif args.kind == "trec":
        topics = list(read_topics(args.topics)) if args.topics else None
        problems = submission.validate_trec_submission(args.path, topics, args.k)
    else:
        from kirag.eval.datasets import load_questions

        ids = [e.id for e in load_questions(args.questions)] if args.questions else None
        problems = submission.validate_qa_predictions(args.kind, args.path, ids)
    for problem in problems:
        print(problem)
    print(f"{args.path}: {'valid' if not problems else f'INVALID ({len(problems)} problems)'}")
    return 0 if not problems else 1
