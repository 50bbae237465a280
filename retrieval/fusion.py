"""Fusing rankings, shared by hybrid retrieval, reranking and KiRAG: pure functions over Hit
lists — reciprocal-rank fusion (Cormack et al., 2009), normalised linear fusion — and the fusion
of a reranker's scores with the first stage's, an optional layer on top of any reranker (Rank1
scoring itself stays exactly the reference's; a small weight lets a weak or unvalidated model
break ties without overturning the retriever)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from kirag.core.ranges import FRACTION
from kirag.errors import InputError, KiragError
from kirag.types import FIRST_STAGE_RANK, FIRST_STAGE_SCORE, Hit

Normalization = Literal["minmax", "zscore", "none"]
FUSIONS = ("rrf", "linear")


def _weights(rankings: Sequence[Sequence[Hit]], weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    return [float(w) for w in weights]


def _fused(
    totals: dict[str, float], rankings: Sequence[Sequence[Hit]], depth: int | None
) -> list[Hit]:
    documents = {}
    scores: dict[str, list[float | None]] = {doc_id: [None] * len(rankings) for doc_id in totals}
    for i, hits in enumerate(rankings):
        for hit in hits:
            if hit.doc_id in scores:
                scores[hit.doc_id][i] = hit.score
                if hit.document is not None:
                    documents[hit.doc_id] = hit.document
    ordered = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    if depth is not None:
        ordered = ordered[:depth]
    return [
        Hit(doc_id, score, rank, documents.get(doc_id), {"scores": scores[doc_id]})
        for rank, (doc_id, score) in enumerate(ordered, 1)
    ]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Hit]],
    k: int = 60,
    weights: Sequence[float] | None = None,
    depth: int | None = None,
) -> list[Hit]:
    """score(d) = sum_i w_i / (k + rank_i(d)) over the rankings that contain d."""
    totals: dict[str, float] = {}
    for weight, hits in zip(_weights(rankings, weights), rankings, strict=True):
        for position, hit in enumerate(hits, 1):
            rank = hit.rank if hit.rank > 0 else position
            totals[hit.doc_id] = totals.get(hit.doc_id, 0.0) + weight / (k + rank)
    return _fused(totals, rankings, depth)


def normalize_scores(scores: Sequence[float], method: Normalization = "minmax") -> list[float]:
    """Min-max to [0, 1] (constant lists map to 1.0), z-score, or unchanged."""
    if not scores or method == "none":
        return list(scores)
    if method == "minmax":
        low, high = min(scores), max(scores)
        return [1.0 if high == low else (s - low) / (high - low) for s in scores]
    if method == "zscore":
        mean = sum(scores) / len(scores)
        std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
        return [0.0 if std == 0 else (s - mean) / std for s in scores]
    raise ValueError(f"unknown normalization {method!r}; known: minmax, zscore, none")


def linear_fusion(
    rankings: Sequence[Sequence[Hit]],
    weights: Sequence[float] | None = None,
    normalization: Normalization = "minmax",
    depth: int | None = None,
    missing: float | None = None,
) -> list[Hit]:
    """score(d) = sum_i w_i * norm_i(score_i(d)); a document absent from ranking i gets
    `missing` there (default: the lowest normalised score of that ranking)."""
    totals: dict[str, float] = {}
    normalised_rankings = []
    for hits in rankings:
        normalised = normalize_scores([h.score for h in hits], normalization)
        normalised_rankings.append(dict(zip([h.doc_id for h in hits], normalised, strict=True)))
    all_ids = list(dict.fromkeys(h.doc_id for hits in rankings for h in hits))
    for weight, normalised in zip(_weights(rankings, weights), normalised_rankings, strict=True):
        floor = missing if missing is not None else min(normalised.values(), default=0.0)
        for doc_id in all_ids:
            totals[doc_id] = totals.get(doc_id, 0.0) + weight * normalised.get(doc_id, floor)
    return _fused(totals, rankings, depth)


METHODS = ("interpolate", "rrf")


def fuse_with_first_stage(
    reranked: Sequence[Hit],
    method: str = "interpolate",
    weight: float = 0.5,
    rrf_k: int = 60,
    qid: str | None = None,
) -> list[Hit]:
    """Combine reranked hits (carrying `first_stage_score`/`first_stage_rank` in metadata) with
    their first-stage ranking: min-max-normalised interpolation `weight * rerank + (1 - weight) *
    first stage`, or weighted reciprocal-rank fusion. Hits keep their metadata. A NaN or infinite
    score is an error naming the query (`qid`) and document: min-max normalisation would spread
    it to every other hit of the query."""
    if method not in METHODS:
        raise KiragError(f"unknown fusion {method!r}; known: {', '.join(METHODS)}")
    FRACTION.check(weight, "weight")
    if not reranked:
        return []
    _check_finite(reranked, qid)
    first = sorted(
        (
            Hit(
                h.doc_id,
                float(h.metadata[FIRST_STAGE_SCORE]),
                int(h.metadata[FIRST_STAGE_RANK]),
            )
            for h in reranked
        ),
        key=lambda h: h.rank,
    )
    weights = [weight, 1.0 - weight]
    fused = (
        reciprocal_rank_fusion([reranked, first], k=rrf_k, weights=weights)
        if method == "rrf"
        else linear_fusion([reranked, first], weights=weights)
    )
    by_id = {h.doc_id: h for h in reranked}
    out = []
    for hit in fused:
        original = by_id[hit.doc_id]
        metadata = dict(original.metadata) | {
            "rerank_score": original.score,
            "fusion": method,
            "fusion_weight": weight,
        }
        out.append(Hit(hit.doc_id, hit.score, hit.rank, original.document, metadata))
    return out


def _check_finite(hits: Sequence[Hit], qid: str | None) -> None:
    """An InputError for the first hit whose reranker or first-stage score is not finite."""
    where = f"query {qid!r}, " if qid is not None else ""
    for hit in hits:
        for name, score in (
            ("reranker", hit.score),
            ("first-stage", hit.metadata[FIRST_STAGE_SCORE]),
        ):
            if not math.isfinite(float(score)):
                raise InputError(
                    f"cannot fuse {where}document {hit.doc_id!r}: its {name} score is {score!r} "
                    "(NaN and infinities cannot be normalised)"
                )
