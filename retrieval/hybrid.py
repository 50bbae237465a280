"""Hybrid retrieval: fuse the rankings of several retrievers.

Pure functions over Hit lists — reciprocal-rank fusion (Cormack et al., 2009) and normalised
linear fusion — and a HybridRetriever that applies them to any retrievers. Fused hits keep each
input's score in `metadata["scores"]` (None where an input did not return the document).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from kirag.retrieval.base import Retriever
from kirag.retrieval.index_folder import Queries, query_pairs

from kirag.errors import KiragError
from kirag.types import Hit, Query

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


class HybridRetriever:
    """Any retrievers fused into one: each retrieves `depth` candidates, the fusion ranks them."""

    def __init__(
        self,
        retrievers: Sequence[Retriever],
        fusion: str = "rrf",
        weights: Sequence[float] | None = None,
        depth: int = 100,
        rrf_k: int = 60,
        normalization: Normalization = "minmax",
    ):
        if not retrievers:
            raise ValueError("HybridRetriever needs at least one retriever")
        if fusion not in FUSIONS:
            raise KiragError(f"unknown fusion {fusion!r}; known: {', '.join(FUSIONS)}")
        self.retrievers = list(retrievers)
        self.fusion = fusion
        self.weights = weights
        self.depth = depth
        self.rrf_k = rrf_k
        self.normalization = normalization
        self.docstore = getattr(self.retrievers[0], "docstore", None)

    def _fuse(self, rankings: Sequence[Sequence[Hit]], k: int) -> list[Hit]:
        if self.fusion == "rrf":
            return reciprocal_rank_fusion(rankings, self.rrf_k, self.weights, depth=k)
        return linear_fusion(rankings, self.weights, self.normalization, depth=k)

    def search(self, query: str | Query, k: int = 10, with_documents: bool = False) -> list[Hit]:
        depth = max(k, self.depth)
        rankings = [r.search(query, depth) for r in self.retrievers]
        hits = self._fuse(rankings, k)
        if with_documents and self.docstore is not None:
            self.docstore.attach(hits)
        return hits

    def batch_search(
        self, queries: Queries, k: int = 10, threads: int = 1, with_documents: bool = False
    ) -> dict[str, list[Hit]]:
        pairs = query_pairs(queries)
        depth = max(k, self.depth)
        per_retriever = [
            r.batch_search(dict(pairs), depth, threads=threads) for r in self.retrievers
        ]
        out = {qid: self._fuse([run.get(qid, []) for run in per_retriever], k) for qid, _ in pairs}
        if with_documents and self.docstore is not None:
            self.docstore.attach([h for hits in out.values() for h in hits])
        return out
