"""Small real indexes over the bundled Wikipedia slice, for the RAG-framework adapter tests."""

from __future__ import annotations

from pathlib import Path

# a bundled bridge question whose two gold passages are in the slice (see test_kirag_pipeline.py)
BRIDGE = "In what year did the country whose coast the Portuguese explorer Diogo Cão reached in 1484 achieve independence?"
BRIDGE_GOLD = {"Economy_of_Angola#1", "Angola#1"}


def build_indexes(root: Path, documents, triples: Path) -> dict[str, Path]:
    """BM25 over the whole slice, dense (MiniLM) over its first 20 passages, and `triples`, the
    session's spaCy triple index of the slice (tests/conftest.py): folder paths by kind."""
    from kirag.retrieval.bm25 import BM25Retriever
    from kirag.retrieval.dense import DenseRetriever

    paths = {kind: root / kind for kind in ("bm25", "dense")}
    BM25Retriever.build(documents, paths["bm25"])
    DenseRetriever.build(documents[:20], paths["dense"], model="minilm")
    return paths | {"triples": triples}
