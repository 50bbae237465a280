"""First-stage retrievers (BM25, dense, hybrid) and their persistent indexes (kirag.retrieval).

Heavy backends import on first use: `from kirag.retrieval import BM25Retriever` is cheap.
"""

from __future__ import annotations

from kirag.retrieval.base import Retriever

from kirag.core.lazy import lazy_exports

_LAZY = {
    "BM25Retriever": "kirag.retrieval.bm25",
    "DenseRetriever": "kirag.retrieval.dense",
    "Encoder": "kirag.retrieval.dense",
    "HybridRetriever": "kirag.retrieval.hybrid",
    "reciprocal_rank_fusion": "kirag.retrieval.fusion",
    "linear_fusion": "kirag.retrieval.fusion",
    "load_retriever": "kirag.retrieval.factory",
    "register_retriever": "kirag.retrieval.factory",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = ["Retriever", *_LAZY]
