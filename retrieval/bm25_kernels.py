"""numba kernels of the bm25s backend's scorer (imported on first search: numba loads lazily).

Compiled once per machine and cached on disk (`cache=True`): later processes load the
machine code instead of compiling again. For each query: add the weights of its terms' postings
into a dense float64 accumulator, remember which documents were touched, keep the best k of
them in a heap ordered by (score desc, tie rank asc), and reset what was touched.
"""

from __future__ import annotations

import numba as nb
import numpy as np

# a query whose postings reach 1/DENSE_SCAN_FROM of the documents scans the accumulator whole
DENSE_SCAN_FROM = 8


@nb.njit(cache=True, nogil=True, inline="always")
def _worse(score_a, rank_a, score_b, rank_b) -> bool:
    """Whether hit a ranks below hit b."""
    return score_a < score_b or (score_a == score_b and rank_a > rank_b)


@nb.njit(cache=True, nogil=True)
def _sift_down(scores, ranks, positions, size, i):
    """Restore the heap (worst hit at the root) below node i."""
    while True:
        child = 2 * i + 1
        if child >= size:
            return
        right = child + 1
        if right < size and _worse(scores[right], ranks[right], scores[child], ranks[child]):
            child = right
        if not _worse(scores[child], ranks[child], scores[i], ranks[i]):
            return
        scores[i], scores[child] = scores[child], scores[i]
        ranks[i], ranks[child] = ranks[child], ranks[i]
        positions[i], positions[child] = positions[child], positions[i]
        i = child


@nb.njit(cache=True, nogil=True)
def _one_query(terms, data, indices, indptr, tie_ranks, k, acc, touched, out_pos, out_score):
    """Score one query into out_pos/out_score (best first); returns the number of hits.

    A selective query remembers the documents its postings touch and visits only those; a
    query whose postings cover much of the collection skips that bookkeeping and scans the
    accumulator whole, where a document rarely beats the heap's worst hit (a branch the CPU
    predicts). Both give the same hits."""
    num_docs = len(acc)
    postings = 0
    for t in terms:
        postings += indptr[t + 1] - indptr[t]
    heap_scores = np.empty(k, np.float32)
    heap_ranks = np.empty(k, np.int64)
    heap_positions = np.empty(k, np.int64)
    size = 0
    if postings * DENSE_SCAN_FROM >= num_docs:
        for t in terms:
            for p in range(indptr[t], indptr[t + 1]):
                acc[indices[p]] += data[p]
        d = 0
        while d < num_docs and size < k:  # the first k documents with a score fill the heap
            if acc[d] != 0.0:
                heap_scores[size] = np.float32(acc[d])
                heap_ranks[size] = np.int64(tie_ranks[d])
                heap_positions[size] = d
                size += 1
            d += 1
        for j in range(size // 2 - 1, -1, -1):
            _sift_down(heap_scores, heap_ranks, heap_positions, size, j)
        while d < num_docs:
            score = np.float32(acc[d])
            if score >= heap_scores[0] and score != 0.0:
                rank = np.int64(tie_ranks[d])
                if _worse(heap_scores[0], heap_ranks[0], score, rank):
                    heap_scores[0] = score
                    heap_ranks[0] = rank
                    heap_positions[0] = d
                    _sift_down(heap_scores, heap_ranks, heap_positions, size, 0)
            d += 1
        acc[:] = 0.0
    else:
        n = 0
        for t in terms:
            for p in range(indptr[t], indptr[t + 1]):
                d = indices[p]
                touched[n] = d
                n += acc[d] == 0.0
                acc[d] += data[p]
        for i in range(n):
            d = touched[i]
            score = np.float32(acc[d])
            acc[d] = 0.0
            rank = np.int64(tie_ranks[d])
            if size < k:
                heap_scores[size] = score
                heap_ranks[size] = rank
                heap_positions[size] = d
                size += 1
                if size == k:
                    for j in range(k // 2 - 1, -1, -1):
                        _sift_down(heap_scores, heap_ranks, heap_positions, size, j)
            elif _worse(heap_scores[0], heap_ranks[0], score, rank):
                heap_scores[0] = score
                heap_ranks[0] = rank
                heap_positions[0] = d
                _sift_down(heap_scores, heap_ranks, heap_positions, size, 0)
    by_rank = np.argsort(heap_ranks[:size], kind="mergesort")
    by_score = np.argsort(-heap_scores[:size][by_rank], kind="mergesort")
    order = by_rank[by_score]
    for i in range(size):
        out_pos[i] = heap_positions[order[i]]
        out_score[i] = heap_scores[order[i]]
    return size


@nb.njit(cache=True, nogil=True)
def top_k_serial(terms, pointers, data, indices, indptr, tie_ranks, k, acc, touched):
    """All queries on this thread, reusing the caller's zeroed buffers."""
    queries = len(pointers) - 1
    positions = np.full((queries, k), -1, np.int64)
    scores = np.zeros((queries, k), np.float32)
    counts = np.zeros(queries, np.int64)
    for q in range(queries):
        counts[q] = _one_query(
            terms[pointers[q] : pointers[q + 1]],
            data,
            indices,
            indptr,
            tie_ranks,
            k,
            acc,
            touched,
            positions[q],
            scores[q],
        )
    return positions, scores, counts


@nb.njit(cache=True, parallel=True)
def top_k_parallel(terms, pointers, data, indices, indptr, tie_ranks, num_docs, k, chunks):
    """Queries split into `chunks` runs, one per thread, each with its own buffers."""
    queries = len(pointers) - 1
    positions = np.full((queries, k), -1, np.int64)
    scores = np.zeros((queries, k), np.float32)
    counts = np.zeros(queries, np.int64)
    per_chunk = (queries + chunks - 1) // chunks
    for c in nb.prange(chunks):
        acc = np.zeros(num_docs, np.float64)
        touched = np.empty(num_docs, np.int32)
        for q in range(c * per_chunk, min(queries, (c + 1) * per_chunk)):
            counts[q] = _one_query(
                terms[pointers[q] : pointers[q + 1]],
                data,
                indices,
                indptr,
                tie_ranks,
                k,
                acc,
                touched,
                positions[q],
                scores[q],
            )
    return positions, scores, counts
