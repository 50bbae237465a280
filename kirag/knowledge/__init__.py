"""KiRAG's knowledge side: documents -> knowledge triples (LLM or spaCy extractors, a resumable
extraction cache) -> the triple index (FAISS triple vectors, entity graph, document indexes)."""
