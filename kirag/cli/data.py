"""`kirag data prepare DATASET`: the open-domain setup of a multi-hop QA dataset (corpus,
train/dev/test questions, qrels) from its official files, as KiRAG's reference builds it."""

from __future__ import annotations

import argparse
import time

from kirag.cli.arguments import INPUT, OUTPUT
from kirag.cli.common import add_command
from kirag.core.ranges import COUNT_OR_ZERO, SEED
from kirag.eval.open_domain import DATASETS, DEFAULT_NUM_DEV, DEFAULT_SEED

EPILOG = """\
official files expected in --raw (as downloaded):
  hotpotqa         hotpot_train_v1.1.json, hotpot_dev_distractor_v1.json and the abstracts dump
                   enwiki-20171001-pages-meta-current-withlinks-abstracts.tar.bz2 (or the folder
                   it extracts to; elsewhere: --abstracts PATH)
  2wikimultihopqa  train.json, dev.json, test.json
  musique          musique_ans_v1.0_train.jsonl, musique_ans_v1.0_dev.jsonl, musique_ans_v1.0_test.jsonl

output folder: corpus.jsonl, train.jsonl / dev.jsonl / test.jsonl (kirag multi-hop JSONL: the
original dev set is test, --num-dev seeded-sampled train questions are dev), qrels.{train,dev,test}.txt
(TREC), manifest.json, kirag-config.json. The HotpotQA dump is staged in a resumable SQLite
folder beside the output (.NAME.encode-KEY), removed when the preparation completes.

examples:
  kirag data prepare 2wikimultihopqa --raw raw/2wikimultihopqa --output data/2wikimultihopqa
  kirag data prepare hotpotqa --raw raw/hotpotqa --output data/hotpotqa
  kirag index bm25 --corpus data/hotpotqa/corpus.jsonl --index indexes/hotpotqa-bm25
  kirag search --index indexes/hotpotqa-bm25 --topics data/hotpotqa/test.jsonl --output runs/hotpotqa-bm25.trec
  kirag eval --run runs/hotpotqa-bm25.trec --qrels data/hotpotqa/qrels.test.txt --metrics R@3 R@5
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "data", help="prepare datasets (multi-hop QA open-domain setup)"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    prepare = add_command(
        actions,
        "prepare",
        help="corpus, question splits and qrels of a multi-hop QA dataset from its official files",
        epilog=EPILOG,
    )
    prepare.add_argument("dataset", choices=list(DATASETS), help="the dataset")
    prepare.add_argument(
        "--raw", type=INPUT, required=True, help="folder holding the official files"
    )
    prepare.add_argument(
        "--output", type=OUTPUT, required=True, help="folder to create (e.g. data/hotpotqa)"
    )
    prepare.add_argument(
        "--abstracts",
        type=INPUT,
        default=None,
        help="HotpotQA's abstracts dump (.tar.bz2 or extracted folder); default: found in --raw",
    )
    prepare.add_argument(
        "--num-dev",
        type=COUNT_OR_ZERO,
        default=DEFAULT_NUM_DEV,
        help="train questions sampled as the dev split (the reference: 500)",
    )
    prepare.add_argument(
        "--seed", type=SEED, default=DEFAULT_SEED, help="seed of the split (the reference: 0)"
    )
    prepare.add_argument(
        "--overwrite", action="store_true", help="replace a folder an earlier preparation wrote"
    )
    prepare.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from kirag.core.runconfig import RunConfig
    from kirag.eval.open_domain import prepare_dataset

    started = time.perf_counter()
    stats = prepare_dataset(
        args.dataset,
        args.raw,
        args.output,
        abstracts=args.abstracts,
        num_dev=args.num_dev,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    results = {**asdict(stats), "seconds": round(time.perf_counter() - started, 3)}
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    RunConfig(f"data prepare {args.dataset}", settings, results=results).write(args.output)
    questions = ", ".join(f"{split} {n}" for split, n in stats.questions.items())
    print(f"prepared {args.dataset} in {args.output}: {stats.documents} documents; {questions}")
    if stats.unmatched_supporting:
        print(
            f"warning: {stats.unmatched_supporting} supporting facts name no corpus document "
            f"(first: {'; '.join(stats.unmatched_examples[:3])}); they are left out of the qrels"
        )
    return 0
