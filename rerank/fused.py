"""A reranker fused with the first stage: any kirag reranker, then `fuse_with_first_stage` — the
layer `kirag rerank --fusion` applies, as one Reranker object an app or a framework adapter can
hold (the reranker's own scores stay in metadata as `rerank_score`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kirag.rerank.base import BaseReranker, Reranker, as_hits
from kirag.retrieval.fusion import METHODS, fuse_with_first_stage

from kirag.types import Document, Hit, Query


class FusedReranker(BaseReranker):
    """Reranks every candidate with `reranker`, then fuses its scores with the first stage's
    (`fusion` "interpolate" or "rrf", `weight` = the reranker's share) and keeps the top `k`."""

    def __init__(
        self,
        model: str | None = None,
        reranker: str | Reranker = "rank1",
        fusion: str = "interpolate",
        weight: float = 0.5,
        rrf_k: int = 60,
        reranker_options: Mapping[str, Any] | None = None,
    ):
        """`reranker`: a loaded kirag reranker, or a registry name loaded with `model` and
        `reranker_options` (e.g. "rank1", model "smollm2-135m", {"thinking_budget": 0})."""
        from kirag.errors import KiragError

        if fusion not in METHODS:
            raise KiragError(f"unknown fusion {fusion!r}; known: {', '.join(METHODS)}")
        if not 0.0 <= weight <= 1.0:
            raise KiragError(f"the fusion weight must be in [0, 1], not {weight}")
        if isinstance(reranker, str):
            from kirag.rerank.factory import load_reranker

            reranker = load_reranker(reranker, model, **dict(reranker_options or {}))
        elif model is not None or reranker_options:
            raise KiragError("give model= and reranker_options= only with a reranker name")
        self.reranker = reranker
        self.fusion = fusion
        self.weight = weight
        self.rrf_k = rrf_k

    def rerank(
        self,
        query: str | Query,
        candidates: Sequence[Hit] | Sequence[Document],
        k: int | None = None,
    ) -> list[Hit]:
        """The fused ranking of all `candidates` (the fusion needs every one), top `k`."""
        reranked = self.reranker.rerank(query, as_hits(candidates))
        qid = query.id if isinstance(query, Query) else None
        fused = fuse_with_first_stage(reranked, self.fusion, self.weight, self.rrf_k, qid=qid)
        return fused[:k] if k else fused
