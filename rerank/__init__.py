"""Rerankers: the Rank1-style reasoning reranker and cross-encoders (kirag.rerank).

Heavy backends import on first use: `from kirag.rerank import Rank1Reranker` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from kirag.rerank.base import Reranker

_LAZY = {
    "Rank1Reranker": "kirag.rerank.rank1",
    "Rank1Score": "kirag.rerank.rank1",
    "CrossEncoderReranker": "kirag.rerank.cross_encoder",
    "ScoreCache": "kirag.rerank.cache",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kirag.rerank' has no attribute {name!r}")


__all__ = ["Reranker", *_LAZY]
