"""First-stage retrievers (BM25, dense, hybrid) and their persistent indexes (kirag.retrieval)."""

from kirag.retrieval.base import Retriever

__all__ = ["Retriever"]
