"""The retriever seam: anything with `search` and `batch_search` returning ranked Hits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from kirag.types import Hit, Query


@runtime_checkable
class Retriever(Protocol):
    """pyserini-shaped: `search(q, k)` and `batch_search(queries, k, threads)`."""

    def search(self, query: str | Query, k: int = 10) -> list[Hit]:
        """The top-`k` hits for one query, rank 1 first."""
        ...

    def batch_search(
        self, queries: Sequence[Query] | Mapping[str, str], k: int = 10, threads: int = 1
    ) -> dict[str, list[Hit]]:
        """Top-`k` hits for many queries, keyed by query id."""
        ...
