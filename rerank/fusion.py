"""Fusing a reranker's scores with the first-stage scores, an optional layer on top of any
reranker (Rank1 scoring itself stays exactly the reference's). Useful when the reranking model is
weak or unvalidated: a small weight lets it break ties without overturning the retriever."""

from __future__ import annotations

import math
from collections.abc import Sequence

from kirag.retrieval.hybrid import linear_fusion, reciprocal_rank_fusion

from kirag.errors import InputError, KiragError
from kirag.types import Hit

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
    if not 0.0 <= weight <= 1.0:
        raise ValueError("weight must be in [0, 1]")
    if not reranked:
        return []
    _check_finite(reranked, qid)
    first = sorted(
        (
            Hit(
                h.doc_id,
                float(h.metadata["first_stage_score"]),
                int(h.metadata["first_stage_rank"]),
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
            ("first-stage", hit.metadata["first_stage_score"]),
        ):
            if not math.isfinite(float(score)):
                raise InputError(
                    f"cannot fuse {where}document {hit.doc_id!r}: its {name} score is {score!r} "
                    "(NaN and infinities cannot be normalised)"
                )
