"""`kirag quantize`: a GGUF in a k-/i-quant format, with an importance matrix measured on
calibration text (none, general, domain = your Rank1 prompts, or cross = both); see
kirag.llm.quantize. The output folder loads by path in the llama.cpp engine
(`kirag rerank --model DIR/model.gguf --engine llamacpp`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kirag.cli.arguments import INPUT, OUTPUT
from kirag.cli.common import add_command, add_seed
from kirag.core.ranges import COUNT
from kirag.core.settings import add_arguments, as_record, from_args, passes_to
from kirag.llm.quantize import FORMATS, CalibrationSettings
from kirag.rerank.rank1 import Rank1Settings

EPILOG = """\
examples:
  kirag quantize smollm2-135m --to Q4_K_M --calibration none --output indexes/q4km
  kirag quantize smollm2-135m --to Q2_K --calibration domain --queries topics.tsv \\
      --run bm25.trec --index indexes/enwiki-bm25 --output indexes/q2k-domain
  kirag quantize model-f16.gguf --to IQ2_XS --calibration cross --calibration-file wiki.txt \\
      --queries topics.tsv --run bm25.trec --index idx --domain-share 0.5 --output q
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "quantize",
        help="quantize a GGUF (k-/i-quants) with an importance matrix from calibration text",
        epilog=EPILOG,
    )
    parser.add_argument("model", type=INPUT, help="a .gguf path or a packaged model's short name")
    parser.add_argument("--to", required=True, type=str.upper, choices=FORMATS, dest="format")
    parser.add_argument(
        "--output", type=OUTPUT, required=True, help="new folder for model.gguf and its record"
    )
    parser.add_argument("--overwrite", action="store_true")
    domain = parser.add_argument_group("domain calibration: your Rank1 prompts")
    domain.add_argument("--queries", type=INPUT, help="topics file of your queries")
    domain.add_argument("--run", type=INPUT, help="their first-stage run")
    domain.add_argument(
        "--index", type=INPUT, help="index folder whose docs.sqlite holds the passages"
    )
    domain.add_argument("--k", type=COUNT, default=20, help="first-stage passages per query")
    domain.add_argument(
        "--context",
        type=COUNT,
        default=4096,
        help="context length the prompts are fitted to, as kirag rerank's engine sees it",
    )
    add_arguments(parser, Rank1Settings, into=domain, skip=("batch_size",))
    general = parser.add_argument_group("general calibration")
    general.add_argument(
        "--calibration-file",
        type=INPUT,
        help="plain text, paragraphs separated by blank lines (default: the bundled Wikipedia "
        "passages that are not among the domain passages)",
    )
    add_arguments(parser, CalibrationSettings, into=general)
    parser.add_argument("--threads", type=COUNT, default=None)
    parser.add_argument(
        "--tools", type=INPUT, default=None, help="folder of llama-imatrix/llama-quantize"
    )
    add_seed(parser)
    # CalibrationSettings' fields and quantize_gguf's texts, by the flags that set them
    passes_to(
        parser,
        {
            "calibration_file": "general",
            "context": "context_length",  # the vocabulary's, as kirag rerank's --context
        },
    )
    parser.set_defaults(func=run)


def domain_prompts(args: argparse.Namespace, source: Path) -> tuple[list[str], set[str]]:
    """The exact Rank1 prompts for the queries' top-k first-stage passages, and those passages."""
    from kirag.errors import SettingsError
    from kirag.eval.runs import read_run
    from kirag.io.docstore import DocStore
    from kirag.io.topics import read_topics
    from kirag.llm.quantize import GGUFVocab
    from kirag.rerank import rank1_scoring as rs
    from kirag.rerank.rank1 import Rank1Reranker

    given = [args.queries, args.run, args.index]
    if not all(given):
        raise SettingsError("domain calibration needs --queries, --run and --index together")
    topics = read_topics(args.queries)
    run = read_run(args.run)
    vocab = GGUFVocab(source, context_length=args.context)
    store = DocStore(Path(args.index) / DocStore.FILENAME)
    try:
        reranker = Rank1Reranker(
            engine=vocab,
            **as_record(from_args(Rank1Settings, args)),
        )
        pairs, used = [], set()
        for qid, hits in run.items():
            if qid not in topics:
                continue
            ids = [h.doc_id for h in hits[: args.k]]
            for doc_id, document in zip(ids, store.get_many(ids), strict=True):
                if document is not None:
                    pairs.append((topics[qid], rs.passage_text(document)))
                    used.add(doc_id)
        return reranker.prompts(pairs), used
    finally:
        store.close()
        vocab.close()


def general_texts(args: argparse.Namespace, exclude: set[str]) -> list[str]:
    """Paragraphs of --calibration-file, or the bundled Wikipedia passages not in `exclude`."""
    if args.calibration_file:
        text = Path(args.calibration_file).read_text(encoding="utf-8")
        return [p.strip() for p in text.split("\n\n") if p.strip()]
    from kirag.io.corpus import read_corpus

    return [d.contents for d in read_corpus("enwiki-sample") if d.id not in exclude]


def run(args: argparse.Namespace) -> int:
    from kirag.core.runconfig import RunConfig
    from kirag.llm.quantize import quantize_gguf
    from kirag.models import resolve_model

    settings = from_args(CalibrationSettings, args)
    source = Path(resolve_model(args.model, "llm").location)
    domain, used = [], set()
    if settings.kind in ("domain", "cross"):
        domain, used = domain_prompts(args, source)
    general = general_texts(args, used) if settings.kind in ("general", "cross") else []
    record = quantize_gguf(
        source,
        args.format,
        args.output,
        settings,
        domain=domain,
        general=general,
        threads=args.threads,
        overwrite=args.overwrite,
        tools=None if args.tools is None else _tools(args.tools),
    )
    options = {k: v for k, v in vars(args).items() if k != "func"}
    RunConfig("quantize", options, results={"record": record, "summary": record.summary}).write(
        args.output
    )
    print(
        f"wrote {Path(args.output) / 'model.gguf'}: {record.summary}, "
        f"{record.size_bytes / 2**20:.1f} MiB (base {record.base_size_bytes / 2**20:.1f} MiB: "
        f"{record.base})"
    )
    return 0


def _tools(folder: str):
    from kirag.llm.quantize import LlamaTools

    return LlamaTools.find(folder)
