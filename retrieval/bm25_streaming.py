"""bm25s weights built with memory that stays flat in corpus size.

Pass 1 counts the corpus shard by shard (`shard_statistics`) and spills each shard's postings to
disk, renumbered to the global vocabulary (first-seen order over the shards in corpus order: the
ids one pass over the whole corpus gives) and sorted by term; it keeps only the vocabulary, the
document frequencies and the document lengths. Pass 2 weights the postings one range of terms at
a time (a few million postings), reading each shard's slice of that range back from disk, and
appends the weights to the bm25s `.npy` files. So the build holds one chunk of postings, not all
of them, and the weights are byte for byte the ones one in-memory pass computes (weights are
elementwise; the global statistics are exact sums)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from kirag.retrieval.bm25_scoring import (
    CollectionWeights,
    ShardStatistics,
    collection_weights,
    posting_weights,
)

from kirag.core.progress import progress
from kirag.io.npy_files import NpyAppender

CHUNK_POSTINGS = 1 << 23  # postings weighted at a time in pass 2 (~200 MB of working arrays)
POSTING_ARRAYS = ("terms", "docs", "tf")  # int32 each, one raw file per shard and array


class PostingSpill:
    """Pass 1: `add` each shard in corpus order; pass 2: `write_csc` the weighted term-major
    (CSC in bm25s's naming) arrays. The spill folder is removed by `write_csc`."""

    def __init__(self, folder: Path, chunk_postings: int = CHUNK_POSTINGS):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.chunk_postings = max(1, int(chunk_postings))
        self.vocab: dict[str, int] = {}
        self.df = np.zeros(0, dtype=np.int64)
        self.lengths: list[np.ndarray] = []
        self.num_docs = 0
        self.shards = 0

    def add(self, shard: ShardStatistics) -> None:
        """Renumber one shard to the global vocabulary, sort it by term and write it to disk."""
        terms, docs, tf, lengths = shard.postings
        if len(docs) and int(docs.min()) < self.num_docs:
            raise ValueError(
                f"shard {self.shards} starts at position {int(docs.min())}, before the end of the "
                f"previous shards ({self.num_docs}): shards must be added in corpus order"
            )
        vocab = self.vocab
        mapping = np.fromiter(
            (vocab.setdefault(t, len(vocab)) for t in shard.vocabulary),
            dtype=np.int32,
            count=len(shard.vocabulary),
        )
        global_terms = mapping[terms] if len(terms) else terms.astype(np.int32)
        order = np.argsort(global_terms, kind="stable")  # keeps documents ascending in a term
        if len(self.df) < len(vocab):
            self.df = np.concatenate([self.df, np.zeros(len(vocab) - len(self.df), np.int64)])
        per_term = np.bincount(global_terms, minlength=len(vocab))
        self.df += per_term
        present = np.flatnonzero(per_term)
        prefix = self.folder / f"{self.shards:06d}"
        for name, values in zip(POSTING_ARRAYS, (global_terms, docs, tf), strict=True):
            np.asarray(values, dtype=np.int32)[order].tofile(f"{prefix}.{name}")
        # the shard's terms and their posting counts: where each term range starts in its files
        np.save(f"{prefix}.present.npy", np.stack([present, per_term[present]]).astype(np.int64))
        self.lengths.append(np.asarray(lengths, dtype=np.int32))
        self.num_docs += len(lengths)
        self.shards += 1

    def write_csc(
        self, folder: Path, k1: float, b: float, length_norm: str
    ) -> tuple[CollectionWeights, int]:
        """Weight every posting with the global statistics and write bm25s's data, indices and
        indptr `.npy` files into `folder`, one term range at a time. Returns the statistics
        and the number of postings."""
        lengths = np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.int32)
        self.lengths = []
        weights = collection_weights(self.df, lengths, k1=k1, b=b, length_norm=length_norm)
        del lengths
        indptr = np.zeros(len(self.df) + 1, dtype=np.int64)
        np.cumsum(self.df, out=indptr[1:])
        total = int(indptr[-1])
        bounds = self._term_bounds(indptr)
        starts = self._shard_starts(bounds)
        with (
            NpyAppender(folder / "data.csc.index.npy", np.float32, (total,)) as data,
            NpyAppender(folder / "indices.csc.index.npy", np.int32, (total,)) as indices,
        ):
            chunks = progress(range(len(bounds) - 1), total=len(bounds) - 1, desc="weighting")
            for chunk in chunks:
                terms, docs, tf = self._read_chunk(starts[:, chunk], starts[:, chunk + 1])
                order = np.argsort(terms, kind="stable")  # term-major; shard then doc order
                terms, docs, tf = terms[order], docs[order], tf[order]
                data.append(posting_weights(terms, docs, tf, weights))
                indices.append(docs)
        np.save(
            folder / "indptr.csc.index.npy", indptr.astype(np.int32) if total < 2**31 else indptr
        )
        shutil.rmtree(self.folder)
        return weights, total

    def _term_bounds(self, indptr: np.ndarray) -> list[int]:
        """Term ids cutting the vocabulary into ranges of at most `chunk_postings` postings (a
        term with more postings gets a range of its own)."""
        bounds, term, vocabulary = [0], 0, len(indptr) - 1
        while term < vocabulary:
            end = int(np.searchsorted(indptr, indptr[term] + self.chunk_postings, side="right")) - 1
            term = min(max(end, term + 1), vocabulary)
            bounds.append(term)
        if len(bounds) == 1:
            bounds.append(0)  # an empty vocabulary: one empty chunk
        return bounds

    def _shard_starts(self, bounds: list[int]) -> np.ndarray:
        """starts[s, c]: where term range c begins in shard s's files (in postings)."""
        starts = np.zeros((self.shards, len(bounds)), dtype=np.int64)
        for shard in range(self.shards):
            present, counts = np.load(self.folder / f"{shard:06d}.present.npy")
            before = np.concatenate([[0], np.cumsum(counts)])
            starts[shard] = before[np.searchsorted(present, bounds, side="left")]
        return starts

    def _read_chunk(self, begin: np.ndarray, end: np.ndarray) -> list[np.ndarray]:
        """The postings of one term range, shard after shard, read from the spill files."""
        columns: list[list[np.ndarray]] = [[], [], []]
        for shard in range(self.shards):
            count = int(end[shard] - begin[shard])
            if count == 0:
                continue
            for column, name in zip(columns, POSTING_ARRAYS, strict=True):
                path = self.folder / f"{shard:06d}.{name}"
                offset = int(begin[shard]) * 4
                column.append(np.fromfile(path, dtype=np.int32, count=count, offset=offset))
        return [np.concatenate(c) if c else np.zeros(0, np.int32) for c in columns]


def write_bm25s_metadata(folder: Path, vocab: dict[str, int], k1: float, b: float, num_docs: int):
    """bm25s's vocabulary and parameter files, as `bm25s.BM25.save` writes them for a
    method="lucene" numpy index, so `bm25s.BM25.load` opens the folder."""
    import bm25s

    model = bm25s.BM25(k1=k1, b=b, method="lucene", backend="numpy")
    (folder / "vocab.index.json").write_text(json.dumps(vocab, ensure_ascii=False), "utf-8")
    params = {
        "k1": model.k1,
        "b": model.b,
        "delta": model.delta,
        "method": model.method,
        "idf_method": model.idf_method,
        "dtype": model.dtype,
        "int_dtype": model.int_dtype,
        "num_docs": num_docs,
        "version": bm25s.__version__,
        "backend": model.backend,
    }
    (folder / "params.index.json").write_text(json.dumps(params, indent=4), "utf-8")
