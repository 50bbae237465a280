"""Fidelity of one scorer to a reference on the same (query, passage) pairs: how far a quantized
or lower-precision model moves Rank1's P(true) and the rankings built from it. Pure functions,
NumPy only (they also run on the GPU machines, which have no SciPy)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from kirag.types import rank_hits


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's τ-b of two score lists (ties handled as SciPy's `kendalltau` does); NaN when
    either list is constant or shorter than two."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(x) < 2:
        return float("nan")
    i, j = np.triu_indices(len(x), k=1)
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    concordant_minus_discordant = float(np.sum(dx * dy))
    pairs_x, pairs_y = float(np.sum(dx != 0)), float(np.sum(dy != 0))
    if pairs_x == 0 or pairs_y == 0:
        return float("nan")
    return concordant_minus_discordant / np.sqrt(pairs_x * pairs_y)


def group_by_query(
    query_ids: Sequence[str], doc_ids: Sequence[str], scores: Sequence[float]
) -> dict[str, list[tuple[str, float]]]:
    """(doc_id, score) lists per query, in the order given."""
    grouped: dict[str, list[tuple[str, float]]] = {}
    for qid, doc_id, score in zip(query_ids, doc_ids, scores, strict=True):
        grouped.setdefault(qid, []).append((doc_id, float(score)))
    return grouped


def score_agreement(
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    scores: Sequence[float],
    reference: Sequence[float],
    depth: int = 10,
) -> dict[str, float]:
    """P(true) mean and max absolute difference to the reference, the mean per-query Kendall τ
    of the two rankings (queries whose reference is constant left out), the mean per-query
    top-`depth` overlap and how often both put the same passage first."""
    ours, ref = np.asarray(scores, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    taus, overlaps, same_first = [], [], []
    mine = group_by_query(query_ids, doc_ids, scores)
    theirs = group_by_query(query_ids, doc_ids, reference)
    for qid, scored in mine.items():
        tau = kendall_tau([s for _, s in scored], [s for _, s in theirs[qid]])
        if not np.isnan(tau):
            taus.append(tau)
        top_ours = [h.doc_id for h in rank_hits(scored, depth)]
        top_ref = [h.doc_id for h in rank_hits(theirs[qid], depth)]
        overlaps.append(len(set(top_ours) & set(top_ref)) / max(len(top_ref), 1))
        same_first.append(top_ours[:1] == top_ref[:1])
    return {
        "p_true_mean_abs_diff": float(np.mean(np.abs(ours - ref))) if len(ours) else 0.0,
        "p_true_max_abs_diff": float(np.max(np.abs(ours - ref))) if len(ours) else 0.0,
        "kendall_tau_mean": float(np.mean(taus)) if taus else float("nan"),
        f"top{depth}_overlap": float(np.mean(overlaps)) if overlaps else float("nan"),
        "same_first": float(np.mean(same_first)) if same_first else float("nan"),
        "queries": len(mine),
        "pairs": len(ours),
    }


def support_recall_at(
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    scores: Sequence[float],
    gold: Mapping[str, Iterable[str]],
    k: int,
) -> float:
    """Mean fraction of each query's gold supporting passages in the top `k` of its list
    reranked by `scores`."""
    from kirag.eval.qa_metrics import support_recall

    grouped = group_by_query(query_ids, doc_ids, scores)
    values = [
        support_recall([h.doc_id for h in rank_hits(scored)], gold[qid], k)
        for qid, scored in grouped.items()
    ]
    return float(np.mean(values)) if values else float("nan")
