"""kirag: retrieval, Rank1-style reasoning reranking and knowledge-triple iterative RAG.

The light names (types, readers, model resolution) import at once; the heavy components
(retrievers, rerankers, engines, KiRAG) are imported on first use, so `import kirag` is fast.
"""

from __future__ import annotations

from kirag import _startup  # noqa: F401  (first: the `kirag` command's Ctrl-C while importing)
from kirag.core.lazy import lazy_exports

__version__ = "0.1.0"

from kirag.errors import InputError, KiragError, MissingExtraError, ModelNotFoundError
from kirag.io.corpus import read_corpus
from kirag.io.qrels import read_qrels
from kirag.io.topics import read_topics
from kirag.models import resolve_model
from kirag.types import Document, Hit, Query

# public name -> module that defines it (imported lazily)
_LAZY: dict[str, str] = {
    "DocStore": "kirag.io.docstore",
    "BM25Retriever": "kirag.retrieval.bm25",
    "DenseRetriever": "kirag.retrieval.dense",
    "HybridRetriever": "kirag.retrieval.hybrid",
    "load_retriever": "kirag.retrieval.factory",
    "load_engine": "kirag.llm.factory",
    "Rank1Reranker": "kirag.rerank.rank1",
    "CrossEncoderReranker": "kirag.rerank.cross_encoder",
    "load_reranker": "kirag.rerank.factory",
    "KiRAG": "kirag.rag.pipeline",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "Document",
    "Hit",
    "InputError",
    "KiragError",
    "MissingExtraError",
    "ModelNotFoundError",
    "Query",
    "__version__",
    "read_corpus",
    "read_qrels",
    "read_topics",
    "resolve_model",
    *_LAZY,
]
