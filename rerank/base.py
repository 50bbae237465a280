"""The reranker seam: rescore candidates of one query, or every query of a run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from kirag.io.docstore import DocStore
from kirag.types import Document, Hit, Query


@runtime_checkable
class Reranker(Protocol):
    """Scores replace the first-stage scores; the first-stage score stays in
    `hit.metadata["first_stage_score"]`."""

    def rerank(
        self,
        query: str | Query,
        candidates: Sequence[Hit] | Sequence[Document],
        k: int | None = None,
    ) -> list[Hit]:
        """Rescore `candidates` for `query` and return them reranked (top `k` when given)."""
        ...

    def rerank_run(
        self,
        run: Mapping[str, Sequence[Hit]],
        queries: Mapping[str, Query],
        corpus: DocStore,
        k: int | None = None,
    ) -> dict[str, list[Hit]]:
        """Rerank the top-`k` hits of every query of a run, reading passages from `corpus`."""
        ...
