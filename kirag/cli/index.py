"""`kirag index KIND`: build an index folder from a corpus (bm25, dense, triples).

Each kind is one function pair (arguments + build) registered in KINDS. Every build is atomic
(a temporary folder renamed at the end) and writes its resolved configuration inside the index.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict

from kirag.cli.arguments import CACHE, INPUT, OUTPUT
from kirag.cli.common import (
    add_command,
    add_on_error,
    add_ray,
    add_seed,
    add_server,
    on_error,
    open_executor,
    served_settings,
    server_options,
)
from kirag.core.optional import check_extra
from kirag.core.settings import add_arguments, as_record, changed_options, from_args

EPILOG = """\
examples:
  kirag index bm25 --corpus enwiki-sample --index indexes/enwiki-bm25
  kirag index bm25 --corpus collection.tsv --index indexes/msmarco-lucene --backend lucene --threads 2
  kirag index dense --corpus corpus.jsonl --index indexes/beir-dense --index-type hnsw
  kirag index dense --corpus enwiki-sample --index indexes/enwiki-onnx --encoder-backend onnx
  kirag index triples --corpus enwiki-sample --index indexes/enwiki-triples --extractor spacy
  kirag index triples --corpus data/hotpotqa/corpus.jsonl --index indexes/hotpotqa-triples --import hotpotqa_kg.pkl
"""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--corpus",
        type=INPUT,
        required=True,
        help="corpus file or folder (JSONL, BEIR, MS MARCO TSV; .gz ok), or a bundled corpus name (enwiki-sample)",
    )
    parser.add_argument(
        "--index", type=OUTPUT, required=True, help="index folder to create (e.g. indexes/NAME)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing index folder")
    add_on_error(parser)
    add_seed(parser)


def _bm25_arguments(parser: argparse.ArgumentParser) -> None:
    from kirag.retrieval.bm25 import BM25Settings

    add_arguments(parser, BM25Settings)


def _build_bm25(args: argparse.Namespace) -> dict:
    from kirag.retrieval.bm25 import BM25Retriever, BM25Settings

    settings = from_args(BM25Settings, args)
    retriever = BM25Retriever.build(
        args.corpus,
        args.index,
        **as_record(settings),
        overwrite=args.overwrite,
        on_error=on_error(args),
    )
    return {"documents": len(retriever.docstore), "backend": settings.backend}


def _dense_arguments(parser: argparse.ArgumentParser) -> None:
    from kirag.retrieval.dense import DenseSettings

    add_arguments(parser, DenseSettings)
    add_ray(parser)


def _build_dense(args: argparse.Namespace) -> dict:
    check_extra(
        "dense", "a dense index"
    )  # before the corpus is read: a missing extra fails at once
    from kirag.retrieval.dense import DenseRetriever, DenseSettings

    settings = from_args(DenseSettings, args)
    with open_executor(args) as executor:
        retriever = DenseRetriever.build(
            args.corpus,
            args.index,
            **changed_options(settings),
            overwrite=args.overwrite,
            on_error=on_error(args),
            executor=executor,
        )
    return {"documents": len(retriever.docstore), "encoder": retriever.encoder.config()}


def _extractor_options(args: argparse.Namespace) -> dict:
    """The options the chosen LLM extractor takes from the flags."""
    if args.extractor not in ("llm", "reference"):
        return {}
    options = {"model": args.model, "engine_name": args.engine}
    engine_options = server_options(args)
    if engine_options:
        options["engine_options"] = engine_options
    if args.extractor == "reference":
        options["demonstrations"] = args.demonstrations
        options["encoder"] = args.demonstration_encoder
        if args.dataset:
            options["dataset"] = args.dataset
    return options


def _triples_arguments(parser: argparse.ArgumentParser) -> None:
    from kirag.knowledge.llm_extractor import LLMExtractorSettings
    from kirag.knowledge.reference_extractor import ReferenceExtractorSettings
    from kirag.knowledge.triple_index import TripleIndexSettings
    from kirag.retrieval.dense import DenseSettings

    add_arguments(parser, TripleIndexSettings)
    add_arguments(parser, LLMExtractorSettings)  # --model, --engine
    parser.add_argument(
        "--demonstrations",
        type=INPUT,
        default=None,
        help="demonstration pool file for --extractor reference (default: the shipped pool)",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="the pool's dataset section for --extractor reference (default: wikipedia)",
    )
    add_arguments(parser, ReferenceExtractorSettings, only=("encoder",))  # --demonstration-encoder
    # the triples' encoder runs and is indexed as a dense index's
    add_arguments(parser, DenseSettings, skip=("model", "batch_size", "shard_size", "device"))
    parser.add_argument(
        "--cache",
        type=CACHE,
        default=None,
        help="extraction cache (SQLite); default: indexes/.extraction-cache.sqlite beside the index",
    )
    parser.add_argument(
        "--import",
        type=INPUT,
        dest="import_kg",
        metavar="FILE",
        default=None,
        help="take the triples from the reference's cached KG corpus (a pickle of plain data, "
        "loaded with every global refused: no code in it can run) instead of extracting",
    )
    add_server(parser)
    add_ray(parser)


def _build_triples(args: argparse.Namespace) -> dict:
    check_extra("kirag", "a KiRAG triple index")
    from kirag.knowledge.triple_index import TripleIndexSettings, build_from_corpus
    from kirag.retrieval.dense import DenseSettings

    extractor = args.extractor
    if args.import_kg:  # loaded and checked before any work: a hostile file is refused at once
        from kirag.knowledge.kg_import import ImportedTripleExtractor

        extractor = ImportedTripleExtractor(args.import_kg)
    vllm_on_ray = args.ray and args.engine == "vllm"
    if vllm_on_ray:  # the GPU stage: Ray Data's vLLM processor does the sharding itself
        extractor = _ray_vllm_extractor(args)
    settings = as_record(from_args(TripleIndexSettings, args)) | {"extractor": extractor}
    with open_executor(args) as executor:
        stats = build_from_corpus(
            args.corpus,
            args.index,
            **settings,
            extractor_options=_extractor_options(args),
            cache=args.cache,
            overwrite=args.overwrite,
            on_error=on_error(args),
            faiss_options=DenseSettings(nlist=args.nlist, pq_m=args.pq_m).faiss_options(),
            executor=None if vllm_on_ray else executor,
        )
    if args.import_kg:
        stats["import"] = {**asdict(extractor.stats), "file": args.import_kg}
    return stats


def _ray_vllm_extractor(args: argparse.Namespace):
    """`--ray --engine vllm`: kirag's LLM extraction prompt through Ray Data's vLLM processor."""
    from kirag.errors import SettingsError
    from kirag.knowledge.ray_extraction import RayVLLMTripleExtractor
    from kirag.scale.llm import VLLMStage

    if args.extractor != "llm" or args.import_kg:
        raise SettingsError(
            "--ray --engine vllm runs --extractor llm (not spacy, reference, --import)"
        )
    return RayVLLMTripleExtractor(VLLMStage(args.model, workers=args.workers))


# kind -> (help, add arguments, build)
KINDS = {
    "bm25": ("BM25 index (bm25s or Lucene)", _bm25_arguments, _build_bm25),
    "dense": ("dense index (sentence-transformers + FAISS)", _dense_arguments, _build_dense),
    "triples": (
        "KiRAG triple index (triples + FAISS + entity graph)",
        _triples_arguments,
        _build_triples,
    ),
}


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "index",
        help="build an index (bm25, dense, triples) from a corpus",
        epilog=EPILOG,
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for name, (help_text, add_kind_arguments, _) in KINDS.items():
        sub = add_command(kinds, name, help=help_text)
        _common(sub)
        add_kind_arguments(sub)
        sub.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kirag.core.runconfig import RunConfig
    from kirag.core.seeding import set_seed

    set_seed(args.seed)
    started = time.perf_counter()
    results = KINDS[args.kind][2](args)
    results["seconds"] = round(time.perf_counter() - started, 3)
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    settings |= served_settings()
    RunConfig(f"index {args.kind}", settings, results=results).write(args.index)
    print(f"built {args.kind} index {args.index}: {results}")
    return 0
