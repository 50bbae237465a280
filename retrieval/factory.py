"""Load any index folder as a retriever: the manifest's "kind" picks the class."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

from kirag.retrieval.base import Retriever
from kirag.retrieval.index_base import read_manifest

from kirag.errors import IndexLoadError

# index kind -> "module:Class" (a class taking the index folder as first argument)
RETRIEVERS = {
    "bm25": "kirag.retrieval.bm25:BM25Retriever",
    "dense": "kirag.retrieval.dense:DenseRetriever",
    "triples": "kirag.pipeline:KiRAGRetriever",
}


def load_retriever(index_dir: str | Path, **options) -> Retriever:
    """The retriever for an index folder built by `kirag index` (bm25, dense or triples)."""
    kind = read_manifest(index_dir).get("kind")
    if kind not in RETRIEVERS:
        raise IndexLoadError(
            f"{index_dir}: unknown index kind {kind!r}; known: {', '.join(RETRIEVERS)}"
        )
    module_name, class_name = RETRIEVERS[kind].split(":")
    return getattr(importlib.import_module(module_name), class_name)(index_dir, **options)


def load_retrievers(index_dirs: Sequence[str | Path], fusion: str = "rrf", **options) -> Retriever:
    """One retriever for one folder; a HybridRetriever fusing several."""
    retrievers = [load_retriever(path) for path in index_dirs]
    if len(retrievers) == 1:
        return retrievers[0]
    from kirag.retrieval.hybrid import HybridRetriever

    return HybridRetriever(retrievers, fusion=fusion, **options)
