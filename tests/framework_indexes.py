"""Small real indexes over the bundled Wikipedia slice, for the RAG-framework adapter tests."""

from __future__ import annotations

from pathlib import Path

# a bundled bridge question whose two gold passages are in the slice (see test_kirag_pipeline.py)
BRIDGE = "In what year did the country whose coast the Portuguese explorer Diogo Cão reached in 1484 achieve independence?"
BRIDGE_GOLD = {"Economy_of_Angola#1", "Angola#1"}
# the triple index holds the Angola articles and one unrelated one
TRIPLE_ARTICLES = ("Angola", "Economy_of_Angola", "Anarchism")


def build_indexes(root: Path, documents) -> dict[str, Path]:
    """BM25 over the whole slice, dense (MiniLM) over its first 20 passages, a spaCy triple
    index over TRIPLE_ARTICLES: folder paths by kind."""
    from kirag.retrieval.bm25 import BM25Retriever
    from kirag.retrieval.dense import DenseRetriever

    from kirag.knowledge.triple_index import build_from_corpus

    paths = {kind: root / kind for kind in ("bm25", "dense", "triples")}
    BM25Retriever.build(documents, paths["bm25"])
    DenseRetriever.build(documents[:20], paths["dense"], model="minilm")
    chosen = [d for d in documents if d.id.split("#")[0] in TRIPLE_ARTICLES]
    build_from_corpus(chosen, paths["triples"], extractor="spacy", encoder="minilm")
    return paths
