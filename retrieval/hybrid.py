"""Hybrid retrieval: a HybridRetriever that fuses the rankings of any retrievers with the pure
fusion functions of kirag.retrieval.fusion (reciprocal-rank or normalised linear fusion). Fused hits keep
each input's score in `metadata["scores"]` (None where an input did not return the document).
"""

from __future__ import annotations

from collections.abc import Sequence

from kirag.retrieval.base import Retriever
from kirag.retrieval.fusion import FUSIONS, Normalization, linear_fusion, reciprocal_rank_fusion
from kirag.retrieval.index_folder import Queries, query_pairs

from kirag.core.concurrency import AsyncSearch
from kirag.core.ranges import COUNT
from kirag.errors import KiragError
from kirag.types import Hit, Query


class HybridRetriever(AsyncSearch):
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
        COUNT.check(depth, "depth")
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
        depth = max(COUNT.check(k, "k"), self.depth)
        rankings = [r.search(query, depth) for r in self.retrievers]
        hits = self._fuse(rankings, k)
        if with_documents and self.docstore is not None:
            self.docstore.attach(hits)
        return hits

    def batch_search(
        self, queries: Queries, k: int = 10, threads: int = 1, with_documents: bool = False
    ) -> dict[str, list[Hit]]:
        pairs = query_pairs(queries)
        depth = max(COUNT.check(k, "k"), self.depth)
        per_retriever = [
            r.batch_search(dict(pairs), depth, threads=threads) for r in self.retrievers
        ]
        out = {qid: self._fuse([run.get(qid, []) for run in per_retriever], k) for qid, _ in pairs}
        if with_documents and self.docstore is not None:
            self.docstore.attach([h for hits in out.values() for h in hits])
        return out
