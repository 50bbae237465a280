"""First-stage retrievers (BM25, dense, hybrid) and their persistent indexes (kirag.retrieval).

Heavy backends import on first use: `from kirag.retrieval import BM25Retriever` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from kirag.retrieval.base import Retriever

_LAZY = {
    "BM25Retriever": "kirag.retrieval.bm25",
    "DenseRetriever": "kirag.retrieval.dense",
    "Encoder": "kirag.retrieval.dense",
    "HybridRetriever": "kirag.retrieval.hybrid",
    "reciprocal_rank_fusion": "kirag.retrieval.hybrid",
    "linear_fusion": "kirag.retrieval.hybrid",
    "load_retriever": "kirag.retrieval.factory",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kirag.retrieval' has no attribute {name!r}")


__all__ = ["Retriever", *_LAZY]
