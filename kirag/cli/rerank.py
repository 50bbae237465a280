"""`kirag rerank`: rerank a first-stage run with Rank1 (any engine) or a cross-encoder.

Resumable: every scored pair is appended to a cache beside the output (`OUTPUT.scores.jsonl`), so
a crash keeps what was scored and a re-run only scores the rest. With `--qrels` the effect of the
reranker (before vs after, same judgments) is printed, so an unvalidated model cannot quietly make
results worse; `--fusion` combines the reranker's score with the first-stage score.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from kirag.cli.arguments import CACHE, INPUT, OUTPUT, check_paths
from kirag.cli.common import (
    add_command,
    add_on_error,
    add_ray,
    add_seed,
    add_server,
    check_ray_flags,
    on_error,
    open_executor,
    prepare_output,
    served_settings,
    server_options,
)
from kirag.cli.report import add_html, write_report
from kirag.core.ranges import COUNT, COUNT_OR_ZERO, FRACTION
from kirag.core.settings import add_arguments, as_record, from_args, keyed
from kirag.llm.settings import EngineSettings
from kirag.models import DEFAULT_LLM
from kirag.rerank.factory import command_line_rerankers
from kirag.rerank.rank1 import Rank1Settings
from kirag.rerank.records import (
    Rank1Judgement,
    explanation_rows,
    rank1_counts,
    write_explanations,
)
from kirag.retrieval.fusion import METHODS as FUSION_METHODS
from kirag.types import FIRST_STAGE_RANK

EPILOG = """\
examples:
  kirag rerank --run bm25.trec --topics topics.tsv --index indexes/enwiki-bm25 \\
      --model smollm2-135m --engine llamacpp --thinking-budget 64 --k 20 \\
      --output rank1.trec --explanations rank1.explanations.jsonl
  kirag rerank --run bm25.trec --topics t.tsv --corpus collection.tsv --model rank1-7b \\
      --engine vllm --k 100 --output rank1-7b.trec            # on a GPU machine (float16)
  kirag rerank --run scifact.trec --topics queries.tsv --corpus corpus.jsonl --model rank1-7b \\
      --dataset-prompt scifact --passage-policy reference --output rank1-scifact.trec
  kirag rerank --run bm25.trec --topics t.tsv --index idx --model jhu-clsp/rank1-7b \\
      --engine openai --base-url http://gpu-box:8000/v1 --concurrency 32 --output r.trec
  kirag rerank --run run.trec --topics t.tsv --index idx --reranker cross-encoder \\
      --model cross-encoder/ms-marco-MiniLM-L-6-v2 --output ce.trec --qrels qrels.txt
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "rerank",
        help="rerank a run with a Rank1-style reasoning reranker or a cross-encoder",
        epilog=EPILOG,
    )
    parser.add_argument(
        "--run", type=INPUT, required=True, help="first-stage run (TREC, MS MARCO TSV, JSONL)"
    )
    parser.add_argument("--topics", type=INPUT, required=True, help="the topics of the run")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--index", type=INPUT, help="index folder whose docs.sqlite holds the passages"
    )
    source.add_argument(
        "--corpus", type=INPUT, help="corpus file (only the run's passages are kept)"
    )
    parser.add_argument("--output", type=OUTPUT, required=True, help="reranked run file")
    add_reranker_arguments(parser)
    parser.add_argument("--k", type=COUNT, default=100, help="rerank the top k hits of each query")
    parser.add_argument(
        "--explanations",
        type=OUTPUT,
        default=None,
        help="write each pair's reasoning as JSONL here",
    )
    parser.add_argument(
        "--cache", type=CACHE, default=None, help="score cache (default: OUTPUT.scores.jsonl)"
    )
    parser.add_argument(
        "--fusion",
        default="none",
        choices=["none", *FUSION_METHODS],
        help="combine with the first-stage score",
    )
    parser.add_argument(
        "--fusion-weight", type=FRACTION, default=0.5, help="weight of the reranker in the fusion"
    )
    parser.add_argument(
        "--qrels",
        type=INPUT,
        default=None,
        help="judgments: print the measured effect of the reranking",
    )
    parser.add_argument(
        "--show",
        type=COUNT_OR_ZERO,
        default=0,
        help="print the top N hits of each query with their reasoning",
    )
    parser.add_argument("--tag", default="kirag-rerank")
    parser.add_argument(
        "--queries-per-shard",
        type=COUNT,
        default=8,
        help="with --ray: queries per shard (the resume unit; each shard's reranked run is kept "
        "beside the output until the merge)",
    )
    add_server(parser)
    add_ray(parser)
    add_on_error(parser)
    add_html(parser)
    add_seed(parser)
    parser.set_defaults(func=run)


def add_reranker_arguments(parser: argparse.ArgumentParser, optional: bool = False) -> None:
    """The flags that choose and configure a reranker (kirag rerank, kirag serve). With
    `optional` no reranker is loaded unless --reranker is given."""
    parser.add_argument(
        "--reranker",
        default=None if optional else "rank1",
        choices=command_line_rerankers(),
        help="the reranker" + (" (default: none loaded)" if optional else ""),
    )
    parser.add_argument(
        "--model",
        default=DEFAULT_LLM,
        help="model: short name, path (.gguf or folder), hub id, or a preset such as rank1-7b",
    )
    add_arguments(parser, Rank1Settings, title="Rank1")
    add_arguments(parser, EngineSettings, title="LLM engine")  # --engine and its options


def engine_options(args: argparse.Namespace) -> dict:
    """The engine options the flags ask for (those changed from EngineSettings' defaults), and
    the model server's when --engine openai. Options the chosen engine does not take are passed
    on anyway, so that the engine factory refuses them with a clear error instead of ignoring
    them (e.g. --quantization awq with the llama.cpp engine)."""
    return from_args(EngineSettings, args).options() | server_options(args)


def _corpus_store(args, run, tmp: Path):
    from kirag.io.corpus import read_corpus
    from kirag.io.docstore import DocStore

    if args.index:
        return DocStore(Path(args.index) / DocStore.FILENAME)
    wanted = {h.doc_id for hits in run.values() for h in hits[: args.k]}
    documents = (d for d in read_corpus(args.corpus, on_error=on_error(args)) if d.id in wanted)
    return DocStore.build(tmp / DocStore.FILENAME, documents)


def make_reranker(args: argparse.Namespace, cache: Path):
    """The chosen reranker from the registry, with the flags that reranker takes."""
    from kirag.rerank.factory import load_reranker, reranker_options

    flags = {
        "engine": args.engine,
        **as_record(from_args(Rank1Settings, args)),
        "cache": cache,
        "engine_options": engine_options(args),
    }
    takes = set(reranker_options(args.reranker))
    return load_reranker(
        args.reranker, args.model, **{k: v for k, v in flags.items() if k in takes}
    )


def run(args: argparse.Namespace) -> int:
    import tempfile

    from kirag.core.runconfig import RunConfig
    from kirag.core.seeding import set_seed
    from kirag.eval.runs import read_run, write_run
    from kirag.io.topics import read_topics
    from kirag.retrieval.fusion import fuse_with_first_stage

    set_seed(args.seed)
    check_ray_flags(args)
    cache = (
        Path(args.cache)
        if args.cache
        else Path(args.output).with_name(Path(args.output).name + ".scores.jsonl")
    )
    if not args.cache:  # the default cache beside the output must not be an input either
        inputs = [(f, "input", getattr(args, d)) for f, d in INPUT_FLAGS if getattr(args, d)]
        check_paths([*inputs, ("--cache (default: OUTPUT.scores.jsonl)", "cache", str(cache))])
    run_hits = read_run(args.run, on_error=on_error(args))
    topics = read_topics(args.topics, on_error=on_error(args))
    for output in (args.output, args.explanations, cache, args.html):
        prepare_output(output)
    # with --ray the workers load the model, not this process
    reranker = None if args.ray else make_reranker(args, cache)
    if args.ray and args.engine == "vllm":
        reranker = _ray_vllm_reranker(args)
    if args.reranker == "rank1" and not args.model.startswith("rank1-") and not args.qrels:
        print(
            f"note: {args.model} is not a validated Rank1 reranker; pass --qrels to see its measured effect, "
            "or --fusion to limit its influence (the packaged smollm2-135m lowers recall: see docs/measurements.md)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        store = _corpus_store(args, run_hits, Path(tmp))
        started = time.perf_counter()
        if reranker is None:
            reranked = _rerank_on_ray(args, run_hits, topics, store)
        else:
            reranked = reranker.rerank_run(run_hits, topics, store, k=args.k)
        seconds = time.perf_counter() - started
        store.close()
    pairs = sum(len(h) for h in reranked.values())
    if args.fusion != "none":
        reranked = {
            q: fuse_with_first_stage(hits, args.fusion, args.fusion_weight, qid=q)
            for q, hits in reranked.items()
        }
    write_run(reranked, args.output, tag=args.tag)
    if args.explanations:
        write_explanations(reranked, args.explanations)
    if args.html:
        _write_html(args, reranked, topics)
    results = {
        "queries": len(reranked),
        "pairs": pairs,
        "seconds": round(seconds, 2),
        "pairs_per_second": round(pairs / max(seconds, 1e-9), 3),
    }
    for name in ("fallbacks", "truncated_passages"):
        if hasattr(reranker, name):
            results[name] = getattr(reranker, name)
    if args.ray and args.reranker == "rank1":
        results.update(rank1_counts(reranked))
    if args.qrels:
        results["effect"] = report_effect(run_hits, reranked, args.qrels, args.k)
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    settings |= served_settings()
    settings["cache"] = str(cache)
    # what the reranker resolved: precision, context, the budget it used, the passage policy
    settings["reranker_settings"] = getattr(reranker, "settings", None)
    RunConfig("rerank", settings, results=results).write(args.output)
    print(
        f"wrote {args.output}: {pairs} pairs reranked in {seconds:.1f}s ({results['pairs_per_second']} pairs/s)"
    )
    if results.get("fallbacks"):
        print(
            f"fallbacks: {results['fallbacks']}, truncated passages: {results.get('truncated_passages', 0)}"
        )
    if args.show:
        show_top(reranked, topics, args.show)
    return 0


# the input flags, for the check of the default cache path
INPUT_FLAGS = (
    ("--run", "run"),
    ("--topics", "topics"),
    ("--corpus", "corpus"),
    ("--qrels", "qrels"),
)


def scoring_settings(args: argparse.Namespace) -> dict:
    """The settings that decide a reranker's scores, as the command line gives them: they key
    the work folder of a sharded rerank (the choice of reranker, model and depth, and every
    Rank1 and engine setting that affects results, the engine itself and float rounding
    included)."""
    chosen = {name: getattr(args, name) for name in ("reranker", "model", "k")}
    return chosen | keyed(from_args(Rank1Settings, args)) | keyed(from_args(EngineSettings, args))


def _rerank_on_ray(args: argparse.Namespace, run_hits, topics, store) -> dict:
    """The run reranked by a pool of Ray workers, in shards of --queries-per-shard queries.
    The workers keep no pair cache (one JSONL appended by many processes is unsafe): a shard's
    output is the resume unit."""
    import functools

    from kirag.rerank.sharded import rerank_sharded, work_dir_for

    settings = scoring_settings(args)
    plain = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "func"})
    with open_executor(args) as executor:
        return rerank_sharded(
            executor,
            functools.partial(make_reranker, plain, None),
            run_hits,
            topics,
            store,
            work_dir_for(args.output, settings),
            k=args.k,
            queries_per_shard=args.queries_per_shard,
        )


def _ray_vllm_reranker(args: argparse.Namespace):
    """`--ray --engine vllm`: Rank1 through Ray Data's vLLM processor (the GPU stage)."""
    from kirag.errors import SettingsError
    from kirag.rerank.rank1_ray import RayVLLMRank1Reranker, answer_token_ids
    from kirag.scale.llm import VLLMStage

    if args.reranker != "rank1":
        raise SettingsError("--ray --engine vllm runs the rank1 reranker")
    options = {"tensor_parallel_size": args.tensor_parallel}
    if args.dtype:
        options["dtype"] = args.dtype
    if args.quantization:
        options["quantization"] = args.quantization
    if args.context:
        options["max_model_len"] = args.context
    stage = VLLMStage(args.model, workers=args.workers, engine_kwargs=options)
    true_id, false_id = answer_token_ids(args.model)
    return RayVLLMRank1Reranker(
        stage, true_id, false_id, args.thinking_budget, instruction=args.instruction
    )


def show_top(run, topics, n: int, width: int = 100) -> None:
    """Print the top `n` hits of each query with P(true), the fallback used and the reasoning
    (the explanation of the score)."""
    import textwrap

    for qid, hits in run.items():
        query = topics[qid]
        print(f"\n{qid}: {query.text}")
        for hit in hits[:n]:
            judgement = Rank1Judgement.from_metadata(hit.metadata)
            title = hit.document.title if hit.document is not None and hit.document.title else ""
            first = hit.metadata.get(FIRST_STAGE_RANK)
            moved = f", first stage #{first}" if first is not None else ""
            fallback = f", fallback: {judgement.fallback}" if judgement else ""
            print(f"  #{hit.rank} {hit.doc_id} {title!r} score {hit.score:.4f}{moved}{fallback}")
            if judgement:
                reasoning = (
                    " ".join(judgement.reasoning.split()) or "(thinking budget 0: no reasoning)"
                )
                print(textwrap.indent(textwrap.fill(f"reasoning: {reasoning}", width), "    "))


def _write_html(args: argparse.Namespace, run, topics) -> None:
    """The Rank1 report of this reranking (kirag report's), passages from --index."""
    from kirag.io.docstore import DocStore
    from kirag.io.qrels import read_qrels
    from kirag.report.records import no_documents, rank1_payload, store_documents

    store = DocStore(Path(args.index) / DocStore.FILENAME) if args.index else None
    try:
        payload = rank1_payload(
            explanation_rows(run),
            {qid: q.text for qid, q in topics.items()},
            read_qrels(args.qrels) if args.qrels else None,
            store_documents(store) if store is not None else no_documents,
        )
    finally:
        if store is not None:
            store.close()
    write_report(payload, args.html)


def report_effect(first_stage, reranked, qrels_path: str, k: int) -> dict:
    """Print the reranking's measured effect (kirag.eval.report.rerank_effect) and a warning when
    it lowers nDCG@10; the effect as the run record keeps it."""
    from kirag.eval.report import EFFECT_TRIALS, metrics_table, rerank_effect
    from kirag.io.qrels import read_qrels

    effect = rerank_effect(first_stage, reranked, read_qrels(qrels_path), k)
    print(metrics_table(effect.results, trials=EFFECT_TRIALS))
    if effect.lowers_ndcg:
        before, after = effect.ndcg_change
        print(
            f"warning: this reranker LOWERS nDCG@10 here ({before:.4f} -> {after:.4f}); consider --fusion or a stronger model"
        )
    return effect.to_dict()
