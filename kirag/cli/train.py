"""`kirag train aligner`: fine-tune the reasoning-chain aligner on the reference's aligner data
(train_aligner.json / dev_aligner.json), on silver chains built from a question file, or on
silver chains from a triple index's own knowledge graph (`--from-corpus`); `kirag train
encoder`: fine-tune the dense encoder on the corpus itself."""

from __future__ import annotations

import argparse
from pathlib import Path

from kirag.cli.arguments import INPUT, OUTPUT
from kirag.cli.common import HelpFormatter, add_seed
from kirag.core.ranges import COUNT, COUNT_OR_ZERO, FRACTION, NON_NEGATIVE, OPEN_FRACTION, POSITIVE
from kirag.rag.aligner_training import TrainSettings

EPILOG = """\
examples:
  kirag train aligner --train train_aligner.json --dev dev_aligner.json --output aligner/
  kirag train aligner --from-questions questions.jsonl --index indexes/triples --output aligner/
  kirag train aligner --from-corpus indexes/triples --output aligner/
  kirag answer --index indexes/triples --aligner aligner/ --question "..."
"""


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train", help="train models (the KiRAG aligner, the dense encoder)"
    )
    jobs = train.add_subparsers(dest="job", metavar="JOB", required=True)
    p = jobs.add_parser(
        "aligner",
        help="fine-tune the reasoning-chain aligner (the reference's objective and defaults)",
        description="Fine-tune a bi-encoder as KiRAG's reasoning-chain aligner: in-batch "
        "contrastive loss with hard negatives, temperature 0.01, as the reference.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    d = TrainSettings()
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--train", type=INPUT, help="train_aligner.json (the reference's format)")
    source.add_argument(
        "--from-questions",
        type=INPUT,
        help="a question file with gold passages: silver chains from their triples (needs --index)",
    )
    source.add_argument(
        "--from-corpus",
        type=INPUT,
        metavar="INDEX",
        help="a triple index: silver 2-/3-hop chains from its knowledge graph, no labels "
        "(CPU-sized defaults, see kirag.rag.corpus_training.CORPUS_ALIGNER)",
    )
    p.add_argument("--chains", type=COUNT, default=None, help="silver chains (with --from-corpus)")
    p.add_argument(
        "--dev", type=INPUT, help="dev_aligner.json: MRR of the positive among its negatives"
    )
    p.add_argument("--index", type=INPUT, help="triple index of the corpus (with --from-questions)")
    p.add_argument(
        "--dev-fraction", type=OPEN_FRACTION, default=0.1, help="silver rows held out for dev"
    )
    p.add_argument("--output", type=OUTPUT, required=True, help="folder of the trained aligner")
    p.add_argument(
        "--checkpoints", type=OUTPUT, help="checkpoint folder (default: OUTPUT-checkpoints)"
    )
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--model", default=d.base_model, help="base bi-encoder (e5-large-v2 in paper)")
    p.add_argument("--epochs", type=POSITIVE, default=None, help=f"default {d.epochs:g}")
    p.add_argument("--lr", type=POSITIVE, default=None, help=f"default {d.learning_rate:g}")
    p.add_argument("--weight-decay", type=NON_NEGATIVE, default=d.weight_decay)
    p.add_argument("--warmup", type=FRACTION, default=d.warmup_ratio, help="warm-up ratio")
    p.add_argument("--batch-size", type=COUNT, default=None, help=f"default {d.batch_size}")
    p.add_argument("--accumulate", type=COUNT, default=None, help=f"default {d.accumulate}")
    p.add_argument("--grad-clip", type=NON_NEGATIVE, default=d.grad_clip)
    p.add_argument(
        "--query-max-length", type=COUNT, default=None, help=f"default {d.query_max_length}"
    )
    p.add_argument("--doc-max-length", type=COUNT, default=d.doc_max_length)
    p.add_argument(
        "--negatives",
        type=COUNT_OR_ZERO,
        default=None,
        help=f"hard negatives a row (default {d.num_negatives})",
    )
    p.add_argument("--save-steps", type=COUNT, default=None, help="checkpoint every N steps")
    p.add_argument("--device", default=None)
    add_seed(p)
    p.set_defaults(func=run)
    _register_encoder(jobs)


def _register_encoder(jobs) -> None:
    from kirag.rag.corpus_training import CORPUS_ENCODER, RECIPES

    d = CORPUS_ENCODER
    p = jobs.add_parser(
        "encoder",
        help="fine-tune the dense encoder on the corpus itself (inverse cloze / title pairs)",
        description="Contrastive fine-tuning of a bi-encoder on query-passage pairs made from "
        "the corpus, no labels: inverse cloze task (a sentence as the query, the rest of its "
        "passage as the positive) and/or title-passage pairs; in-batch negatives.",
        epilog="example:\n  kirag train encoder --from-corpus enwiki-sample --output "
        "indexes/encoder-ict\n  kirag index dense --corpus enwiki-sample --encoder "
        "indexes/encoder-ict --index indexes/dense-ict",
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--from-corpus", type=INPUT, required=True, metavar="CORPUS", help="corpus (or name)"
    )
    p.add_argument("--output", type=OUTPUT, required=True, help="folder of the trained encoder")
    p.add_argument(
        "--checkpoints", type=OUTPUT, help="checkpoint folder (default: OUTPUT-checkpoints)"
    )
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--model", default=d.base_model, help="base bi-encoder")
    p.add_argument("--recipe", default="ict", choices=RECIPES)
    p.add_argument("--pairs", type=COUNT, default=2000, help="training pairs (one per passage)")
    p.add_argument("--epochs", type=POSITIVE, default=d.epochs)
    p.add_argument("--lr", type=POSITIVE, default=d.learning_rate)
    p.add_argument("--batch-size", type=COUNT, default=d.batch_size)
    p.add_argument("--max-length", type=COUNT, default=d.query_max_length, help="tokens")
    p.add_argument("--temperature", type=POSITIVE, default=d.temperature)
    p.add_argument("--save-steps", type=COUNT, default=None, help="checkpoint every N steps")
    p.add_argument("--device", default=None)
    add_seed(p)
    p.set_defaults(func=run_encoder)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from kirag.core.progress import progress_enabled
    from kirag.core.runconfig import RunConfig
    from kirag.errors import KiragError
    from kirag.rag import aligner_training as at
    from kirag.rag.corpus_training import CORPUS_ALIGNER

    base = CORPUS_ALIGNER if args.from_corpus else TrainSettings()
    given = {
        "epochs": args.epochs,
        "learning_rate": args.lr,
        "batch_size": args.batch_size,
        "accumulate": args.accumulate,
        "query_max_length": args.query_max_length,
        "num_negatives": args.negatives,
    }
    settings = replace(
        base,
        base_model=args.model,
        weight_decay=args.weight_decay,
        warmup_ratio=args.warmup,
        grad_clip=args.grad_clip,
        doc_max_length=args.doc_max_length,
        seed=args.seed,
        save_steps=args.save_steps,
        **{k: v for k, v in given.items() if v is not None},
    )
    args.negatives = settings.num_negatives
    if args.from_corpus:
        train_rows, dev_rows = _corpus_rows(args)
    elif args.train:
        train_rows = at.build_rows(at.read_aligner_file(args.train), args.negatives, args.seed)
        dev_rows = (
            at.build_rows(at.read_aligner_file(args.dev), args.negatives, args.seed)
            if args.dev
            else []
        )
    else:
        if not args.index:
            raise KiragError("--from-questions needs --index (a triple index of the corpus)")
        train_rows, dev_rows = _silver_rows(args)
    output = Path(args.output)
    checkpoints = Path(args.checkpoints or f"{output}-checkpoints")
    trainer = at.AlignerTrainer(settings, device=args.device, progress=progress_enabled())
    metrics = trainer.train(train_rows, dev_rows, output, checkpoints, resume=args.resume)
    metrics.update(train_rows=len(train_rows), dev_rows=len(dev_rows))
    config = RunConfig("train aligner", {**at.settings_dict(settings), **_sources(args)})
    config.results = metrics
    config.write(output)
    print(f"aligner saved to {output}: " + ", ".join(f"{k}={v}" for k, v in metrics.items()))
    return 0


def _sources(args: argparse.Namespace) -> dict:
    keys = ("train", "dev", "from_questions", "from_corpus", "chains", "index", "dev_fraction")
    return {k: getattr(args, k) for k in (*keys, "checkpoints", "resume")}


def _corpus_rows(args: argparse.Namespace):
    """Silver rows from a triple index's knowledge graph; a seeded fraction held out for dev."""
    from kirag.knowledge.triple_index import TripleIndex
    from kirag.rag import corpus_training as ct

    graph = ct.CorpusGraph(TripleIndex(args.from_corpus))
    chains = ct.silver_chains(graph, args.chains or ct.CORPUS_CHAINS, args.seed)
    if not chains:
        from kirag.errors import KiragError

        raise KiragError(f"{args.from_corpus}: no 2-hop path found in its knowledge graph")
    n_dev = int(len(chains) * args.dev_fraction)
    rows = lambda part: ct.aligner_rows(graph, part, args.negatives, args.seed)  # noqa: E731
    return rows(chains[n_dev:]), rows(chains[:n_dev])


def run_encoder(args: argparse.Namespace) -> int:
    """`kirag train encoder --from-corpus CORPUS`: ICT / title pairs, in-batch negatives."""
    from dataclasses import replace

    from kirag.core.progress import progress_enabled
    from kirag.core.runconfig import RunConfig
    from kirag.io.corpus import read_corpus
    from kirag.rag import aligner_training as at
    from kirag.rag import corpus_training as ct

    settings = replace(
        ct.CORPUS_ENCODER,
        base_model=args.model,
        learning_rate=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        query_max_length=args.max_length,
        doc_max_length=args.max_length,
        temperature=args.temperature,
        seed=args.seed,
        save_steps=args.save_steps,
    )
    rows = ct.encoder_pairs(read_corpus(args.from_corpus), args.pairs, args.seed, args.recipe)
    output = Path(args.output)
    checkpoints = Path(args.checkpoints or f"{output}-checkpoints")
    trainer = at.AlignerTrainer(settings, device=args.device, progress=progress_enabled())
    metrics = trainer.train(rows, [], output, checkpoints, resume=args.resume)
    metrics.update(train_rows=len(rows))
    sources = {"from_corpus": args.from_corpus, "recipe": args.recipe, "pairs": args.pairs}
    config = RunConfig("train encoder", {**at.settings_dict(settings), **sources})
    config.results = metrics
    config.write(output)
    print(f"encoder saved to {output}: " + ", ".join(f"{k}={v}" for k, v in metrics.items()))
    return 0


def _silver_rows(args: argparse.Namespace):
    """Silver rows from a question file; a seeded fraction of the questions held out for dev."""
    import random

    from kirag.eval.datasets import load_questions
    from kirag.knowledge.triple_index import TripleIndex
    from kirag.rag.aligner import aligner_query
    from kirag.rag.aligner_training import build_rows, silver_examples

    examples = silver_examples(load_questions(args.from_questions), TripleIndex(args.index))
    if not examples:
        from kirag.errors import InputError

        raise InputError("no question with gold passages found in the index", args.from_questions)
    random.Random(args.seed).shuffle(examples)
    n_dev = int(len(examples) * args.dev_fraction)
    rows = lambda part: build_rows(part, args.negatives, args.seed, query=aligner_query)  # noqa: E731
    return rows(examples[n_dev:]), rows(examples[:n_dev])
