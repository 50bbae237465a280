"""kirag in LlamaIndex: `KiragRetriever` (any kirag index folder or loaded retriever, the KiRAG
pipeline included) and `KiragRerank` (any kirag reranker as a node postprocessor).

Scores and reasoning travel in node metadata but are listed in `excluded_llm_metadata_keys` and
`excluded_embed_metadata_keys`, so LlamaIndex never renders them into a prompt or an embedding.
A KiRAG pipeline's nodes carry the query's best chain (`chain`, excluded: a per-query trace,
the same on every node) and the chain's triples read from that node's document (`chain_facts`,
kept in the LLM text: they are that passage's facts the chain reasoned over, and the KiRAG
reader's own context shows the chain to its LLM too)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kirag.core.optional import require

require("llama_index.core", "llama-index")

from llama_index.core.bridge.pydantic import Field, PrivateAttr  # noqa: E402
from llama_index.core.callbacks import CallbackManager  # noqa: E402
from llama_index.core.postprocessor.types import BaseNodePostprocessor  # noqa: E402
from llama_index.core.retrievers import BaseRetriever  # noqa: E402
from llama_index.core.schema import (  # noqa: E402
    MetadataMode,
    NodeWithScore,
    QueryBundle,
    TextNode,
)

from kirag.errors import KiragError  # noqa: E402
from kirag.integrations.common import (  # noqa: E402
    SCORE_KEYS,
    arerank_hits,
    asearch_hits,
    hit_record,
    open_retriever,
    record_hit,
    rescored_metadata,
    search_hits,
)
from kirag.types import FIRST_STAGE_RANK, Hit  # noqa: E402

__all__ = ["KiragRerank", "KiragRetriever", "hits_to_nodes"]


def _hidden_keys(metadata: dict[str, Any], extra: Sequence[str] = ()) -> list[str]:
    """The metadata keys that describe scoring, not the document: kept out of LLM/embed text."""
    return [key for key in metadata if key in SCORE_KEYS or key in extra]


def hits_to_nodes(hits: Sequence[Hit]) -> list[NodeWithScore]:
    """kirag Hits as LlamaIndex nodes: TextNode(id_=doc_id, text, metadata), score = hit score."""
    nodes = []
    for hit in hits:
        record = hit_record(hit)
        hidden = _hidden_keys(record.metadata)
        node = TextNode(
            id_=record.doc_id,
            text=record.text,
            metadata=record.metadata,
            excluded_llm_metadata_keys=hidden,
            excluded_embed_metadata_keys=hidden,
        )
        nodes.append(NodeWithScore(node=node, score=float(hit.score)))
    return nodes


class KiragRetriever(BaseRetriever):
    """A kirag retriever as a LlamaIndex retriever. `index=`: an index folder (bm25, dense, a
    triple index → KiRAG's ranking with its chain) or a list of folders fused with RRF;
    `retriever=`: a loaded kirag retriever or a `KiRAG` pipeline. `options` go to the loader."""

    def __init__(
        self,
        index: str | Path | Sequence[str | Path] | None = None,
        retriever: Any = None,
        similarity_top_k: int = 10,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
        **options: Any,
    ) -> None:
        if similarity_top_k < 1:
            raise KiragError("similarity_top_k must be >= 1")
        self.retriever = open_retriever(index, retriever, **options)
        self.similarity_top_k = similarity_top_k
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        """Top `similarity_top_k` nodes for the query."""
        hits = search_hits(self.retriever, query_bundle.query_str, self.similarity_top_k)
        return hits_to_nodes(hits)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        """`_retrieve` in a worker thread (the base class would run it on the event loop)."""
        hits = await asearch_hits(self.retriever, query_bundle.query_str, self.similarity_top_k)
        return hits_to_nodes(hits)


class KiragRerank(BaseNodePostprocessor):
    """Any kirag reranker (Rank1, cross-encoder...) as a node postprocessor: `reranker=` a loaded
    one, or `name`/`model`/options for `kirag.rerank.factory.load_reranker`. Keeps the `top_n`
    best; the node score is the reranker's, the incoming one moves to `retrieval_score`."""

    top_n: int | None = Field(default=None, description="nodes kept (all when None)")
    name: str = Field(default="rank1", description="kirag reranker name (load_reranker)")
    model: str | None = Field(default=None, description="model path, hub id or packaged name")
    reranker_options: dict[str, Any] = Field(default_factory=dict)
    _reranker: Any = PrivateAttr(default=None)
    _given: bool = PrivateAttr(default=False)

    def __init__(
        self,
        reranker: Any = None,
        name: str = "rank1",
        model: str | None = None,
        top_n: int | None = None,
        options: dict[str, Any] | None = None,
        reranker_options: dict[str, Any] | None = None,
        **more_options: Any,
    ) -> None:
        # `options` as in the LangChain and Haystack adapters; from_dict passes reranker_options
        options = {**(reranker_options or {}), **(options or {}), **more_options}
        super().__init__(top_n=top_n, name=name, model=model, reranker_options=options)
        if reranker is not None and (model is not None or options):
            raise KiragError("give a loaded reranker= or model/options to load one, not both")
        self._given = reranker is not None
        if reranker is None:
            from kirag.rerank.factory import load_reranker

            reranker = load_reranker(name, model, **options)
        self._reranker = reranker

    def to_dict(self, **kwargs: Any) -> dict[str, Any]:
        """name, model, options and top_n (what `from_dict` rebuilds it from), never a model."""
        if self._given:
            raise KiragError(
                "this KiragRerank was made from a loaded reranker and can't be serialised; "
                "build it from name/model/options to save it"
            )
        return super().to_dict(**kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "KiragRerank"

    @property
    def reranker(self) -> Any:
        """The kirag reranker this postprocessor runs."""
        return self._reranker

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query, hits = self._inputs(nodes, query_bundle)
        if not hits:
            return []
        return self._outputs(nodes, self._reranker.rerank(query, hits, k=self.top_n))

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        """Reranks off the event loop, one model call at a time per process (kirag's arerank)."""
        query, hits = self._inputs(nodes, query_bundle)
        if not hits:
            return []
        return self._outputs(nodes, await arerank_hits(self._reranker, query, hits, self.top_n))

    @staticmethod
    def _inputs(
        nodes: Sequence[NodeWithScore], query_bundle: QueryBundle | None
    ) -> tuple[str, list[Hit]]:
        """The query text and the nodes as Hits (position = rank, incoming score kept)."""
        if query_bundle is None:
            raise KiragError(
                "KiragRerank needs the query (postprocess_nodes(nodes, query_str=...))"
            )
        hits = []
        for position, item in enumerate(nodes, 1):
            metadata = dict(item.node.metadata)
            if item.score is not None:
                metadata["score"] = item.score
            text = item.node.get_content(metadata_mode=MetadataMode.NONE)
            hits.append(record_hit(item.node.node_id, text, metadata, position))
        return query_bundle.query_str, hits

    @staticmethod
    def _outputs(nodes: Sequence[NodeWithScore], reranked: Sequence[Hit]) -> list[NodeWithScore]:
        """New nodes (inputs untouched) in the reranked order, scores and reasoning in metadata."""
        by_id = {item.node.node_id: item for item in nodes}
        out = []
        for hit in reranked:
            position = hit.metadata.get(FIRST_STAGE_RANK)
            original = nodes[position - 1] if position else by_id[hit.doc_id]
            node = original.node.model_copy(deep=True)
            node.metadata["retrieval_score"] = original.score
            node.metadata.update(hit.metadata)
            rescored_metadata(node.metadata, hit)  # a kirag retriever's node
            hidden = _hidden_keys(node.metadata, list(hit.metadata))
            node.excluded_llm_metadata_keys = _merged(node.excluded_llm_metadata_keys, hidden)
            node.excluded_embed_metadata_keys = _merged(node.excluded_embed_metadata_keys, hidden)
            out.append(NodeWithScore(node=node, score=float(hit.score)))
        return out


def _merged(keys: Sequence[str], more: Sequence[str]) -> list[str]:
    """`keys` then the `more` not in it, in order."""
    return [*keys, *(k for k in more if k not in keys)]
