"""kirag in LangChain (langchain-core only: `langchain.retrievers` moved to langchain_classic in
LangChain 1.x, so nothing here imports either):

- `KiragRetriever(BaseRetriever)`: any kirag index folder (bm25, dense, several fused, a triple
  index ranked by KiRAG's chains) or a loaded kirag retriever / KiRAG pipeline, as a retriever;
- `KiragRerank(BaseDocumentCompressor)`: any kirag reranker (Rank1, cross-encoder, fused) as a
  compressor, e.g. inside `ContextualCompressionRetriever`.

Both have a real async path: the work runs in a worker thread, one model call at a time per
process (kirag.core.concurrency)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kirag.core.optional import require

require("langchain_core", "langchain", "the LangChain adapter (kirag.integrations.langchain)")

from langchain_core.callbacks import (  # noqa: E402
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
    Callbacks,
)
from langchain_core.documents import BaseDocumentCompressor, Document  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from pydantic import ConfigDict, Field  # noqa: E402

from kirag.integrations.common import (  # noqa: E402
    arerank_hits,
    asearch_hits,
    hit_record,
    open_retriever,
    record_hit,
    search_hits,
)
from kirag.types import Hit  # noqa: E402

# keywords LangChain itself may pass on to a retriever's _get_relevant_documents
_LANGCHAIN_KWARGS = frozenset({"verbose"})


def to_document(hit: Hit) -> Document:
    """A kirag Hit as a LangChain Document: id = doc_id, metadata = doc_id, title, score, rank,
    the document's own metadata and what the ranking stages kept (a KiRAG chain included)."""
    record = hit_record(hit)
    return Document(page_content=record.text, id=record.doc_id, metadata=record.metadata)


class KiragRetriever(BaseRetriever):
    """A kirag retriever in LangChain. `index=`: an index folder or a list of them (fused with
    RRF); `retriever=`: a loaded kirag retriever or a `KiRAG` pipeline (whose documents carry the
    best chain in metadata, as a triple-index folder's do); `k`: documents per query, also per
    call (`invoke(query, k=3)`); `options`: passed to the index loader (e.g. `{"mode": "llm"}`
    for a triple index)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: str | Path | list[str | Path] | None = None
    retriever: Any = Field(default=None, exclude=True)
    k: int = Field(default=4, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)

    def __init__(
        self,
        *,
        index: str | Path | Sequence[str | Path] | None = None,
        retriever: Any = None,
        options: dict[str, Any] | None = None,
        **fields: Any,
    ):
        """Open the index folder(s) here, so a bad path fails at construction with kirag's
        one-line error (not wrapped in a pydantic validation error)."""
        if index is not None and not isinstance(index, str | Path):
            index = list(index)
        loaded = open_retriever(index=index, retriever=retriever, **(options or {}))
        super().__init__(index=index, retriever=loaded, options=options or {}, **fields)

    def _k(self, k: int | None, kwargs: dict[str, Any]) -> int:
        """The per-call `k` (else the retriever's); an unknown keyword is an error, not ignored."""
        unknown = sorted(set(kwargs) - _LANGCHAIN_KWARGS)
        if unknown:
            raise TypeError(f"KiragRetriever got unexpected keyword(s): {', '.join(unknown)}")
        k = self.k if k is None else k
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, not {k!r}")
        return k

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """The top-`k` documents of `query`."""
        return [to_document(h) for h in search_hits(self.retriever, query, self._k(k, kwargs))]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """The top-`k` documents of `query`, searched in a worker thread (off the event loop)."""
        hits = await asearch_hits(self.retriever, query, self._k(k, kwargs))
        return [to_document(h) for h in hits]


class KiragRerank(BaseDocumentCompressor):
    """A kirag reranker as a LangChain document compressor: `reranker=` a loaded one, or `name`
    + `model` (+ `options`) loaded with `kirag.rerank.load_reranker` ("rank1", "cross-encoder",
    "fused"). Returns new Documents, best first, top `top_n` (all with None); the inputs are
    untouched. Each keeps its id, text and metadata, with `relevance_score` (the reranker's
    score), `rank` (the new rank), `first_stage_score` / `first_stage_rank` (its incoming
    `score` and position) and the reranker's own fields (Rank1: `p_true`, `reasoning`,
    `fallback`, `thinking_tokens`; fused: `rerank_score`, `fusion`, `fusion_weight`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    reranker: Any = Field(default=None, exclude=True)
    name: str | None = None
    model: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    top_n: int | None = Field(default=3, ge=1)

    def __init__(self, *, reranker: Any = None, **fields: Any):
        """Load the reranker by name here when none is given (kirag's errors unwrapped)."""
        from kirag.errors import KiragError

        if reranker is None:
            from kirag.rerank.factory import load_reranker

            fields["name"] = fields.get("name") or "rank1"
            options = fields.get("options") or {}
            reranker = load_reranker(fields["name"], fields.get("model"), **options)
        elif any(fields.get(key) for key in ("name", "model", "options")):
            raise KiragError(
                "give reranker= (a loaded reranker) or name=/model=/options=, not both"
            )
        super().__init__(reranker=reranker, **fields)

    def _hits(self, documents: Sequence[Document]) -> list[Hit]:
        """The documents as Hits to rerank (position = first-stage rank)."""
        return [
            record_hit(d.id, d.page_content, d.metadata, position)
            for position, d in enumerate(documents, 1)
        ]

    def _documents(self, reranked: list[Hit], hits: list[Hit], documents) -> list[Document]:
        """New Documents for the reranked hits (matched to the inputs by their kirag document,
        so duplicate or missing ids are no problem)."""
        source = {id(h.document): d for h, d in zip(hits, documents, strict=True)}
        out = []
        for hit in reranked:
            original = source[id(hit.document)]
            metadata = {
                **original.metadata,
                **hit.metadata,
                "relevance_score": float(hit.score),
                "rank": hit.rank,
            }
            out.append(
                Document(page_content=original.page_content, id=original.id, metadata=metadata)
            )
        return out

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """`documents` reranked for `query`, top `top_n`."""
        if not documents:
            return []
        hits = self._hits(documents)
        reranked = self.reranker.rerank(query, hits, k=self.top_n)
        return self._documents(reranked, hits, documents)

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """`compress_documents` in a worker thread (one model call at a time per process)."""
        if not documents:
            return []
        hits = self._hits(documents)
        reranked = await arerank_hits(self.reranker, query, hits, self.top_n)
        return self._documents(reranked, hits, documents)
