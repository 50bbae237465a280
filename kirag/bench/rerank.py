"""`kirag bench rerank`: Rank1 scoring on real (question, passage) pairs from the Wikipedia
sample — the bundled multi-hop questions and their BM25 top-k — for each engine and precision
(transformers fp32, transformers dynamic int8, llama.cpp GGUF Q4_1 as packaged and requantized
to Q4_0, Q8_0 and IQ4_NL, and in f32 as llama.cpp's own full-precision reference; same model)
at several thinking budgets: pairs/s, peak memory, and agreement with fp32
(Spearman of P(true), top-10 overlap, nDCG@10 against the gold supporting passages). Also the
speed-up of batching and of prefix reuse against one-at-a-time scoring, measured in the same run.
Every configuration runs in its own process so its peak memory is its own."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from kirag.bench.harness import run_child
from kirag.core.ranges import COUNT, COUNT_OR_ZERO

CONFIGS = {
    "transformers-fp32": {"engine": "transformers", "options": {}},
    "transformers-int8": {"engine": "transformers", "options": {"quantize": "int8"}},
    "llamacpp-q4_1": {"engine": "llamacpp", "options": {}},
    # the packaged Q4_1 requantized to Q4_0, which llama.cpp's fastest CPU prompt kernels take
    "llamacpp-q4_0": {"engine": "llamacpp", "options": {"quantize": "q4_0"}},
    # Q8_0 holds the Q4_1 weights almost exactly and has fast CPU prompt kernels too
    "llamacpp-q8_0": {"engine": "llamacpp", "options": {"quantize": "q8_0"}},
    "llamacpp-iq4_nl": {"engine": "llamacpp", "options": {"quantize": "iq4_nl"}},
    # the k-quant users pick for 4 bits (mixed 4/6-bit blocks; kirag quantize's default format)
    "llamacpp-q4_k_m": {"engine": "llamacpp", "options": {"quantize": "q4_k_m"}},
    # the same weights in full precision inside llama.cpp (f32 weights and KV cache; flash
    # attention off, its CPU kernel moves log-probs by ~5e-3 against ~1e-5 without): how far
    # another implementation's arithmetic alone moves the scores
    "llamacpp-f32": {
        "engine": "llamacpp",
        "options": {"quantize": "f32", "kv_type": "f32", "flash_attn": False},
    },
}
# a second reference: agreement with llama.cpp's own full precision isolates quantization
F32_INSIDE_LLAMACPP = "llamacpp-f32"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from kirag.bench.random_gguf import SHAPES
    from kirag.models import DEFAULT_LLM

    parser.add_argument(
        "--model",
        default=DEFAULT_LLM,
        help="the model every configuration loads: a name or a GGUF path (rank1-7b's, say)",
    )
    parser.add_argument(
        "--speed-only",
        choices=sorted(SHAPES),
        default=None,
        help="instead of --model, a GGUF of this Rank1-sized architecture with seeded random "
        "weights (written once into kirag's cache): honest pairs/s at a realistic size, "
        "scores that mean nothing (no agreement is reported)",
    )
    parser.add_argument(
        "--cpu-variants",
        default="",
        help="comma-separated llama.cpp CPU variants to run each llamacpp configuration under "
        "(e.g. haswell,zen4: AVX2 against AVX-512/VNNI/BF16 on one build); empty: the best "
        "this CPU runs",
    )
    parser.add_argument("--budgets", default="0,64,256", help="thinking budgets to measure")
    parser.add_argument("--candidates", type=COUNT, default=20, help="BM25 candidates per question")
    parser.add_argument(
        "--questions",
        default="31,4,2",
        help="questions used at each budget (same order as --budgets)",
    )
    parser.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help=f"comma-separated subset of {', '.join(CONFIGS)}",
    )
    parser.add_argument("--batch-size", type=COUNT, default=8)
    parser.add_argument(
        "--keep-scores",
        action="store_true",
        help="keep every configuration's P(true) per pair in the results (agreement re-checkable)",
    )
    parser.add_argument(
        "--remote",
        default="",
        help="requests in flight to measure through an OpenAI-compatible server, e.g. 1,4 "
        "(the remote engine; empty: skip): Rank1 pairs/s there vs in-process on the same GGUF",
    )
    parser.add_argument(
        "--remote-url",
        default=None,
        help="with --remote: a running server's API root serving the packaged SmolLM2 as "
        "smollm2-135m (default: start llama-cpp-python's server on loopback)",
    )
    parser.add_argument(
        "--remote-budget", type=COUNT_OR_ZERO, default=32, help="with --remote: the thinking budget"
    )
    parser.add_argument(
        "--remote-questions", type=COUNT, default=2, help="with --remote: questions measured"
    )
    parser.add_argument(
        "--speedup-questions",
        type=COUNT_OR_ZERO,
        default=3,
        help="questions for the batching / prefix-reuse measurement (0: skip it)",
    )


def build_pairs(candidates: int) -> tuple[list[tuple[str, str, str, str]], dict]:
    """(qid, question, doc_id, passage) for each bundled question and its BM25 top-k over the
    sample, and the gold supporting passages as qrels."""
    from kirag.eval.datasets import load_bundled_questions
    from kirag.retrieval.bm25 import BM25Retriever

    questions = load_bundled_questions()
    with tempfile.TemporaryDirectory() as tmp:
        retriever = BM25Retriever.build("enwiki-sample", Path(tmp) / "bm25")
        run = retriever.batch_search(
            {q.id: q.question for q in questions}, k=candidates, with_documents=True
        )
        pairs = [
            (q.id, q.question, h.doc_id, f"{h.document.title} {h.document.text}")
            for q in questions
            for h in run[q.id]
        ]
        retriever.docstore.close()
    qrels = {q.id: {d: 1 for d in q.gold_doc_ids} for q in questions}
    return pairs, qrels


def _child(spec: dict, cpu_variant: str | None = None) -> dict:
    """One configuration in its own process (under `cpu_variant`, llama.cpp's CPU library, when
    given); a failure is reported as the row's error."""
    from kirag.llm.llamacpp_backends import VARIANT_VARIABLE

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(spec, fh)
    env = {VARIANT_VARIABLE: cpu_variant} if cpu_variant else {}
    try:
        return run_child("kirag.bench.children.rank1", [fh.name], spec["engine"], env=env)
    except RuntimeError as exc:
        lines = str(exc).strip().splitlines()
        return {"error": lines[-1] if lines else "failed"}
    finally:
        os.unlink(fh.name)


def agreement(
    pairs, scores: list[float], reference: list[float], qrels: dict, against: str = "fp32"
) -> dict:
    """Spearman of P(true) with the reference, mean top-10 overlap per question, and nDCG@10 of
    both rankings against the gold passages (keys end in `_vs_{against}`)."""
    from scipy import stats

    from kirag.eval.metrics import evaluate
    from kirag.types import rank_hits

    by_query: dict[str, dict[str, list]] = {}
    for (qid, _, doc_id, _), ours, ref in zip(pairs, scores, reference, strict=True):
        entry = by_query.setdefault(qid, {"ours": [], "ref": []})
        entry["ours"].append((doc_id, ours))
        entry["ref"].append((doc_id, ref))
    overlaps = []
    ours_run, ref_run = {}, {}
    for qid, entry in by_query.items():
        ours_run[qid], ref_run[qid] = rank_hits(entry["ours"]), rank_hits(entry["ref"])
        top_ours = {h.doc_id for h in ours_run[qid][:10]}
        top_ref = {h.doc_id for h in ref_run[qid][:10]}
        overlaps.append(len(top_ours & top_ref) / 10)
    rho = stats.spearmanr(scores, reference).statistic if len(set(scores)) > 1 else float("nan")
    judged = {q: qrels[q] for q in by_query}
    return {
        f"spearman_vs_{against}": float(rho),
        f"top10_overlap_vs_{against}": float(np.mean(overlaps)),
        "ndcg10": evaluate(ours_run, judged, ["nDCG@10"]).aggregate["nDCG@10"],
        f"ndcg10_{against}": evaluate(ref_run, judged, ["nDCG@10"]).aggregate["nDCG@10"],
    }


def run(args: argparse.Namespace) -> dict:
    pairs, qrels = build_pairs(args.candidates)
    budgets = [int(b) for b in args.budgets.split(",") if b.strip()]  # empty: --remote only
    counts = [int(n) for n in args.questions.split(",")][: len(budgets)]
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    variants = [v.strip() for v in args.cpu_variants.split(",") if v.strip()]
    model, model_record = _model(args)
    runs = _runs(configs, variants)
    qids = list(dict.fromkeys(p[0] for p in pairs))
    out: dict = {
        **model_record,
        "pairs_available": len(pairs),
        "candidates_per_question": args.candidates,
        "configs": {name: CONFIGS[name] for name in configs},
        "cpu_variants": variants or "the best this CPU runs",
        "budgets": {},
    }
    speed_only = bool(args.speed_only)
    for budget, count in zip(budgets, counts, strict=True):
        chosen = [p for p in pairs if p[0] in set(qids[:count])]
        section: dict = {"questions": count, "pairs": len(chosen)}
        results = {}
        for label, (name, variant) in runs.items():
            spec = {
                **CONFIGS[name],
                "model": model,
                "budget": budget,
                "batch_size": args.batch_size,
                "pairs": [(p[1], p[3]) for p in chosen],
            }
            results[label] = _child(spec, variant)
        reference = None if speed_only else results.get("transformers-fp32", {}).get("p_true")
        for label, result in results.items():
            row = {
                k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in result.items()
                if k != "p_true" or args.keep_scores
            }
            if reference and "p_true" in result:
                found = agreement(chosen, result["p_true"], reference, qrels)
                row.update({k: round(v, 4) for k, v in found.items()})
            inside = None if speed_only else _f32_inside(results, runs[label][1])
            if inside and "p_true" in result and label.startswith("llamacpp-"):
                found = agreement(chosen, result["p_true"], inside, qrels, against="llamacpp_f32")
                row.update({k: round(v, 4) for k, v in found.items() if "_vs_" in k})
            section[label] = row
        _speedups_vs_baselines(section, results, runs)
        out["budgets"][str(budget)] = section
    if args.remote:
        from kirag.bench.rerank_remote import measure

        chosen = [(p[1], p[3]) for p in pairs if p[0] in set(qids[: args.remote_questions])]
        levels = [int(n) for n in args.remote.split(",")]
        if min(levels) < 1:
            from kirag.errors import SettingsError

            raise SettingsError("--remote: requests in flight must be >= 1")
        out["remote"] = measure(
            chosen, args.remote_budget, levels, args.batch_size, args.remote_url
        )
    if args.speedup_questions:
        out["batching_and_prefix_reuse"] = _speedups(
            pairs, qids[: args.speedup_questions], args.batch_size, model
        )
    return out


def _model(args: argparse.Namespace) -> tuple[str, dict]:
    """The model path every configuration loads, and what the results say of it."""
    if not args.speed_only:
        return args.model, {"model": args.model}
    from kirag.bench.random_gguf import SEED, SHAPES, random_gguf

    shape = SHAPES[args.speed_only]
    path = random_gguf(shape, SEED)
    return str(path), {
        "model": f"{shape.name} architecture, seeded random weights (seed {SEED})",
        "model_path": str(path),
        "parameters": shape.parameters,
        "speed_only": "random weights: pairs/s are real, P(true) means nothing "
        "(no agreement reported); tokenizer: SmolLM2's, padded to the shape's vocabulary",
    }


def _runs(configs: list[str], variants: list[str]) -> dict[str, tuple[str, str | None]]:
    """Row label -> (configuration, CPU variant): each llama.cpp configuration once per variant
    (`name@variant`), the others once."""
    runs: dict[str, tuple[str, str | None]] = {}
    for name in configs:
        if variants and CONFIGS[name]["engine"] == "llamacpp":
            runs.update({f"{name}@{v}": (name, v) for v in variants})
        else:
            runs[name] = (name, None)
    return runs


def _f32_inside(results: dict, variant: str | None) -> list[float] | None:
    """llama.cpp's own full-precision P(true), under the same CPU variant."""
    return results.get(_f32_inside_label(variant), {}).get("p_true")


def _speedups_vs_baselines(section: dict, results: dict, runs: dict) -> None:
    """Each row's pairs/s over transformers fp32's, and over llama.cpp f32's under the same CPU
    variant (the other full-precision baseline, same engine)."""
    fp32 = results.get("transformers-fp32", {}).get("pairs_per_second")
    for label, (_, variant) in runs.items():
        speed = results[label].get("pairs_per_second")
        if not speed:
            continue
        if fp32:
            section[label]["speedup_vs_fp32"] = round(speed / fp32, 3)
        inside = _f32_inside_label(variant)
        f32 = results.get(inside, {}).get("pairs_per_second")
        if f32 and label.startswith("llamacpp-"):
            section[label]["speedup_vs_llamacpp_f32"] = round(speed / f32, 3)


def _f32_inside_label(variant: str | None) -> str:
    return f"{F32_INSIDE_LLAMACPP}@{variant}" if variant else F32_INSIDE_LLAMACPP


def _speedups(pairs, qids: list[str], batch_size: int, model: str) -> dict:
    """Same pairs, budget 0: one at a time vs batched (transformers, prefix sharing off and on),
    and llama.cpp one prompt at a time from an empty cache vs its batched sequences with KV-prefix
    reuse."""
    chosen = [(p[1], p[3]) for p in pairs if p[0] in set(qids)]
    from kirag.llm.transformers_engine import MIN_SHARED_PREFIX

    never = {"min_shared_prefix": 10**9, "scoring_min_shared_prefix": 10**9}
    runs = {
        "transformers_one_at_a_time": {
            "engine": "transformers",
            "options": never,
            "batch_size": 1,
        },
        "transformers_batched_no_prefix_sharing": {
            "engine": "transformers",
            "options": never,
            "batch_size": batch_size,
        },
        "transformers_batched_prefix_sharing": {
            "engine": "transformers",
            "options": {"scoring_min_shared_prefix": MIN_SHARED_PREFIX},
            "batch_size": batch_size,
        },
        "llamacpp_one_at_a_time": {
            "engine": "llamacpp",
            "options": {"reuse_prefix": False},
            "batch_size": batch_size,
        },
        "llamacpp_batched_prefix_reuse": {
            "engine": "llamacpp",
            "options": {"reuse_prefix": True},
            "batch_size": batch_size,
        },
    }
    out: dict = {"pairs": len(chosen), "budget": 0}
    for name, spec in runs.items():
        result = _child({**spec, "model": model, "budget": 0, "pairs": chosen})
        out[name] = {
            k: round(v, 4)
            for k, v in result.items()
            if k in ("pairs_per_second", "peak_rss_mb", "seconds")
        } or result
    base = out["transformers_one_at_a_time"].get("pairs_per_second")
    if base:
        out["transformers_batching_speedup"] = round(
            out["transformers_batched_no_prefix_sharing"]["pairs_per_second"] / base, 3
        )
        out["transformers_batching_plus_prefix_speedup"] = round(
            out["transformers_batched_prefix_sharing"]["pairs_per_second"] / base, 3
        )
    no_reuse = out["llamacpp_one_at_a_time"].get("pairs_per_second")
    if no_reuse:
        out["llamacpp_batching_plus_prefix_speedup"] = round(
            out["llamacpp_batched_prefix_reuse"]["pairs_per_second"] / no_reuse, 3
        )
    return out
