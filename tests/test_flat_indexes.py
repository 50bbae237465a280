"""Indexes whose memory stays flat in corpus size: FAISS built from memory-mapped shards (Flat
chunk by chunk, IVF-PQ shards merged with merge_from) equal to one add; bm25s counted in
shards and reduced to global statistics equal to one pass; `--index-type ivfpq` on the CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from kirag.retrieval.bm25 import BM25Retriever
from kirag.retrieval.dense import Encoder
from kirag.retrieval.faiss_index import (
    add_in_chunks,
    add_merged,
    build_faiss_from_blocks,
    build_faiss_index,
    empty_faiss_index,
    training_sample,
)

from kirag.errors import KiragError


@pytest.fixture(scope="module")
def vectors(minilm, enwiki_slice_docs) -> np.ndarray:
    """MiniLM vectors of the 314 real passages."""
    return Encoder("minilm").encode([d.contents for d in enwiki_slice_docs])


@pytest.fixture(scope="module")
def shard_files(vectors, tmp_path_factory):
    """The vectors as three uneven .npy shards, opened as memory maps (as builds read them)."""
    folder = tmp_path_factory.mktemp("shards")
    bounds = [0, 100, 137, len(vectors)]
    blocks = []
    for number, (start, end) in enumerate(itertools.pairwise(bounds)):
        np.save(folder / f"shard_{number:05d}.npy", vectors[start:end])
        blocks.append(np.load(folder / f"shard_{number:05d}.npy", mmap_mode="r"))
    return blocks


def _top10(index, queries):
    return index.search(np.ascontiguousarray(queries), 10)


def test_flat_from_memory_mapped_shards_equals_one_add(vectors, shard_files):
    import faiss

    one = faiss.IndexFlatIP(vectors.shape[1])
    one.add(vectors)
    sharded = build_faiss_from_blocks(shard_files, "flat")
    assert sharded.ntotal == len(vectors)
    chunked = faiss.IndexFlatIP(vectors.shape[1])
    add_in_chunks(chunked, vectors, chunk=50)
    queries = vectors[::7]
    scores, ids = _top10(one, queries)
    for other in (sharded, chunked):
        got_scores, got_ids = _top10(other, queries)
        assert got_ids.tolist() == ids.tolist()
        np.testing.assert_array_equal(got_scores, scores)


def test_ivfpq_shards_merged_equal_one_add_with_the_same_quantizer(vectors, shard_files):
    import faiss

    n, dimension = vectors.shape
    trained = empty_faiss_index(
        "ivfpq", dimension, n, lambda size: training_sample([vectors], size), nlist=8, pq_m=48
    )
    assert trained.is_trained and trained.ntotal == 0
    one = faiss.clone_index(trained)
    one.add(vectors)
    merged = faiss.clone_index(trained)
    add_merged(merged, shard_files)
    assert merged.ntotal == n
    queries = vectors[::5]
    scores, ids = _top10(one, queries)
    got_scores, got_ids = _top10(merged, queries)
    assert got_ids.tolist() == ids.tolist()
    np.testing.assert_array_equal(got_scores, scores)
    assert ids[:, 0].tolist() == list(range(0, n, 5))  # a passage's own vector is found first
    # the whole path (seeded sample, one clone per shard, merge) equals the one-array build
    whole = build_faiss_index(vectors, "ivfpq", nlist=8, pq_m=48)
    from_shards = build_faiss_from_blocks(shard_files, "ivfpq", nlist=8, pq_m=48)
    assert _top10(from_shards, queries)[1].tolist() == _top10(whole, queries)[1].tolist()
    with pytest.raises(KiragError, match="empty trained index"):
        add_merged(merged, shard_files)


def test_training_sample_is_seeded_and_reads_blocks_in_order(vectors, shard_files):
    assert np.array_equal(training_sample(shard_files, len(vectors)), vectors)
    first, again = training_sample(shard_files, 50, 7), training_sample(shard_files, 50, 7)
    assert np.array_equal(first, again) and first.shape == (50, vectors.shape[1])
    rows = {tuple(np.round(r, 6)) for r in vectors}
    assert all(tuple(np.round(r, 6)) in rows for r in first)
    assert not np.array_equal(first, training_sample(shard_files, 50, 8))


def test_ivfpq_options_are_checked(vectors):
    with pytest.raises(KiragError, match="does not divide"):
        build_faiss_index(vectors, "ivfpq", pq_m=50)
    with pytest.raises(KiragError, match="exceeds"):
        build_faiss_index(vectors[:20], "ivfpq", nlist=64)


def test_ivfpq_dense_index_from_the_cli(tmp_path, enwiki_slice, capsys):
    from kirag.cli import main

    index = tmp_path / "dense-ivfpq"
    args = ["index", "dense", "--corpus", str(enwiki_slice), "--index", str(index)]
    assert main([*args, "--index-type", "ivfpq", "--nlist", "6", "--pq-m", "32"]) == 0
    manifest = json.loads((index / "manifest.json").read_text())
    assert manifest["faiss"] == {"type": "ivfpq", "nlist": 6, "pq_m": 32}
    from kirag.retrieval.dense import DenseRetriever

    retriever = DenseRetriever(index)
    assert retriever.index.nlist == 6 and retriever.index.pq.M == 32
    assert retriever.search("Which king was taught by Aristotle?", k=3)
    # a bad m is a clear error, no traceback, nothing left behind
    bad = tmp_path / "bad"
    assert main(["index", "dense", "--corpus", str(enwiki_slice), "--index", str(bad), "--index-type", "ivfpq", "--pq-m", "50"]) != 0  # fmt: skip
    err = capsys.readouterr().err
    assert "does not divide the vector dimension 384" in err and "Traceback" not in err
    assert not bad.exists()


@pytest.fixture(scope="module")
def sample_indexes(tmp_path_factory):
    """bm25s over the bundled 4,996-passage sample: one shard weighted in one chunk, and 97-passage
    shards spilled to disk and weighted 5,000 postings at a time (49 term ranges)."""
    root = tmp_path_factory.mktemp("bm25-shards")
    single = BM25Retriever.build("enwiki-sample", root / "single", shard_size=10**9)
    sharded = BM25Retriever.build(
        "enwiki-sample", root / "sharded", shard_size=97, chunk_postings=5000
    )
    return single, sharded


def test_bm25s_from_shard_statistics_equals_one_pass(sample_indexes):
    from kirag.bench.corpora import benchmark_queries, sample_documents

    single, sharded = sample_indexes
    assert sharded.manifest["documents"] == 4996
    for key in ("vocabulary", "doc_count", "avgdl"):
        assert sharded.manifest[key] == single.manifest[key]
    queries = benchmark_queries(sample_documents(), 100)
    left = single.batch_search(queries, k=10)
    right = sharded.batch_search(queries, k=10)
    compared = 0
    for qid, hits in left.items():
        assert [h.doc_id for h in right[qid]] == [h.doc_id for h in hits], qid
        np.testing.assert_allclose(
            [h.score for h in right[qid]], [h.score for h in hits], rtol=0, atol=1e-6
        )
        compared += len(hits)
    assert compared > 1000
    # the global statistics, not each shard's: the same term ids and weights, byte for byte
    for name in ("data", "indices", "indptr"):
        a = np.load(single.path / "bm25s" / f"{name}.csc.index.npy")
        b = np.load(sharded.path / "bm25s" / f"{name}.csc.index.npy")
        assert np.array_equal(a, b) and a.dtype == b.dtype, name
    assert sharded.manifest["postings"] == a[-1] > 200_000  # a: indptr
    # the spilled postings are gone, and bm25s itself opens the streamed files
    assert sorted(p.name for p in sharded.path.iterdir()) == sorted(
        p.name for p in single.path.iterdir()
    )
    import bm25s

    model = bm25s.BM25.load(str(sharded.path / "bm25s"))
    assert model.scores["num_docs"] == 4996 and model.vocab_dict == sharded.backend.vocab


def test_posting_spill_takes_shards_in_corpus_order(tmp_path):
    from kirag.retrieval.bm25_scoring import shard_statistics
    from kirag.retrieval.bm25_streaming import PostingSpill

    spill = PostingSpill(tmp_path / "spill")
    spill.add(shard_statistics([["a", "b"], ["b"]], 0))
    with pytest.raises(ValueError, match="corpus order"):
        spill.add(shard_statistics([["c"]], 1))


def test_npy_rows_read_on_demand_and_leave_nothing_mapped(tmp_path, vectors):
    from kirag.io.npy_files import NpyAppender, concatenate_npy

    halves = [tmp_path / "a.npy", tmp_path / "b.npy"]
    np.save(halves[0], vectors[:100])
    np.save(halves[1], vectors[100:])
    merged = concatenate_npy(halves, tmp_path / "all.npy")
    assert np.array_equal(np.load(tmp_path / "all.npy"), vectors)
    assert len(merged) == len(vectors) and merged.shape == vectors.shape
    assert np.array_equal(merged[5:9], vectors[5:9])
    assert np.array_equal(merged[np.array([3, 1, 200])], vectors[[3, 1, 200]])
    # the file was mapped only while rows were copied out of it
    assert str(tmp_path / "all.npy") not in Path("/proc/self/maps").read_text()
    short = NpyAppender(tmp_path / "short.npy", np.float32, (2, vectors.shape[1]))
    with pytest.raises(RuntimeError, match="wrote 1 of 2 rows"), short as out:
        out.append(vectors[:1])
