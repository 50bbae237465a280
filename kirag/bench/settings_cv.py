"""`kirag bench kirag-cv`: the offline default's settings chosen by cross-validation on the
bundled bridge questions, so its reported quality is not a fitted number.

Every setting of a grid (first stage, weight of the chain documents in the final fusion, turns,
beam) is run once on every question; then, leave-one-out, the setting with the best support
Recall@10 (ties: R@5, R@3, then the simpler setting) on the other questions is scored on the one
left out. The mean over the held-out questions is the cross-validated figure; the setting chosen
on all questions is the one to ship, and its score on them is the fitted figure (reported apart).
BM25, dense and RRF(BM25, dense) on the same questions are the baselines.
"""

from __future__ import annotations

import argparse
import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

KS = (3, 5, 10)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--index",
        default="indexes/enwiki-triples",
        help="spaCy triple index of the bundled sample (built when missing)",
    )
    parser.add_argument("--turns", default="1,2,3", help="turns to try")
    parser.add_argument("--beams", default="2,5", help="beam sizes to try")
    parser.add_argument(
        "--chain-weights",
        default="0,0.5,1",
        help="weights of the chain documents in the final fusion (0: the first stage alone)",
    )
    parser.add_argument(
        "--first-stages", default="rrf,bm25", help="first stages to try (rrf, bm25, dense)"
    )


def settings_grid(
    first_stages: Sequence[str],
    chain_weights: Sequence[float],
    turns: Sequence[int],
    beams: Sequence[int],
) -> list[dict]:
    """The settings to compare, simplest first (the tie-break order). With chain weight 0 the
    ranking is the first stage's, whatever the turns and beam: one setting per first stage."""
    grid = []
    for stage, weight in itertools.product(first_stages, sorted(chain_weights)):
        if weight == 0:
            grid.append({"first_stage": stage, "chain_weight": 0.0, "max_turns": 1, "beam_size": 1})
            continue
        for n, beam in itertools.product(sorted(turns), sorted(beams)):
            grid.append(
                {"first_stage": stage, "chain_weight": weight, "max_turns": n, "beam_size": beam}
            )
    return grid


def setting_name(setting: dict) -> str:
    if setting["chain_weight"] == 0:
        return f"{setting['first_stage']} alone"
    return (
        f"{setting['first_stage']} + chains x{setting['chain_weight']:g}, "
        f"{setting['max_turns']} turns, beam {setting['beam_size']}"
    )


def _key(recalls: dict[int, float], simplicity: int) -> tuple:
    return (recalls[10], recalls[5], recalls[3], -simplicity)


def mean_recall(per_question: Sequence[dict[int, float]], keep: Sequence[int]) -> dict[int, float]:
    n = max(len(keep), 1)
    return {k: sum(per_question[i][k] for i in keep) / n for k in KS}


def leave_one_out(scores: Sequence[Sequence[dict[int, float]]]) -> tuple[dict, Counter]:
    """`scores[s][q]` = recalls of setting s on question q. For each question, the setting best
    on the others (ties: the simpler, i.e. earlier) is scored on it; returns the mean held-out
    recalls and how often each setting was chosen."""
    questions = range(len(scores[0]))
    held_out: list[dict[int, float]] = []
    chosen: Counter = Counter()
    for left_out in questions:
        others = [q for q in questions if q != left_out]
        best = max(range(len(scores)), key=lambda s: _key(mean_recall(scores[s], others), s))
        chosen[best] += 1
        held_out.append(scores[best][left_out])
    return mean_recall(held_out, range(len(held_out))), chosen


def _recalls(ranked: Sequence[str], gold: Sequence[str]) -> dict[int, float]:
    from kirag.eval.qa_metrics import support_recall

    return {k: support_recall(ranked, gold, k) for k in KS}


def run(args: argparse.Namespace) -> dict:
    from kirag.bench.harness import rounded
    from kirag.bench.multihop import build_indexes
    from kirag.eval.datasets import load_bundled_questions
    from kirag.rag.pipeline import KiRAG
    from kirag.retrieval.hybrid import HybridRetriever

    questions = load_bundled_questions()
    index_dir = Path(args.index)
    if not (index_dir / "manifest.json").exists():
        index_dir, _, _ = build_indexes("enwiki-sample", index_dir.parent, index_dir.name)
    pipeline = KiRAG(index_dir, mode="aligner")
    documents = pipeline.index.document_retrievers()
    first_stages = {
        "bm25": documents["bm25"],
        "dense": documents["dense"],
        "rrf": HybridRetriever([documents["bm25"], documents["dense"]], fusion="rrf", depth=50),
    }
    baselines = {}
    for name, retriever in first_stages.items():
        per_question = [
            _recalls([h.doc_id for h in retriever.search(q.question, 10)], q.gold_doc_ids)
            for q in questions
        ]
        baselines[name] = rounded(mean_recall(per_question, range(len(questions))))
    grid = settings_grid(
        [s.strip() for s in args.first_stages.split(",")],
        [float(w) for w in args.chain_weights.split(",")],
        [int(t) for t in args.turns.split(",")],
        [int(b) for b in args.beams.split(",")],
    )
    scores = []
    for setting in grid:
        retriever = pipeline.retriever
        retriever.doc_retriever = first_stages[setting["first_stage"]]
        retriever.settings = replace(
            retriever.settings,
            fusion_weights=(setting["chain_weight"], 1.0, 0.0),
            max_turns=setting["max_turns"],
            beam_size=setting["beam_size"],
        )
        scores.append(
            [
                _recalls(
                    [h.doc_id for h in retriever.retrieve(q.question, k=10).hits], q.gold_doc_ids
                )
                for q in questions
            ]
        )
    everyone = range(len(questions))
    fitted = [mean_recall(per_question, everyone) for per_question in scores]
    shipped = max(range(len(grid)), key=lambda s: _key(fitted[s], s))
    cross_validated, chosen = leave_one_out(scores)
    return {
        "questions": len(questions),
        "baselines": baselines,
        "cross_validated": {
            "recall": rounded(cross_validated),
            "chosen_per_fold": {setting_name(grid[s]): n for s, n in chosen.most_common()},
        },
        "shipped_setting": grid[shipped] | {"name": setting_name(grid[shipped])},
        "fitted_recall_of_shipped_setting": rounded(fitted[shipped]),
        "grid": [
            {"setting": setting_name(s), **{f"R@{k}": round(f[k], 4) for k in KS}}
            for s, f in zip(grid, fitted, strict=True)
        ],
    }
