"""Answer normalisation and token overlap with the official SQuAD / HotpotQA rules. Shared by
KiRAG's method (matching a generated step to a candidate triple) and the evaluation (exact match,
F1), so the method never depends on the evaluation package."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

_ARTICLES = re.compile(r"\b(a|an|the)\b")
PUNCTUATION = set(string.punctuation)
SPECIAL_ANSWERS = ("yes", "no", "noanswer")


def normalize_answer(text: str) -> str:
    """Lower case, punctuation removed, articles (a, an, the) removed, whitespace collapsed."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class F1:
    f1: float
    precision: float
    recall: float


def token_f1_prf(prediction: str, gold: str) -> F1:
    """HotpotQA's f1_score: token overlap of the normalised strings; "yes", "no" and "noanswer"
    only score when both sides are the same special answer."""
    pred, truth = normalize_answer(prediction), normalize_answer(gold)
    if (pred in SPECIAL_ANSWERS or truth in SPECIAL_ANSWERS) and pred != truth:
        return F1(0.0, 0.0, 0.0)
    pred_tokens, truth_tokens = pred.split(), truth.split()
    same = sum((Counter(pred_tokens) & Counter(truth_tokens)).values())
    if same == 0:
        return F1(0.0, 0.0, 0.0)
    precision, recall = same / len(pred_tokens), same / len(truth_tokens)
    return F1(2 * precision * recall / (precision + recall), precision, recall)


def token_f1(prediction: str, gold: str) -> float:
    return token_f1_prf(prediction, gold).f1


def _golds(golds: str | Iterable[str]) -> list[str]:
    golds = [golds] if isinstance(golds, str) else list(golds)
    if not golds:
        raise ValueError("no gold answers given")
    return golds


def exact_match(prediction: str, golds: str | Iterable[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer (any alias)."""
    pred = normalize_answer(prediction or "")
    return float(any(pred == normalize_answer(g) for g in _golds(golds)))


def f1(prediction: str, golds: str | Iterable[str]) -> float:
    """Token F1 (HotpotQA's rules) against the best-matching gold alias."""
    return max(token_f1(prediction or "", g) for g in _golds(golds))


f1_score = f1  # the name the HotpotQA script uses
