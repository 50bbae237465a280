"""Question-answering metrics with the official HotpotQA / SQuAD rules: answer normalisation,
exact match and token F1 (maximum over gold aliases), supporting-fact metrics and the joint
metrics of HotpotQA, and supporting-document recall / precision for multi-hop retrieval."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# re-exported: the evaluation's public names; the rules live in kirag.core.answers (shared with KiRAG)
from kirag.core.answers import F1 as F1
from kirag.core.answers import PUNCTUATION
from kirag.core.answers import exact_match as exact_match
from kirag.core.answers import f1 as f1
from kirag.core.answers import f1_score as f1_score
from kirag.core.answers import normalize_answer as normalize_answer
from kirag.core.answers import token_f1 as token_f1
from kirag.core.answers import token_f1_prf as token_f1_prf


def squad_f1(prediction: str, gold: str) -> float:
    """SQuAD's compute_f1 as MuSiQue's evaluation uses it: no yes/no special case; an empty
    answer scores 1 against an empty gold answer and 0 against anything else."""
    pred_tokens = normalize_answer(prediction).split() if prediction else []
    gold_tokens = normalize_answer(gold).split() if gold else []
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def normalize_evidence_text(text: str) -> str:
    """2WikiMultiHopQA's evidence normalisation: lower case, punctuation removed, whitespace
    collapsed (articles kept)."""
    return " ".join("".join(ch for ch in text.lower() if ch not in PUNCTUATION).split())


@dataclass(frozen=True, slots=True)
class SetScores:
    em: float
    f1: float
    precision: float
    recall: float


def supporting_fact_scores(
    predicted: Iterable[Sequence | int],
    gold: Iterable[Sequence | int],
    lower_titles: bool = False,
    empty_is_exact: bool = False,
) -> SetScores:
    """HotpotQA's update_sp: precision / recall / F1 of the distinct (title, sentence id) pairs;
    EM when nothing is missed or extra. `lower_titles`: 2WikiMultiHopQA's normalize_sp, which
    lower-cases the titles after removing duplicates, so one fact given in two casings counts
    twice. MuSiQue's SupportMetric is the same on paragraph indices, with `empty_is_exact`:
    no gold and no predicted support scores EM 1 and F1 1 (HotpotQA's rule gives F1 0)."""
    pred = [_fact(f, lower_titles) for f in dict.fromkeys(map(_hashable, predicted))]
    golds = [_fact(g, lower_titles) for g in dict.fromkeys(map(_hashable, gold))]
    pred_set, gold_set = set(pred), set(golds)
    tp = sum(1 for f in pred if f in gold_set)
    fp, fn = len(pred) - tp, sum(1 for g in golds if g not in pred_set)
    if empty_is_exact and not pred and not golds:
        return SetScores(1.0, 1.0, 0.0, 0.0)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return SetScores(float(fp + fn == 0), f1, precision, recall)


def _hashable(fact: Sequence | int) -> tuple | int:
    return fact if isinstance(fact, int) else tuple(fact)


def _fact(fact: tuple | int, lower_titles: bool) -> tuple | int:
    if isinstance(fact, int) or not lower_titles or not fact:
        return fact
    return (str(fact[0]).lower(), *fact[1:])


def evidence_scores(
    predicted: Iterable[Sequence[str]], gold: Sequence[Iterable[Sequence[str]]]
) -> SetScores:
    """2WikiMultiHopQA's update_evi: each gold evidence is a set of acceptable (subject,
    relation, object) triples (aliases); a predicted triple matches when some gold evidence
    accepts it. EM when every prediction matches and there are as many as gold evidences."""
    norm = lambda triple: tuple(normalize_evidence_text(str(x)) for x in triple)  # noqa: E731
    preds = {norm(t) for t in predicted}
    golds = [{norm(t) for t in alternatives} for alternatives in gold]
    matches = sum(1 for t in preds if any(t in alternatives for alternatives in golds))
    precision = matches / len(preds) if preds else 0.0
    recall = matches / len(golds) if golds else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return SetScores(float(matches == len(preds) == len(golds)), f1, precision, recall)


def joint_scores(answer: F1, answer_em: float, *parts: SetScores) -> SetScores:
    """HotpotQA's joint metrics: products of the answer's and the supporting facts' precision
    and recall (2WikiMultiHopQA multiplies in its evidence scores as a further part)."""
    precision, recall, em = answer.precision, answer.recall, answer_em
    for part in parts:
        precision, recall, em = precision * part.precision, recall * part.recall, em * part.em
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return SetScores(em, f1, precision, recall)


def support_recall(ranked_ids: Sequence[str], gold_ids: Iterable[str], k: int) -> float:
    """Fraction of the gold supporting documents found in the top `k`."""
    gold = set(gold_ids)
    if not gold:
        raise ValueError("no gold supporting documents given")
    return len(gold & set(ranked_ids[:k])) / len(gold)


def support_precision(ranked_ids: Sequence[str], gold_ids: Iterable[str], k: int) -> float:
    """Fraction of the top `k` that are gold supporting documents."""
    top = ranked_ids[:k]
    return len(set(gold_ids) & set(top)) / k if k else 0.0
