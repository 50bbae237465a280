"""`kirag train aligner`: fine-tune the reasoning-chain aligner on the reference's aligner data
(train_aligner.json / dev_aligner.json), on silver chains built from a question file, or on
silver chains from a triple index's own knowledge graph (`--from-corpus`); `kirag train
encoder`: fine-tune the dense encoder on the corpus itself."""

from __future__ import annotations

import argparse
from pathlib import Path

from kirag.cli.arguments import INPUT, OUTPUT
from kirag.cli.common import HelpFormatter, add_seed
from kirag.core.ranges import COUNT, OPEN_FRACTION
from kirag.core.settings import (
    add_arguments,
    add_per_mode_arguments,
    declared,
    from_args,
    per_mode_options,
)
from kirag.rag.aligner_training import TrainSettings
from kirag.rag.corpus_training import CORPUS_ENCODER, CorpusAlignerSettings, CorpusEncoderSettings

# the aligner's training defaults by the rows' source: the reference's, or CPU-sized ones
ALIGNER_SOURCES = {
    "--train/--from-questions": TrainSettings,
    "--from-corpus": CorpusAlignerSettings,
}
# the aligner's settings every source defaults alike: plain flags (the others: one per source)
ALIGNER_ALIKE = tuple(
    item.name
    for item in declared(TrainSettings)
    if len({repr(getattr(cls(), item.name)) for cls in ALIGNER_SOURCES.values()}) == 1
)
# the training settings `kirag train encoder` sets (--max-length sets both lengths)
ENCODER_FLAGS = (
    "base_model", "recipe", "pairs", "epochs", "learning_rate", "batch_size", "temperature",
    "save_steps", "device",
)  # fmt: skip

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
    # the training settings: the reference's, or CPU-sized ones with --from-corpus (the
    # reference's contrastive temperature is kept)
    add_per_mode_arguments(p, ALIGNER_SOURCES, skip=ALIGNER_ALIKE)
    add_arguments(p, TrainSettings, only=ALIGNER_ALIKE, skip=("temperature",))
    add_seed(p)
    p.set_defaults(func=run)
    _register_encoder(jobs)


def _register_encoder(jobs) -> None:
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
    add_arguments(p, CorpusEncoderSettings, only=ENCODER_FLAGS)
    p.add_argument(
        "--max-length",
        type=COUNT,
        default=CORPUS_ENCODER.query_max_length,
        help="tokens of a query and of a passage (query_max_length and doc_max_length)",
    )
    add_seed(p)
    p.set_defaults(func=run_encoder)


def aligner_settings(args: argparse.Namespace) -> TrainSettings:
    """The aligner's training settings: the flags given, over the rows' source's defaults."""
    source = "--from-corpus" if args.from_corpus else "--train/--from-questions"
    options = per_mode_options(args, ALIGNER_SOURCES)
    return ALIGNER_SOURCES[source](**options, seed=args.seed)


def encoder_settings(args: argparse.Namespace) -> CorpusEncoderSettings:
    """The encoder's training settings from the flags (--max-length: both lengths)."""
    length = {"query_max_length": args.max_length, "doc_max_length": args.max_length}
    return from_args(CorpusEncoderSettings, args, **length)


def run(args: argparse.Namespace) -> int:
    from kirag.core.progress import progress_enabled
    from kirag.core.runconfig import RunConfig
    from kirag.errors import KiragError
    from kirag.rag import aligner_training as at

    settings = aligner_settings(args)
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
    trainer = at.AlignerTrainer(settings, device=settings.device, progress=progress_enabled())
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
    from kirag.core.progress import progress_enabled
    from kirag.core.runconfig import RunConfig
    from kirag.io.corpus import read_corpus
    from kirag.rag import aligner_training as at
    from kirag.rag import corpus_training as ct

    settings = encoder_settings(args)
    rows = ct.encoder_pairs(
        read_corpus(args.from_corpus), settings.pairs, settings.seed, settings.recipe
    )
    output = Path(args.output)
    checkpoints = Path(args.checkpoints or f"{output}-checkpoints")
    trainer = at.AlignerTrainer(settings, device=settings.device, progress=progress_enabled())
    metrics = trainer.train(rows, [], output, checkpoints, resume=args.resume)
    metrics.update(train_rows=len(rows))
    sources = {"from_corpus": args.from_corpus}
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
