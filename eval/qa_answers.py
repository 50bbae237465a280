"""KiRAG's answers as official multi-hop QA predictions and their summary scores: what
`kirag answer --questions` writes and prints, for a Python-API user too.

An answer is read by its shape only (`answer`, `hits`, `result.best_chain.triples`, `to_dict()`
of kirag.rag.pipeline.Answer), so the evaluation does not depend on the method's packages."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kirag.eval.datasets import MultiHopExample
from kirag.eval.qa_metrics import exact_match, f1_score, support_recall
from kirag.eval.submission import QAPrediction

SUPPORT_DEPTHS = (3, 5, 10)  # support_R@k of the summary scores
SCORE_DECIMALS = 4


def answer_prediction(example: MultiHopExample, answer: Any, reader_k: int) -> QAPrediction:
    """The official prediction of one answer: supporting documents are the top `reader_k`,
    supporting facts the (title, sentence) pairs of the best chain's triples, evidence its
    triples, MuSiQue paragraph indices from "{id}#{idx}" document ids."""
    chain = answer.result.best_chain
    triples = chain.triples if chain else []
    facts = list(dict.fromkeys((t.title or t.doc_id, max(t.sentence_index, 0)) for t in triples))
    docs = [h.doc_id for h in answer.hits[:reader_k]]
    idxs = [
        int(d.rsplit("#", 1)[1])
        for d in docs
        if d.startswith(f"{example.id}#") and d.rsplit("#", 1)[1].isdigit()
    ]
    return QAPrediction(
        example.id,
        answer.answer,
        facts,
        docs,
        idxs,
        [[t.head, t.relation, t.tail] for t in triples],
        bool(answer.answer),
    )


def answer_predictions(
    examples: Sequence[MultiHopExample], answers: Sequence[Any], reader_k: int
) -> list[QAPrediction]:
    """`answer_prediction` of each (example, answer) pair, in order."""
    return [answer_prediction(e, a, reader_k) for e, a in zip(examples, answers, strict=True)]


def prediction_fields(prediction: QAPrediction) -> dict[str, Any]:
    """A prediction's parts as the answers JSONL keeps them beside the answer."""
    return {
        "supporting_doc_ids": prediction.supporting_doc_ids,
        "supporting_facts": [list(f) for f in prediction.supporting_facts],
        "support_idxs": prediction.support_idxs,
        "evidence": prediction.evidence,
        "answerable": prediction.answerable,
    }


def answer_scores(examples: Sequence[MultiHopExample], answers: Sequence[Any]) -> dict:
    """Mean answer EM and F1 over the examples (every one needs gold answers) and, over those
    with gold supporting documents, their recall in the ranked documents (support_R@3/5/10);
    rounded to SCORE_DECIMALS."""
    pairs = list(zip(examples, answers, strict=True))
    n = len(pairs)
    out = {
        "EM": sum(exact_match(a.answer, e.answers) for e, a in pairs) / n,
        "F1": sum(f1_score(a.answer, e.answers) for e, a in pairs) / n,
    }
    with_gold = [(e, a) for e, a in pairs if e.gold_doc_ids]
    for k in SUPPORT_DEPTHS:
        if with_gold:
            out[f"support_R@{k}"] = sum(
                support_recall([h.doc_id for h in a.hits], e.gold_doc_ids, k) for e, a in with_gold
            ) / len(with_gold)
    return {k: round(v, SCORE_DECIMALS) for k, v in out.items()}


def write_answers(
    path: str | Path,
    examples: Sequence[MultiHopExample],
    answers: Sequence[Any],
    predictions: Sequence[QAPrediction],
) -> None:
    """The answers JSONL (`kirag answer --answers`, what `kirag submit qa` reads): per question
    its id, the answer record (documents, chains) and its prediction's parts."""
    from kirag.core.atomic import atomic_write

    with atomic_write(path) as fh:
        for example, answer, prediction in zip(examples, answers, predictions, strict=True):
            record = {"id": example.id, **answer.to_dict(), **prediction_fields(prediction)}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
