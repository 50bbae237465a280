"""Scoring multi-hop QA predictions against a dataset with each dataset's official rules:
HotpotQA (answer, supporting facts, joint), 2WikiMultiHopQA (answer over aliases, supporting
facts with case-insensitive titles, evidence triples, joint of all three) and MuSiQue (SQuAD
answer EM/F1 and support over answerable questions; answerability groups on MuSiQue-Full)."""

from __future__ import annotations

from collections.abc import Sequence

from kirag.eval.datasets import MultiHopExample
from kirag.eval.qa_metrics import (
    F1,
    SetScores,
    evidence_scores,
    exact_match,
    joint_scores,
    squad_f1,
    supporting_fact_scores,
    token_f1_prf,
)
from kirag.eval.submission import QAPrediction

from kirag.errors import InputError


def evaluate_predictions(
    predictions: Sequence[QAPrediction], examples: Sequence[MultiHopExample]
) -> dict:
    """Averages and per-question values. HotpotQA / 2Wiki / kirag: over all examples; as in the
    official scripts each part (answer, supporting facts, evidence) is scored on its own, a
    part the predictions lack for a question scores 0 there, and the joint metrics count only
    questions with every part (0 otherwise). MuSiQue: predictions must follow the dataset line
    by line (as its script requires)."""
    dataset = examples[0].dataset if examples else "hotpotqa"
    if dataset == "musique":
        return _evaluate_musique(predictions, examples)
    by_id = {p.id: p for p in predictions}
    per_question: dict[str, dict[str, float]] = {}
    with_facts = any(e.supporting_facts for e in examples)
    twowiki = dataset == "2wikimultihopqa"
    missing: dict[str, list[str]] = {"answer": [], "sp": [], "evidence": []}
    zero = SetScores(0.0, 0.0, 0.0, 0.0)
    for example in examples:
        prediction = by_id.get(example.id)
        answer = prediction.answer if prediction else None
        facts = prediction.supporting_facts if prediction else None
        evidence = prediction.evidence if prediction else None
        row: dict[str, float] = {}
        complete = True
        if answer is None:
            missing["answer"].append(example.id)
            best, complete = F1(0.0, 0.0, 0.0), False
            row["EM"] = row["F1"] = 0.0
        else:
            golds = example.answers or [""]
            best = _answer_scores(answer, golds, independent_maxima=twowiki)
            row["EM"], row["F1"] = exact_match(answer, golds), best.f1
        parts: list[SetScores] = []
        if with_facts:
            if facts is None:
                missing["sp"].append(example.id)
                sp, complete = zero, False
            else:
                sp = supporting_fact_scores(facts, example.supporting_facts, lower_titles=twowiki)
            parts.append(sp)
            row.update({"sp_EM": sp.em, "sp_F1": sp.f1})
        if twowiki:
            if evidence is None:
                missing["evidence"].append(example.id)
                evi, complete = zero, False
            else:
                gold = example.metadata.get("evidence_alternatives") or [
                    [e] for e in example.evidences
                ]
                evi = evidence_scores(evidence, gold)
            parts.append(evi)
            row.update({"evi_EM": evi.em, "evi_F1": evi.f1})
        if parts:
            joint = joint_scores(best, row["EM"], *parts) if complete else zero
            row.update({"joint_EM": joint.em, "joint_F1": joint.f1})
        if example.gold_doc_ids and prediction and prediction.supporting_doc_ids:
            gold_docs = set(example.gold_doc_ids)
            found = prediction.supporting_doc_ids
            row["support_recall"] = len(gold_docs & set(found)) / len(gold_docs)
            row["support_precision"] = len(gold_docs & set(found)) / len(found)
        per_question[example.id] = row
    lacking = {qid for ids in missing.values() for qid in ids}
    result = _summary(per_question, len(examples), [e.id for e in examples if e.id in lacking])
    result["missing_parts"] = {k: len(v) for k, v in missing.items() if v}
    return result


def _answer_scores(answer: str, golds: Sequence[str], independent_maxima: bool) -> F1:
    """The best alias's F1 with its precision and recall (HotpotQA: one gold); 2Wiki's
    update_answer takes the maximum of each of F1, precision and recall separately."""
    scores = [token_f1_prf(answer, g) for g in golds]
    if independent_maxima:
        return F1(
            max(s.f1 for s in scores),
            max(s.precision for s in scores),
            max(s.recall for s in scores),
        )
    return max(scores, key=lambda s: s.f1)


def _evaluate_musique(
    predictions: Sequence[QAPrediction], examples: Sequence[MultiHopExample]
) -> dict:
    """MuSiQue's evaluate_v1.0: answer EM / F1 (SQuAD's, max over aliases) and support EM / F1
    over the answerable questions; with unanswerable versions present (MuSiQue-Full), the
    group metrics: per question pair, the answerable version's score, counted only when the
    predicted answerability of both versions is right."""
    if len(predictions) != len(examples):
        raise InputError(
            f"MuSiQue predictions must follow the dataset line by line: {len(predictions)} "
            f"predictions for {len(examples)} questions"
        )
    per_question: dict[str, dict[str, float]] = {}
    groups: dict[str, dict] = {}
    for number, (example, prediction) in enumerate(zip(examples, predictions, strict=True), 1):
        if example.id != prediction.id:
            raise InputError(
                f"MuSiQue prediction #{number} is for {prediction.id!r}, the dataset's question "
                f"#{number} is {example.id!r}: predictions must follow the dataset's order"
            )
        golds = example.answers or [""]
        gold_idxs = [d.metadata["idx"] for d in example.documents if d.metadata["is_supporting"]]
        support = supporting_fact_scores(prediction.support_idxs, gold_idxs, empty_is_exact=True)
        answer = {
            "EM": max(exact_match(prediction.answer, g) for g in golds),
            "F1": max(squad_f1(prediction.answer, g) for g in golds),
        }
        group = groups.setdefault(example.id, {"gold": [], "predicted": []})
        group["gold"].append(example.answerable)
        group["predicted"].append(bool(prediction.answerable))
        key = example.id if example.id not in per_question else f"{example.id}#2"
        row: dict[str, float] = {
            "answerable_correct": float(prediction.answerable == example.answerable)
        }
        if example.answerable:
            row.update(answer)
            row.update({"support_EM": support.em, "support_F1": support.f1})
            group["answer"], group["support_F1"] = answer, support.f1
        per_question[key] = row
    answerable = [r for r in per_question.values() if "EM" in r]
    aggregate = {
        name: (sum(r[name] for r in answerable) / len(answerable) if answerable else 0.0)
        for name in ("EM", "F1", "support_EM", "support_F1")
    }
    if any(not e.answerable for e in examples):
        single = [qid for qid, g in groups.items() if len(g["gold"]) != 2]
        if single:
            raise InputError(
                f"MuSiQue-Full: {len(single)} questions lack their answerable or unanswerable "
                f"version (e.g. {single[0]!r}); the group metrics need both, as evaluate_v1.0 "
                "asserts"
            )
        scored = [g for g in groups.values() if "answer" in g]
        right = [g["predicted"] == g["gold"] for g in scored]
        n = max(len(scored), 1)
        aggregate["group_answer_sufficiency_EM"] = (
            sum(g["answer"]["EM"] for g, ok in zip(scored, right, strict=True) if ok) / n
        )
        aggregate["group_answer_sufficiency_F1"] = (
            sum(g["answer"]["F1"] for g, ok in zip(scored, right, strict=True) if ok) / n
        )
        aggregate["group_support_sufficiency_F1"] = (
            sum(g["support_F1"] for g, ok in zip(scored, right, strict=True) if ok) / n
        )
    aggregate["answerability_accuracy"] = sum(
        r["answerable_correct"] for r in per_question.values()
    ) / max(len(per_question), 1)
    return {
        "aggregate": aggregate,
        "questions": len(examples),
        "missing_predictions": [],
        "per_question": per_question,
    }


def _summary(per_question: dict[str, dict[str, float]], questions: int, missing: list) -> dict:
    keys = sorted({k for row in per_question.values() for k in row})
    n = max(questions, 1)
    aggregate = {k: sum(row.get(k, 0.0) for row in per_question.values()) / n for k in keys}
    return {
        "aggregate": aggregate,
        "questions": questions,
        "missing_predictions": missing,
        "per_question": per_question,
    }
