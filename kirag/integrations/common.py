"""What every framework adapter shares: opening a retriever from index folders or taking a loaded
one, and the conversion between kirag Hits and a framework document's (id, text, metadata)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kirag.errors import KiragError
from kirag.rerank.records import EXPLANATION_KEYS
from kirag.types import Document, Hit

# metadata keys a KiRAG pipeline adds to each document (see chain_hits)
CHAIN_KEY = "chain"  # the best chain of the query, "<h; r; t>" strings: a trace, kept from the LLM
CHAIN_FACTS_KEY = "chain_facts"  # the chain's triples read from this document: evidence for the LLM

# metadata keys that describe scoring, never the document: kept out of LLM/embedding text
SCORE_KEYS = (
    "score",
    "rank",
    "relevance_score",
    "retrieval_score",
    *EXPLANATION_KEYS,  # the first stage's score and rank, Rank1's judgement
    "scores",
    CHAIN_KEY,
)


def open_retriever(
    index: str | Path | Sequence[str | Path] | None = None, retriever=None, **options
):
    """A loaded kirag retriever: `retriever` as given, or the index folder(s) `index` opened with
    `load_retrievers` (several folders are fused with RRF; a triple index ranks by KiRAG's chains)."""
    if (index is None) == (retriever is None):
        raise KiragError("give exactly one of index= (an index folder or a list) and retriever=")
    if retriever is not None:
        return retriever
    from kirag.retrieval.factory import load_retrievers

    folders = [index] if isinstance(index, str | Path) else list(index)
    if len(folders) == 1:  # the options are the retriever's own (e.g. KiRAG's mode), not fusion's
        from kirag.retrieval.factory import load_retriever

        return load_retriever(folders[0], **options)
    return load_retrievers(folders, **options)


def with_texts(retriever, hits: list[Hit]) -> list[Hit]:
    """`hits` with their documents attached (from the retriever's document store when missing)."""
    missing = [h for h in hits if h.document is None]
    docstore = getattr(retriever, "docstore", None)
    if missing and docstore is not None:
        docstore.attach(missing)
    return hits


def kirag_pipeline(retriever):
    """The KiRAG pipeline behind `retriever` (a `KiRAG`, or the `KiRAGRetriever` a triple index
    folder opens as), else None: its searches can return the reasoning chains too."""
    from kirag.rag.pipeline import KiRAG, KiRAGRetriever

    if isinstance(retriever, KiRAG):
        return retriever
    if isinstance(retriever, KiRAGRetriever):
        return retriever.kirag
    return None


def chain_hits(result) -> list[Hit]:
    """A KiRAG ChainResult's ranked hits, each with the best chain (`chain`) and the chain's
    triples taken from that document (`chain_facts`, absent when none) in its metadata."""
    from kirag.rag.records import chain_steps

    chain = result.best_chain
    steps = chain_steps(chain) if chain is not None else []
    texts = [s.triple for s in steps]
    out = []
    for hit in result.hits:
        facts = ". ".join(s.triple for s in steps if s.doc_id == hit.doc_id)
        metadata = {**hit.metadata, CHAIN_KEY: texts}
        if facts:
            metadata[CHAIN_FACTS_KEY] = facts
        out.append(Hit(hit.doc_id, hit.score, hit.rank, hit.document, metadata))
    return out


def search_hits(retriever, query: str, k: int) -> list[Hit]:
    """Top-`k` hits of `query` with their documents attached; a KiRAG pipeline's carry its chain."""
    pipeline = kirag_pipeline(retriever)
    if pipeline is not None:
        hits = chain_hits(pipeline.retrieve(query, k=k)) if query.strip() else []
        return with_texts(pipeline.index, hits)  # the triple index holds the document store
    return with_texts(retriever, retriever.search(query, k))


async def asearch_hits(retriever, query: str, k: int) -> list[Hit]:
    """`search_hits` off the event loop; one model call at a time when the search runs a model."""
    from kirag.core.concurrency import off_loop

    uses_model = kirag_pipeline(retriever) is not None or getattr(retriever, "runs_model", True)
    return await off_loop(search_hits, retriever, query, k, uses_model=uses_model)


async def arerank_hits(reranker, query: str, hits: list[Hit], k: int | None) -> list[Hit]:
    """`reranker.rerank` off the event loop under the model lock: kirag rerankers' own `arerank`,
    any other reranker through `off_loop`."""
    from kirag.core.concurrency import off_loop

    arerank = getattr(reranker, "arerank", None)
    if arerank is not None:
        return await arerank(query, hits, k)
    return await off_loop(reranker.rerank, query, hits, k)


def rescored_metadata(metadata: dict[str, Any], hit: Hit) -> dict[str, Any]:
    """`metadata` with a kirag retriever's `score` / `rank` keys, where present, set to the
    reranked hit's (the first-stage ones stay in `first_stage_score` / `first_stage_rank`)."""
    for key, value in (("score", float(hit.score)), ("rank", hit.rank)):
        if key in metadata:
            metadata[key] = value
    return metadata


@dataclass(slots=True)
class FrameworkRecord:
    """A framework document in kirag's terms: id, page text and flat metadata."""

    doc_id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def hit_record(hit: Hit) -> FrameworkRecord:
    """A Hit as (id, text, metadata): metadata = doc_id, title, score, rank, the document's own
    metadata, then what the ranking stages kept (first-stage score, Rank1's reasoning...)."""
    document = hit.document
    metadata: dict[str, Any] = {"doc_id": hit.doc_id}
    if document is not None and document.title is not None:
        metadata["title"] = document.title
    metadata["score"] = float(hit.score)
    metadata["rank"] = int(hit.rank)
    if document is not None:
        metadata.update(document.metadata)
    metadata.update(hit.metadata)
    text = document.text if document is not None else ""
    return FrameworkRecord(hit.doc_id, text, metadata)


def record_hit(doc_id: str | None, text: str, metadata: Mapping[str, Any], position: int) -> Hit:
    """A framework document as a Hit to rerank: the title from metadata (so Rank1 reads
    "{title} {text}" as for indexed passages), rank = its position, the incoming score kept."""
    metadata = dict(metadata)
    doc_id = doc_id or metadata.get("doc_id") or f"doc{position}"
    score = metadata.get("score", 0.0)
    document = Document(
        str(doc_id),
        text,
        metadata.get("title"),
        {k: v for k, v in metadata.items() if k not in (*SCORE_KEYS, "doc_id", "title")},
    )
    return Hit(
        str(doc_id), float(score) if isinstance(score, int | float) else 0.0, position, document
    )
