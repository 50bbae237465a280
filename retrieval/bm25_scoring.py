"""BM25 weights computed as Lucene computes them, stored in bm25s's sparse layout, and a
vectorised top-k scorer over them.

Lucene (and so Anserini/pyserini) differs from textbook BM25 in three ways that move rankings:
document lengths are stored in one byte (`SmallFloat.intToByte4`, exact up to 24 terms, then 4
significant bits), `N` and `avgdl` count only documents that have at least one term, and all
arithmetic is float32 (`score = w - w / (1 + tf / (k1 * (1 - b + b * dl / avgdl)))`, no `k1 + 1`
factor). Reproducing them is what makes the bm25s backend's rankings match Lucene's.

The weight of every (term, document) pair is precomputed at index time (bm25s's "eager" idea),
so a query only adds up its terms' postings and keeps the best k (numba kernels in
bm25_kernels.py, compiled once per machine and cached).
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from kirag.core.interrupts import checkpoint, deferred_interrupts

LENGTH_NORMS = ("lucene", "exact")

# queries per native kernel call: Ctrl-C is honoured between calls, so keep one call short
KERNEL_QUERIES = 256


def _long_to_int4(i: int) -> int:
    """Lucene's SmallFloat.longToInt4: a float-like code with 4 significant bits."""
    bits = i.bit_length()
    if bits < 4:
        return i
    shift = bits - 4
    return ((i >> shift) & 0x07) | ((shift + 1) << 3)


def _int4_to_long(i: int) -> int:
    bits, shift = i & 0x07, (i >> 3) - 1
    return bits if shift == -1 else (bits | 0x08) << shift


_NUM_FREE_VALUES = 255 - _long_to_int4(2**31 - 1)


def byte4_to_int(code: int) -> int:
    """Lucene's SmallFloat.byte4ToInt: the document length a norm byte stands for."""
    if code < _NUM_FREE_VALUES:
        return code
    return _NUM_FREE_VALUES + _int4_to_long(code - _NUM_FREE_VALUES)


# LENGTH_TABLE of Lucene's BM25Similarity: norm byte -> decoded length
LENGTH_TABLE = np.array([byte4_to_int(code) for code in range(256)], dtype=np.int64)


def int_to_byte4(lengths: np.ndarray) -> np.ndarray:
    """Lucene's SmallFloat.intToByte4 for an array of lengths (it rounds down, and the table is
    increasing, so the code is the last table entry <= the length)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return (np.searchsorted(LENGTH_TABLE, lengths, side="right") - 1).astype(np.uint8)


def block_postings(doc_terms: Sequence[Sequence[int]], offset: int = 0) -> tuple:
    """(term ids, document positions, term frequencies) of every distinct (term, document)
    pair of a block of documents (positions from `offset`), sorted by term then document, and
    the length (term count) of each document."""
    lengths = np.fromiter((len(t) for t in doc_terms), dtype=np.int64, count=len(doc_terms))
    if lengths.sum() == 0:
        empty = np.empty(0, dtype=np.int32)
        return empty, empty, empty, lengths
    terms = np.concatenate([np.asarray(t, dtype=np.int64) for t in doc_terms])
    docs = np.repeat(np.arange(len(doc_terms), dtype=np.int64), lengths)
    width = len(doc_terms)
    unique, tf = np.unique(terms * width + docs, return_counts=True)
    return (
        (unique // width).astype(np.int32),
        (unique % width + offset).astype(np.int32),
        tf.astype(np.int32),
        lengths,
    )


@dataclass
class ShardStatistics:
    """The term statistics of one shard of a corpus (a range of positions): its own vocabulary
    (terms in first-seen order) and postings over it, as `block_postings` gives them. A shard is
    counted without the others; `PostingSpill` (bm25_streaming.py) makes the collection's
    statistics from all of them."""

    vocabulary: list[str]
    postings: tuple  # (local term ids, document positions, term frequencies, lengths)


def shard_statistics(doc_terms: Iterable[Sequence[str]], offset: int) -> ShardStatistics:
    """Count one shard: each document's analysed terms, the shard starting at `offset`."""
    vocab: dict[str, int] = {}
    ids = []
    for terms in doc_terms:
        row = array("i")
        for term in terms:
            term_id = vocab.get(term)
            if term_id is None:
                term_id = vocab[term] = len(vocab)
            row.append(term_id)
        ids.append(row)
    return ShardStatistics(list(vocab), block_postings(ids, offset))


@dataclass
class CollectionWeights:
    """What a posting's weight needs from the whole collection: each term's idf and each
    document's inverse length factor, from Lucene's statistics (N and avgdl over documents that
    have a term)."""

    idf: np.ndarray  # float32, one per term id
    inverse: np.ndarray  # float32, one per document position: 1 / (k1 * (1 - b + b * dl / avgdl))
    doc_count: int  # documents with at least one term (Lucene's docCount)
    avgdl: float


def collection_weights(
    df: np.ndarray,
    lengths: np.ndarray,
    k1: float = 0.9,
    b: float = 0.4,
    length_norm: str = "lucene",
) -> CollectionWeights:
    """Lucene BM25 (boost 1) statistics from document frequencies and document lengths."""
    if length_norm not in LENGTH_NORMS:
        raise ValueError(f"unknown length_norm {length_norm!r}; known: {', '.join(LENGTH_NORMS)}")
    f32 = np.float32
    doc_count = int(np.count_nonzero(lengths))
    avgdl = f32(float(lengths.sum()) / max(doc_count, 1))
    df = np.asarray(df, dtype=np.float64)
    idf = np.log(1 + (doc_count - df + 0.5) / (df + 0.5)).astype(f32)
    k1, b = f32(k1), f32(b)
    if length_norm == "lucene":
        table = LENGTH_TABLE.astype(f32)
        inverse_by_norm = f32(1) / (k1 * ((f32(1) - b) + b * table / avgdl))
        inverse = inverse_by_norm[int_to_byte4(lengths)]
    else:
        inverse = f32(1) / (k1 * ((f32(1) - b) + b * np.asarray(lengths).astype(f32) / avgdl))
    return CollectionWeights(idf, inverse.astype(f32), doc_count, float(avgdl))


def posting_weights(
    term_ids: np.ndarray, doc_ids: np.ndarray, tf: np.ndarray, weights: CollectionWeights
) -> np.ndarray:
    """The float32 BM25 weight of each (term, document, tf) posting (Lucene's arithmetic:
    `w - w / (1 + tf * inverse)`, no `k1 + 1` factor). Elementwise, so any split of the
    postings gives the same bytes."""
    f32 = np.float32
    weight = weights.idf[term_ids]
    return (weight - weight / (f32(1) + tf.astype(f32) * weights.inverse[doc_ids])).astype(f32)


def id_ranks(positions_by_id: Iterable[int], num_docs: int) -> np.ndarray:
    """Position -> rank of the document's id in sorted order (the positions listed in id
    order): the tie-break key of Anserini, which sorts equal scores by collection docid."""
    order = np.fromiter(positions_by_id, dtype=np.int64, count=num_docs)
    ranks = np.empty(num_docs, dtype=np.int32)
    ranks[order] = np.arange(num_docs, dtype=np.int32)
    return ranks


class SparseScorer:
    """Top-k documents for bags of term ids over the precomputed weights (numba kernels,
    compiled once and cached on disk; one dense accumulator per thread, a k-heap per query).

    Equal scores are ordered by `tie_ranks[position]` (default: the position), so with
    `id_ranks` the top k are the ones Anserini returns: score descending, then docid. Scores are
    summed in float64 and rounded to float32, as Lucene's disjunctions do."""

    def __init__(
        self,
        data: np.ndarray,
        indices: np.ndarray,
        indptr: np.ndarray,
        num_docs: int,
        tie_ranks: np.ndarray | None = None,
    ):
        self.data = np.asarray(data)
        self.indices = np.asarray(indices)
        self.indptr = np.asarray(indptr)
        self.num_docs = int(num_docs)
        self.vocabulary_size = len(indptr) - 1
        self.tie_ranks = (
            np.arange(self.num_docs, dtype=np.int32) if tie_ranks is None else np.asarray(tie_ranks)
        )
        self._local = threading.local()

    def top_k(
        self, queries: Sequence[Sequence[int]], k: int, threads: int = 1
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(positions, float32 scores) of the best `k` documents for each query (term ids,
        repeats count as boosts), best first; documents matching no term are left out.
        Ctrl-C waits for the end of the native call (numba's cache load, one kernel call on one
        batch): raised inside it, it crashes the process or leaves numba's result broken."""
        from kirag.retrieval import bm25_kernels  # importing numba is Python: interruptible

        found: list[tuple[np.ndarray, np.ndarray]] = []
        for start in range(0, len(queries), KERNEL_QUERIES):
            with deferred_interrupts():
                checkpoint("search:kernel")
                batch = queries[start : start + KERNEL_QUERIES]
                found.extend(self._top_k(bm25_kernels, batch, k, threads))
        return found

    def _top_k(self, bm25_kernels, queries: Sequence[Sequence[int]], k: int, threads: int) -> list:
        if len(queries) == 1:  # the common single-query call, without the batch bookkeeping
            terms = np.array(queries[0], dtype=np.int64)
            pointers = np.array([0, len(terms)], dtype=np.int64)
        else:
            lengths = np.fromiter((len(q) for q in queries), dtype=np.int64, count=len(queries))
            pointers = np.zeros(len(queries) + 1, dtype=np.int64)
            np.cumsum(lengths, out=pointers[1:])
            terms = np.fromiter(
                (t for q in queries for t in q), dtype=np.int64, count=int(pointers[-1])
            )
        k = max(1, min(k, self.num_docs))
        args = (terms, pointers, self.data, self.indices, self.indptr, self.tie_ranks)
        if threads > 1 and len(queries) > 1:
            import numba

            chunks = min(threads, len(queries), numba.config.NUMBA_NUM_THREADS)
            previous = numba.get_num_threads()
            numba.set_num_threads(chunks)
            try:
                found = bm25_kernels.top_k_parallel(*args, self.num_docs, k, chunks)
            finally:
                numba.set_num_threads(previous)
        else:
            acc, touched = self._buffers()
            found = bm25_kernels.top_k_serial(*args, k, acc, touched)
        positions, scores, counts = found
        return [(positions[i, : counts[i]], scores[i, : counts[i]]) for i in range(len(queries))]

    def _buffers(self) -> tuple[np.ndarray, np.ndarray]:
        """This thread's accumulator and touched list (the kernels leave them zeroed)."""
        local = self._local
        if not hasattr(local, "acc"):
            local.acc = np.zeros(self.num_docs, dtype=np.float64)
            local.touched = np.empty(self.num_docs, dtype=np.int32)
        return local.acc, local.touched
