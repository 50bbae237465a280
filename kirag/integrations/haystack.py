"""kirag in Haystack: `KiragRetriever` (any kirag index folder, the KiRAG pipeline included) and
`KiragRanker` (any kirag reranker) as components.

Components load lazily in `warm_up` (a Pipeline calls it before running) and serialise to what
rebuilds them — index folder(s), `top_k`, reranker name, model and options — never a loaded
object: a component made from a loaded retriever or reranker refuses `to_dict`.

Loading a saved pipeline: Haystack 3.x imports only allow-listed modules when deserialising
(`haystack`, `haystack_integrations`, `haystack_experimental`, `builtins`, `typing`,
`collections`), so allow kirag's: `Pipeline.loads(yaml, allowed_modules=["kirag.*"])`, or
process-wide `haystack.core.serialization.allow_deserialization_module("kirag.*")` or the
environment variable `HAYSTACK_DESERIALIZATION_ALLOWLIST="kirag.*"` (comma-separated patterns).

A triple index folder (or `retriever=` a `KiRAG`) retrieves with KiRAG's chains: each document's
meta has the query's best chain (`chain`) and the chain's triples from that document
(`chain_facts`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kirag.core.optional import require

require("haystack", "haystack")

from haystack import Document, component, default_from_dict, default_to_dict  # noqa: E402
from haystack.utils.filters import document_matches_filter  # noqa: E402

from kirag.errors import KiragError  # noqa: E402
from kirag.integrations.common import (  # noqa: E402
    arerank_hits,
    asearch_hits,
    hit_record,
    open_retriever,
    record_hit,
    rescored_metadata,
    search_hits,
)
from kirag.types import FIRST_STAGE_RANK, Hit  # noqa: E402

__all__ = ["KiragRanker", "KiragRetriever", "hits_to_documents"]


def hits_to_documents(hits: Sequence[Hit]) -> list[Document]:
    """kirag Hits as Haystack Documents: id = doc_id, content = text, meta, score."""
    documents = []
    for hit in hits:
        record = hit_record(hit)
        documents.append(
            Document(
                id=record.doc_id, content=record.text, meta=record.metadata, score=float(hit.score)
            )
        )
    return documents


def _not_serialisable(component_name: str, what: str) -> KiragError:
    return KiragError(
        f"this {component_name} was made from a loaded {what} and can't be serialised; "
        f"build it from {'index=' if what == 'retriever' else 'name/model/options'} to save it"
    )


def _index_paths(index: str | Path | Sequence[str | Path] | None) -> str | list[str] | None:
    """Index folder(s) as plain strings (what YAML can hold)."""
    if index is None or isinstance(index, str | Path):
        return None if index is None else str(index)
    return [str(path) for path in index]


def _check_top_k(top_k: int | None) -> None:
    if top_k is not None and top_k < 1:
        raise KiragError(f"top_k must be >= 1 (got {top_k})")


@component
class KiragRetriever:
    """Documents for a query from kirag index folder(s): `index` = one folder (bm25, dense, a
    triple index → KiRAG) or several (fused with RRF); `options` go to the loader (e.g. KiRAG's
    `mode`). `retriever=` takes a loaded kirag retriever or `KiRAG` (then not serialisable).
    Filters (Haystack's syntax) apply to the top `filter_depth` results."""

    def __init__(
        self,
        index: str | list[str] | None = None,
        top_k: int = 10,
        options: dict[str, Any] | None = None,
        filter_depth: int = 100,
        retriever: Any = None,
    ) -> None:
        if (index is None) == (retriever is None):
            raise KiragError(
                "give exactly one of index= (an index folder or a list) and retriever="
            )
        _check_top_k(top_k)
        self.index = _index_paths(index)
        self.top_k = top_k
        self.options = dict(options or {})
        self.filter_depth = filter_depth
        self._given = retriever is not None
        self._retriever = retriever

    def warm_up(self) -> None:
        """Open the index (once)."""
        if self._retriever is None:
            self._retriever = open_retriever(index=self.index, **self.options)

    def to_dict(self) -> dict[str, Any]:
        if self._given:
            raise _not_serialisable("KiragRetriever", "retriever")
        return default_to_dict(
            self,
            index=self.index,
            top_k=self.top_k,
            options=self.options,
            filter_depth=self.filter_depth,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KiragRetriever:
        return default_from_dict(cls, data)

    def _depth(self, filters: dict[str, Any] | None, top_k: int) -> int:
        return max(top_k, self.filter_depth) if filters else top_k

    @staticmethod
    def _finish(hits: list[Hit], filters: dict[str, Any] | None, top_k: int) -> dict:
        documents = hits_to_documents(hits)
        if filters:
            documents = [d for d in documents if document_matches_filter(filters, d)]
        return {"documents": documents[:top_k]}

    @component.output_types(documents=list[Document])
    def run(
        self, query: str, filters: dict[str, Any] | None = None, top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """The top `top_k` documents for `query` (matching `filters` when given)."""
        _check_top_k(top_k)
        top_k = top_k or self.top_k
        self.warm_up()
        hits = search_hits(self._retriever, query, self._depth(filters, top_k))
        return self._finish(hits, filters, top_k)

    @component.output_types(documents=list[Document])
    async def run_async(
        self, query: str, filters: dict[str, Any] | None = None, top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """`run` with the search in a worker thread, off the event loop."""
        _check_top_k(top_k)
        top_k = top_k or self.top_k
        self.warm_up()
        hits = await asearch_hits(self._retriever, query, self._depth(filters, top_k))
        return self._finish(hits, filters, top_k)


@component
class KiragRanker:
    """Documents reranked by a kirag reranker: `name`/`model`/`options` for
    `kirag.rerank.factory.load_reranker` (loaded in `warm_up`), or `reranker=` a loaded one (then
    not serialisable). New Documents: the reranker's score, the incoming one in
    `meta["retrieval_score"]`, and the reranker's details (Rank1: `p_true`, `reasoning`,
    `fallback`, `thinking_tokens`, `first_stage_score`, `first_stage_rank`) in meta."""

    def __init__(
        self,
        name: str = "rank1",
        model: str | None = None,
        top_k: int | None = None,
        options: dict[str, Any] | None = None,
        reranker: Any = None,
    ) -> None:
        if reranker is not None and (model is not None or options):
            raise KiragError("give a loaded reranker= or model/options to load one, not both")
        _check_top_k(top_k)
        self.name = name
        self.model = model
        self.top_k = top_k
        self.options = dict(options or {})
        self._given = reranker is not None
        self._reranker = reranker

    def warm_up(self) -> None:
        """Load the reranker and its model (once; engines are shared within the process)."""
        if self._reranker is None:
            from kirag.rerank.factory import load_reranker

            self._reranker = load_reranker(self.name, self.model, **self.options)

    def to_dict(self) -> dict[str, Any]:
        if self._given:
            raise _not_serialisable("KiragRanker", "reranker")
        return default_to_dict(
            self, name=self.name, model=self.model, top_k=self.top_k, options=self.options
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KiragRanker:
        return default_from_dict(cls, data)

    @staticmethod
    def _hits(documents: Sequence[Document]) -> list[Hit]:
        hits = []
        for position, document in enumerate(documents, 1):
            metadata = dict(document.meta)
            if document.score is not None:
                metadata["score"] = document.score
            hits.append(record_hit(document.id, document.content or "", metadata, position))
        return hits

    @staticmethod
    def _documents(documents: Sequence[Document], reranked: Sequence[Hit]) -> dict:
        out = []
        for hit in reranked:
            original = documents[hit.metadata[FIRST_STAGE_RANK] - 1]
            meta = {**original.meta, "retrieval_score": original.score, **hit.metadata}
            rescored_metadata(meta, hit)  # a kirag retriever's document
            out.append(dataclasses.replace(original, meta=meta, score=float(hit.score)))
        return {"documents": out}

    @component.output_types(documents=list[Document])
    def run(
        self, query: str, documents: list[Document], top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """`documents` reranked for `query`, the best `top_k` kept (inputs untouched)."""
        _check_top_k(top_k)
        if not documents:
            return {"documents": []}
        self.warm_up()
        reranked = self._reranker.rerank(query, self._hits(documents), k=top_k or self.top_k)
        return self._documents(documents, reranked)

    @component.output_types(documents=list[Document])
    async def run_async(
        self, query: str, documents: list[Document], top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """`run` with the model off the event loop, one model call at a time per process."""
        _check_top_k(top_k)
        if not documents:
            return {"documents": []}
        self.warm_up()
        hits = self._hits(documents)
        reranked = await arerank_hits(self._reranker, query, hits, top_k or self.top_k)
        return self._documents(documents, reranked)
