"""kirag in LangChain: langchain-tests' standard retriever suite against KiragRetriever on a real
BM25 index over the bundled passages, then our own checks of the retriever (documents, metadata,
hybrid and KiRAG indexes) and of the KiragRerank compressor on the real tiny Rank1 model, a
cross-encoder and the fused reranker."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

pytest.importorskip(
    "langchain_core", reason="the langchain extra (langchain-core) is not installed"
)
pytest.importorskip("pytest_asyncio", reason="pytest-asyncio (dev extra) is not installed")
standard = pytest.importorskip(
    "langchain_tests.integration_tests", reason="langchain-tests (dev extra) is not installed"
)

from langchain_core.documents import Document  # noqa: E402

from kirag.integrations.langchain import KiragRerank, KiragRetriever  # noqa: E402

QUERY = "Who wrote Animal Farm?"


class TestKiragRetrieverStandard(standard.RetrieversIntegrationTests):
    """LangChain's own retriever suite (k in the constructor and per call, sync and async)."""

    @pytest.fixture(autouse=True)
    def _index(self, enwiki_bm25):
        type(self).index_dir = enwiki_bm25

    @property
    def retriever_constructor(self) -> type[KiragRetriever]:
        return KiragRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"index": str(self.index_dir), "k": 4}

    @property
    def retriever_query_example(self) -> str:
        return QUERY


@pytest.fixture(scope="module")
def bm25(small_triple_index):
    from kirag.retrieval.bm25 import BM25Retriever

    return BM25Retriever(small_triple_index / "bm25")


def test_documents_are_kirag_hits_with_metadata(small_triple_index, bm25):
    retriever = KiragRetriever(index=small_triple_index / "bm25", k=5)
    documents = retriever.invoke(QUERY)
    hits = bm25.search(QUERY, k=5, with_documents=True)
    assert [d.id for d in documents] == [h.doc_id for h in hits]
    assert documents[0].id.startswith("Animal_Farm#")
    for rank, (document, hit) in enumerate(zip(documents, hits, strict=True), 1):
        assert document.page_content == hit.document.text
        assert document.metadata == {
            "doc_id": hit.doc_id,
            "title": hit.document.title,
            "score": pytest.approx(hit.score),
            "rank": rank,
            "source": "enwiki-slice",  # the document's own metadata
        }
    assert [d.id for d in retriever.invoke(QUERY, k=2)] == [h.doc_id for h in hits[:2]]
    with pytest.raises(TypeError, match="top_k"):
        retriever.invoke(QUERY, top_k=2)  # a misspelt option is not silently ignored
    with pytest.raises(ValueError, match="positive"):
        retriever.invoke(QUERY, k=0)


async def test_async_documents_equal_sync(small_triple_index):
    retriever = KiragRetriever(index=small_triple_index / "bm25", k=4)
    assert await retriever.ainvoke(QUERY) == retriever.invoke(QUERY)
    assert await retriever.abatch([QUERY, "Aristotle's teacher"]) == retriever.batch(
        [QUERY, "Aristotle's teacher"]
    )


def test_hybrid_of_two_index_folders(small_triple_index):
    from kirag.retrieval.factory import load_retrievers

    folders = [small_triple_index / "bm25", small_triple_index / "dense"]
    hybrid = load_retrievers(folders)
    documents = KiragRetriever(index=folders, k=6).invoke(QUERY)
    hits = hybrid.search(QUERY, k=6)
    assert [d.id for d in documents] == [h.doc_id for h in hits]
    assert all(d.page_content and d.metadata["title"] for d in documents)
    assert documents[0].metadata["scores"] == hits[0].metadata["scores"]  # per-retriever scores


def test_a_loaded_retriever_and_bad_arguments(small_triple_index, bm25):
    from kirag.errors import IndexLoadError, KiragError

    documents = KiragRetriever(retriever=bm25, k=3).invoke(QUERY)
    assert [d.id for d in documents] == [h.doc_id for h in bm25.search(QUERY, k=3)]
    with pytest.raises(IndexLoadError, match="no-such-index"):
        KiragRetriever(index=small_triple_index / "no-such-index")
    with pytest.raises(KiragError, match="exactly one"):
        KiragRetriever(index=small_triple_index / "bm25", retriever=bm25)


def test_the_kirag_pipeline_as_a_retriever(small_triple_index):
    """A triple index folder ranks by KiRAG's chains: the best chain rides in metadata."""
    from kirag.rag.pipeline import KiRAG

    question = "Which philosopher did Aristotle study under at Plato's Academy?"
    pipeline = KiRAG(small_triple_index)
    result = pipeline.retrieve(question, k=4)
    for retriever in (
        KiragRetriever(index=small_triple_index, k=4),
        KiragRetriever(retriever=pipeline, k=4),
    ):
        documents = retriever.invoke(question)
        assert [d.id for d in documents] == [h.doc_id for h in result.hits]
        chain = [t.text for t in result.best_chain.triples]
        assert chain and all(d.metadata["chain"] == chain for d in documents)
        for document in documents:
            facts = [t.text for t in result.best_chain.triples if t.doc_id == document.id]
            assert document.metadata.get("chain_facts") == (". ".join(facts) or None)


# ---------------------------------------------------------------- the compressor


@pytest.fixture(scope="module")
def rank1(exact_llamacpp_engine):
    from kirag.rerank.rank1 import Rank1Reranker

    return Rank1Reranker(engine=exact_llamacpp_engine, thinking_budget=0)


@pytest.fixture(scope="module")
def candidates(small_triple_index):
    return KiragRetriever(index=small_triple_index / "bm25", k=3).invoke(QUERY)


RANK1_KEYS = {"p_true", "reasoning", "fallback", "thinking_tokens"}


def d_hit(document: Document, position: int):
    from kirag.integrations.common import record_hit

    return record_hit(document.id, document.page_content, document.metadata, position)


@pytest.fixture(scope="module")
def rank1_hits(rank1, candidates):
    """kirag's own Rank1 ranking of the candidates: what the compressor must reproduce."""
    return rank1.rerank(QUERY, [d_hit(d, i) for i, d in enumerate(candidates, 1)])


@pytest.fixture(scope="module")
def compressed(rank1, candidates):
    """The candidates through KiragRerank (top 2), checking on the way that they are untouched."""
    before = copy.deepcopy(candidates)
    reranked = KiragRerank(reranker=rank1, top_n=2).compress_documents(candidates, QUERY)
    assert candidates == before  # inputs untouched
    return reranked


def test_rank1_compressor(compressed, rank1_hits, candidates, rank1):
    expected = rank1_hits[:2]
    assert [d.id for d in compressed] == [h.doc_id for h in expected]
    by_id = {d.id: d for d in candidates}
    for rank, (document, hit) in enumerate(zip(compressed, expected, strict=True), 1):
        original = by_id[document.id]
        assert document is not original and document.page_content == original.page_content
        assert document.metadata["relevance_score"] == pytest.approx(hit.score, abs=1e-9)
        assert document.metadata["p_true"] == document.metadata["relevance_score"]
        assert set(document.metadata) >= RANK1_KEYS
        assert document.metadata["fallback"] == "none" and document.metadata["reasoning"] == ""
        assert document.metadata["first_stage_score"] == original.metadata["score"]
        assert document.metadata["first_stage_rank"] == original.metadata["rank"]
        assert document.metadata["rank"] == rank
        assert document.metadata["source"] == "enwiki-slice"  # the document's own metadata kept
    assert KiragRerank(reranker=rank1).compress_documents([], QUERY) == []
    from kirag.errors import KiragError

    with pytest.raises(KiragError, match="not both"):
        KiragRerank(reranker=rank1, model="smollm2-135m")


async def test_rank1_compressor_async_equals_sync(rank1, candidates, compressed):
    compressor = KiragRerank(reranker=rank1, top_n=2)
    assert await compressor.acompress_documents(candidates, QUERY) == compressed


def test_documents_without_ids_or_with_duplicate_ids(rank1):
    documents = [
        Document(page_content="George Orwell wrote Animal Farm, a novella.", metadata={}),
        Document(page_content="Alabama is a state.", id="same"),
        Document(page_content="Animal Farm is an allegory by Orwell.", id="same"),
    ]
    reranked = KiragRerank(reranker=rank1, top_n=None).compress_documents(documents, QUERY)
    assert sorted(d.page_content for d in reranked) == sorted(d.page_content for d in documents)
    assert sorted(str(d.id) for d in reranked) == ["None", "same", "same"]


def test_compressor_by_name_and_a_cross_encoder(tiny_cross_encoder, candidates):
    from kirag.rerank.cross_encoder import CrossEncoderReranker

    loaded = CrossEncoderReranker(str(tiny_cross_encoder))
    expected = loaded.rerank(QUERY, [d_hit(d, i) for i, d in enumerate(candidates, 1)])
    for top_n in (2, None):
        by_name = KiragRerank(name="cross-encoder", model=str(tiny_cross_encoder), top_n=top_n)
        reranked = by_name.compress_documents(candidates, QUERY)
        assert [d.id for d in reranked] == [h.doc_id for h in expected[:top_n]]
        assert [d.metadata["relevance_score"] for d in reranked] == pytest.approx(
            [h.score for h in expected[:top_n]]
        )
    from kirag.errors import KiragError

    with pytest.raises(KiragError, match="does not take"):
        KiragRerank(name="cross-encoder", model=str(tiny_cross_encoder), options={"budget": 1})


def test_fused_reranker(rank1, candidates, rank1_hits):
    from kirag.rerank.factory import load_reranker
    from kirag.retrieval.fusion import fuse_with_first_stage

    fused = load_reranker("fused", reranker=rank1, fusion="interpolate", weight=0.3)
    documents = KiragRerank(reranker=fused, top_n=None).compress_documents(candidates, QUERY)
    expected = fuse_with_first_stage(rank1_hits, "interpolate", 0.3)
    assert [d.id for d in documents] == [h.doc_id for h in expected]
    for document, hit in zip(documents, expected, strict=True):
        assert document.metadata["relevance_score"] == pytest.approx(hit.score)
        assert document.metadata["rerank_score"] == pytest.approx(hit.metadata["p_true"])
        assert document.metadata["fusion_weight"] == 0.3 and set(document.metadata) >= RANK1_KEYS


def test_inside_contextual_compression_retriever(small_triple_index, rank1, compressed):
    """The usual LangChain pipeline: ContextualCompressionRetriever when langchain_classic is
    installed, else the same composition written with langchain-core's runnables."""
    retriever = KiragRetriever(index=small_triple_index / "bm25", k=3)
    compressor = KiragRerank(reranker=rank1, top_n=2)
    try:
        from langchain_classic.retrievers import ContextualCompressionRetriever
    except ImportError:
        from langchain_core.runnables import RunnableLambda

        pipeline = RunnableLambda(lambda q: compressor.compress_documents(retriever.invoke(q), q))
    else:
        pipeline = ContextualCompressionRetriever(
            base_compressor=compressor, base_retriever=retriever
        )
    assert pipeline.invoke(QUERY) == compressed


def test_missing_langchain_core_names_the_extra():
    code = (
        "import sys; sys.modules['langchain_core'] = None\n"
        "from kirag.errors import MissingExtraError\n"
        "try:\n    import kirag.integrations.langchain\n"
        "except MissingExtraError as e:\n    print(e)\n"
        "import kirag.integrations, kirag.integrations.common  # no framework needed\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'kirag[langchain]'" in out.stdout
    assert "LangChain adapter" in out.stdout
