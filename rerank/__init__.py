"""Rerankers: the Rank1-style reasoning reranker and cross-encoders (kirag.rerank)."""

from kirag.rerank.base import Reranker

__all__ = ["Reranker"]
