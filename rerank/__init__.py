"""Rerankers: the Rank1-style reasoning reranker and cross-encoders (kirag.rerank).

Heavy backends import on first use: `from kirag.rerank import Rank1Reranker` is cheap.
"""

from __future__ import annotations

from kirag.rerank.base import Reranker

from kirag.core.lazy import lazy_exports

_LAZY = {
    "Rank1Reranker": "kirag.rerank.rank1",
    "Rank1Score": "kirag.rerank.rank1",
    "Rank1Judgement": "kirag.rerank.records",
    "CrossEncoderReranker": "kirag.rerank.cross_encoder",
    "FusedReranker": "kirag.rerank.fused",
    "ScoreCache": "kirag.rerank.cache",
    "load_reranker": "kirag.rerank.factory",
    "register_reranker": "kirag.rerank.factory",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = ["Reranker", *_LAZY]
