"""Streaming readers for corpora, topics and qrels, and the SQLite document store."""

from kirag.io.corpus import CorpusReader, bundled_corpus_path, read_corpus, resolve_corpus_path
from kirag.io.lines import ReadReport
from kirag.io.qrels import Qrels, read_qrels
from kirag.io.topics import read_topics

__all__ = [
    "CorpusReader",
    "Qrels",
    "ReadReport",
    "bundled_corpus_path",
    "read_corpus",
    "read_qrels",
    "read_topics",
    "resolve_corpus_path",
]
