"""`kirag bench quantize`: for each GGUF format x calibration (`kirag quantize`), Rank1 at budget 0
on the bundled multi-hop questions' BM25 first-stage lists, against the unquantized base in the
same run: fidelity (P(true) mean absolute difference, per-query Kendall τ, top-10 overlap),
effectiveness (support recall of the reranked lists; the support passages are the judged
relevant ones, the rest judged not), file size and pairs/s.

Honest splits: domain (and cross) calibration uses the Rank1 prompts of the first
`--calibration-questions` questions; every figure is measured on the next `--eval-questions`
questions, which no calibration saw. General calibration uses bundled Wikipedia passages that are
in no question's first-stage list.

The packaged SmolLM2-135M judges relevance poorly, and its GGUF is itself Q4_1: its f32
dequantization is the base here, and fidelity to it — at the low bit widths where quantization
error is large — is the measure; its recall figures say little about a real Rank1 model. The
bench takes any GGUF (`--model`), so a user reruns it on rank1-7b."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from kirag.bench.harness import rounded
from kirag.core.ranges import COUNT
from kirag.core.settings import add_arguments as add_settings_arguments
from kirag.core.settings import from_args
from kirag.llm.quantize import CALIBRATIONS, CalibrationSettings

RECALL_DEPTHS = (5, 10)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="smollm2-135m", help="a GGUF (path or short name)")
    parser.add_argument("--formats", default="Q4_K_M,Q2_K")
    parser.add_argument("--calibrations", default=",".join(CALIBRATIONS))
    parser.add_argument("--candidates", type=COUNT, default=10, help="BM25 passages per question")
    parser.add_argument("--calibration-questions", type=COUNT, default=12)
    parser.add_argument("--eval-questions", type=COUNT, default=6)
    # the calibration's own flags, but 8 windows: a bench quantizes once per format x calibration
    add_settings_arguments(parser, CalibrationSettings, skip=("kind",), defaults={"chunks": 8})
    parser.add_argument("--batch-size", type=COUNT, default=8)
    parser.add_argument("--threads", type=COUNT, default=None)
    parser.add_argument(
        "--work", default=None, help="folder for the quantized models (default: a temporary one)"
    )


def _score(model_path: Path, pairs, batch_size: int, threads: int | None) -> dict:
    """Rank1 P(true) at budget 0 for the pairs with the llama.cpp engine, and its speed."""
    from kirag.llm.llamacpp_engine import LlamaCppEngine
    from kirag.rerank.rank1 import Rank1Reranker

    engine = LlamaCppEngine(str(model_path), n_threads=threads)
    try:
        reranker = Rank1Reranker(engine=engine, thinking_budget=0, batch_size=batch_size)
        start = time.perf_counter()
        scores = reranker.score([(p[1], p[3]) for p in pairs])
        seconds = time.perf_counter() - start
        return {
            "p_true": [s.p_true for s in scores],
            "pairs_per_second": len(pairs) / seconds,
            "precision": engine.precision,
            "cpu_variant": engine.cpu_variant,
        }
    finally:
        engine.close()


def _effectiveness(pairs, scores, qrels) -> dict:
    from kirag.bench.fidelity import support_recall_at

    qids, doc_ids = [p[0] for p in pairs], [p[2] for p in pairs]
    return {
        f"support_recall@{k}": support_recall_at(qids, doc_ids, scores, qrels, k)
        for k in RECALL_DEPTHS
    }


def run(args: argparse.Namespace) -> dict:
    from kirag.bench.fidelity import score_agreement
    from kirag.bench.rerank import build_pairs
    from kirag.io.corpus import read_corpus
    from kirag.llm.quantize import GGUFVocab, LlamaTools, quantize_gguf, unquantized_base
    from kirag.models import resolve_model
    from kirag.rerank.rank1 import Rank1Reranker

    pairs, qrels = build_pairs(args.candidates)
    qids = list(dict.fromkeys(p[0] for p in pairs))
    calibration_ids = set(qids[: args.calibration_questions])
    eval_ids = qids[args.calibration_questions : args.calibration_questions + args.eval_questions]
    evaluated = [p for p in pairs if p[0] in set(eval_ids)]
    source = Path(resolve_model(args.model, "llm").location)
    base, base_note = unquantized_base(source)
    tools = LlamaTools.find()

    vocab = GGUFVocab(base)
    try:  # the exact prompts Rank1 gives the model (budget 0) for the calibration questions
        reranker = Rank1Reranker(engine=vocab, thinking_budget=0)
        domain = reranker.prompts([(p[1], p[3]) for p in pairs if p[0] in calibration_ids])
    finally:
        vocab.close()
    in_lists = {p[2] for p in pairs}
    general = [d.contents for d in read_corpus("enwiki-sample") if d.id not in in_lists]

    out: dict = {
        "model": str(source),
        "base": base_note,
        "base_size_mib": round(base.stat().st_size / 2**20, 2),
        "calibration_questions": sorted(calibration_ids),
        "eval_questions": eval_ids,
        "eval_pairs": len(evaluated),
        "domain_prompts_available": len(domain),
        "general_passages_available": len(general),
        "engine": "llamacpp, Rank1 budget 0, the engine's defaults (kv f16, flash attention)",
        "rows": {},
    }
    first_stage = [-p_index for p_index in range(len(evaluated))]  # BM25 order as scores
    out["first_stage"] = rounded(_effectiveness(evaluated, first_stage, qrels))
    reference = _score(base, evaluated, args.batch_size, args.threads)
    out["cpu_variant"] = reference["cpu_variant"]
    out["rows"]["base"] = rounded(
        {
            "size_mib": out["base_size_mib"],
            "pairs_per_second": reference["pairs_per_second"],
            **_effectiveness(evaluated, reference["p_true"], qrels),
        }
    )
    qids_eval, doc_ids = [p[0] for p in evaluated], [p[2] for p in evaluated]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        matrices: dict[str, Path] = {}
        for calibration in args.calibrations.split(","):
            settings = from_args(CalibrationSettings, args, kind=calibration)
            for fmt in args.formats.split(","):
                folder = work / f"{fmt.lower()}-{calibration}"
                start = time.perf_counter()
                record = quantize_gguf(
                    source,
                    fmt,
                    folder,
                    settings,
                    domain=domain,
                    general=general,
                    threads=args.threads,
                    overwrite=True,
                    tools=tools,
                    imatrix=matrices.get(calibration),
                )
                made = time.perf_counter() - start
                if calibration != "none":
                    matrices.setdefault(calibration, folder / "imatrix.gguf")
                result = _score(folder / "model.gguf", evaluated, args.batch_size, args.threads)
                row = {
                    "size_mib": record.size_bytes / 2**20,
                    "quantize_seconds": made,
                    "pairs_per_second": result["pairs_per_second"],
                    "speedup_vs_base": result["pairs_per_second"] / reference["pairs_per_second"],
                    **score_agreement(qids_eval, doc_ids, result["p_true"], reference["p_true"]),
                    **_effectiveness(evaluated, result["p_true"], qrels),
                    "calibration_texts": {
                        k: v for k, v in record.calibration_texts.items() if k != "sha256"
                    },
                }
                out["rows"][f"{fmt}/{calibration}"] = rounded(row)
    return out
