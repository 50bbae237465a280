"""Scoring multi-hop QA predictions against a dataset, HotpotQA-style: answer EM/F1, supporting
facts (when the dataset has them), joint metrics, and supporting-document recall."""

from __future__ import annotations

from collections.abc import Sequence

from kirag.eval.datasets import MultiHopExample
from kirag.eval.qa import exact_match, joint_scores, supporting_fact_scores, token_f1_prf
from kirag.eval.submission import QAPrediction


def evaluate_predictions(
    predictions: Sequence[QAPrediction], examples: Sequence[MultiHopExample]
) -> dict:
    """Averages over all examples (a missing prediction scores 0, as the official script does)
    and per-question values."""
    by_id = {p.id: p for p in predictions}
    per_question: dict[str, dict[str, float]] = {}
    with_facts = any(e.supporting_facts for e in examples)
    for example in examples:
        prediction = by_id.get(example.id)
        row: dict[str, float] = {}
        answer = prediction.answer if prediction else ""
        golds = example.answers or [""]
        best = max((token_f1_prf(answer, g) for g in golds), key=lambda s: s.f1)
        row["EM"] = exact_match(answer, golds) if prediction else 0.0
        row["F1"] = best.f1 if prediction else 0.0
        if with_facts:
            sp = supporting_fact_scores(
                prediction.supporting_facts if prediction else [], example.supporting_facts
            )
            joint = joint_scores(best, row["EM"], sp)
            row.update({"sp_EM": sp.em, "sp_F1": sp.f1, "joint_EM": joint.em, "joint_F1": joint.f1})
        if example.gold_doc_ids and prediction and prediction.supporting_doc_ids:
            gold = set(example.gold_doc_ids)
            found = prediction.supporting_doc_ids
            row["support_recall"] = len(gold & set(found)) / len(gold)
            row["support_precision"] = len(gold & set(found)) / len(found)
        per_question[example.id] = row
    keys = sorted({k for row in per_question.values() for k in row})
    n = max(len(examples), 1)
    aggregate = {k: sum(row.get(k, 0.0) for row in per_question.values()) / n for k in keys}
    missing = [e.id for e in examples if e.id not in by_id]
    return {
        "aggregate": aggregate,
        "questions": len(examples),
        "missing_predictions": missing,
        "per_question": per_question,
    }
