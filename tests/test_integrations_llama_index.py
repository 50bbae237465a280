"""kirag.integrations.llama_index on real indexes over the bundled passages and the real tiny
Rank1 model (SmolLM2 GGUF through llama.cpp, thinking budget 0 or a few tokens)."""

from __future__ import annotations

import threading

import pytest
from framework_indexes import BRIDGE, BRIDGE_GOLD, build_indexes

from kirag.errors import KiragError

pytest.importorskip("llama_index.core", reason="the llama-index extra is not installed")

from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

from kirag.integrations.llama_index import KiragRerank, KiragRetriever

QUERY = "anarchism political philosophy"
HIDDEN = ("score", "rank", "retrieval_score", "p_true", "reasoning", "first_stage_score", "chain")


@pytest.fixture(scope="module")
def indexes(tmp_path_factory, enwiki_slice_docs, slice_triple_index):
    return build_indexes(tmp_path_factory.mktemp("li"), enwiki_slice_docs, slice_triple_index)


@pytest.fixture(scope="module")
def rank1(exact_llamacpp_engine):
    """Rank1 on the packaged SmolLM2, budget 0, one prompt at a time (order-independent scores)."""
    from kirag.rerank.rank1 import Rank1Reranker

    return Rank1Reranker(engine=exact_llamacpp_engine, thinking_budget=0)


def llm_text(node) -> str:
    return node.node.get_content(metadata_mode=MetadataMode.LLM)


def embed_text(node) -> str:
    return node.node.get_content(metadata_mode=MetadataMode.EMBED)


def assert_hidden_from_prompts(node) -> None:
    for text in (llm_text(node), embed_text(node)):
        for key in HIDDEN:
            assert f"\n{key}: " not in f"\n{text}", (key, text[:300])


def test_retriever_returns_the_index_hits_as_nodes(indexes):
    from kirag.retrieval.bm25 import BM25Retriever

    expected = BM25Retriever(indexes["bm25"]).search(QUERY, 4, with_documents=True)
    nodes = KiragRetriever(index=indexes["bm25"], similarity_top_k=4).retrieve(QUERY)
    assert [n.node.node_id for n in nodes] == [h.doc_id for h in expected]
    assert [n.score for n in nodes] == pytest.approx([h.score for h in expected])
    for node, hit in zip(nodes, expected, strict=True):
        assert isinstance(node.node, TextNode) and node.node.text == hit.document.text
        assert node.node.metadata["title"] == hit.document.title
        assert node.node.metadata["rank"] == hit.rank
        assert f"title: {hit.document.title}" in llm_text(node)  # the title does reach the LLM
        assert_hidden_from_prompts(node)


def test_fused_folders_and_a_loaded_retriever(indexes):
    from kirag.retrieval.factory import load_retrievers

    # the triple index's own BM25 and dense folders: one corpus (fusing two is refused)
    folders = [indexes["triples"] / "bm25", indexes["triples"] / "dense"]
    hybrid = load_retrievers(folders)
    expected = [h.doc_id for h in hybrid.search(QUERY, 5)]
    by_folders = KiragRetriever(index=folders, similarity_top_k=5)
    by_object = KiragRetriever(retriever=hybrid, similarity_top_k=5)
    assert [n.node.node_id for n in by_folders.retrieve(QUERY)] == expected
    assert [n.node.node_id for n in by_object.retrieve(QUERY)] == expected
    assert all(n.node.text for n in by_object.retrieve(QUERY))
    with pytest.raises(KiragError, match="exactly one"):
        KiragRetriever()
    with pytest.raises(KiragError, match="similarity_top_k"):
        KiragRetriever(retriever=hybrid, similarity_top_k=0)


@pytest.mark.asyncio
async def test_aretrieve_searches_off_the_event_loop(indexes, monkeypatch):
    retriever = KiragRetriever(index=indexes["dense"], similarity_top_k=3)
    threads = []
    search = retriever.retriever.search

    def recording_search(*args, **kwargs):
        threads.append(threading.get_ident())
        return search(*args, **kwargs)

    monkeypatch.setattr(retriever.retriever, "search", recording_search)
    nodes = await retriever.aretrieve(QUERY)
    assert threads and threads[0] != threading.get_ident()  # not the event loop's thread
    assert [n.node.node_id for n in nodes] == [n.node.node_id for n in retriever.retrieve(QUERY)]


def test_kirag_pipeline_as_a_retriever_carries_its_chain(indexes):
    from kirag.rag.pipeline import KiRAG

    pipeline = KiRAG(indexes["triples"])
    nodes = KiragRetriever(retriever=pipeline, similarity_top_k=4).retrieve(BRIDGE)
    expected = pipeline.retrieve(BRIDGE, k=4)
    steps = [t.text for t in expected.best_chain.triples]
    assert steps and [n.node.node_id for n in nodes] == [h.doc_id for h in expected.hits]
    assert BRIDGE_GOLD & {n.node.node_id for n in nodes}
    chain_docs = {t.doc_id for t in expected.best_chain.triples}
    for node in nodes:
        assert node.node.metadata["chain"] == steps
        assert "\nchain: " not in llm_text(node)  # the per-query trace stays out of the prompt
        if node.node.node_id in chain_docs:  # this passage's chain facts do reach the LLM
            facts = [t.text for t in expected.best_chain.triples if t.doc_id == node.node.node_id]
            assert node.node.metadata["chain_facts"] == ". ".join(facts)
            assert f"chain_facts: {'. '.join(facts)}" in llm_text(node)
        else:
            assert "chain_facts" not in node.node.metadata
    assert chain_docs & {n.node.node_id for n in nodes}


def test_rerank_scores_nodes_with_rank1_and_hides_its_reasoning(indexes, rank1):
    nodes = KiragRetriever(index=indexes["bm25"], similarity_top_k=2).retrieve(QUERY)
    before = [n.model_dump() for n in nodes]
    reranked = KiragRerank(reranker=rank1, top_n=2).postprocess_nodes(nodes, query_str=QUERY)
    assert [n.model_dump() for n in nodes] == before  # inputs untouched

    from kirag.integrations.common import record_hit

    direct = rank1.rerank(
        QUERY,
        [
            record_hit(n.node.node_id, n.node.text, {**n.node.metadata, "score": n.score}, i)
            for i, n in enumerate(nodes, 1)
        ],
        k=2,
    )
    assert [n.node.node_id for n in reranked] == [h.doc_id for h in direct]
    assert [n.score for n in reranked] == [h.score for h in direct]
    incoming = {n.node.node_id: n.score for n in nodes}
    for node in reranked:
        meta = node.node.metadata
        assert meta["p_true"] == node.score and 0 < node.score < 1
        assert meta["retrieval_score"] == incoming[node.node.node_id]
        assert meta["first_stage_score"] == incoming[node.node.node_id]
        assert meta["score"] == node.score and meta["fallback"] == "none"
        assert meta["thinking_tokens"] == 0
        assert_hidden_from_prompts(node)
    assert [n.node.metadata["rank"] for n in reranked] == [1, 2]
    assert sorted(n.node.node_id for n in reranked) == sorted(incoming)
    assert KiragRerank.class_name() == "KiragRerank"


def test_rerank_reasoning_stays_out_of_the_prompt(exact_llamacpp_engine):
    """With a few thinking tokens, Rank1's reasoning text is kept but never rendered."""
    from kirag.rerank.rank1 import Rank1Reranker

    postprocessor = KiragRerank(
        reranker=Rank1Reranker(engine=exact_llamacpp_engine, thinking_budget=4)
    )
    nodes = [
        NodeWithScore(node=TextNode(id_="a", text="Luanda is the capital of Angola."), score=2.0),
        NodeWithScore(node=TextNode(id_="b", text="Aardvarks eat ants.", metadata={"src": "x"})),
    ]
    reranked = postprocessor.postprocess_nodes(nodes, query_str="capital of Angola")
    assert {n.node.node_id for n in reranked} == {"a", "b"}
    for node in reranked:
        meta = node.node.metadata
        assert meta["reasoning"] and meta["thinking_tokens"] > 0
        assert meta["fallback"] in {"none", "rethink", "default"}
        assert meta["reasoning"] not in llm_text(node) and meta["reasoning"] not in embed_text(node)
    by_id = {n.node.node_id: n for n in reranked}
    assert by_id["a"].node.metadata["retrieval_score"] == 2.0
    assert by_id["b"].node.metadata["retrieval_score"] is None
    assert "src: x" in llm_text(by_id["b"])  # the node's own metadata still reaches the LLM


@pytest.mark.asyncio
async def test_async_rerank_matches_sync(rank1, monkeypatch):
    nodes = [
        NodeWithScore(node=TextNode(id_="a", text="Luanda is the capital of Angola."), score=2.0),
        NodeWithScore(node=TextNode(id_="b", text="Aardvarks eat ants."), score=1.0),
    ]
    query = "capital of Angola"
    postprocessor = KiragRerank(reranker=rank1)
    sync = postprocessor.postprocess_nodes(nodes, query_str=query)
    threads = []
    rerank = rank1.rerank

    def recording_rerank(*args, **kwargs):
        threads.append(threading.get_ident())
        return rerank(*args, **kwargs)

    monkeypatch.setattr(rank1, "rerank", recording_rerank)
    asynchronous = await postprocessor.apostprocess_nodes(nodes, query_str=query)
    assert threads and threads[0] != threading.get_ident()  # not the event loop's thread
    assert [(n.node.node_id, n.score) for n in asynchronous] == [
        (n.node.node_id, n.score) for n in sync
    ]
    assert await postprocessor.apostprocess_nodes([], query_str=query) == []


def test_rerank_by_name_and_bad_arguments(exact_llamacpp_engine):
    postprocessor = KiragRerank(
        name="rank1",
        model="smollm2-135m",
        engine="llamacpp",
        thinking_budget=0,
        engine_options={"reuse_prefix": False},
        top_n=1,
    )
    from kirag.rerank.rank1 import Rank1Reranker

    assert isinstance(postprocessor.reranker, Rank1Reranker)
    nodes = [
        NodeWithScore(node=TextNode(id_="a", text="Luanda is the capital of Angola."), score=1.0),
        NodeWithScore(node=TextNode(id_="b", text="Aardvarks eat ants."), score=0.5),
    ]
    kept = postprocessor.postprocess_nodes(nodes, query_str="capital of Angola")
    assert len(kept) == 1
    saved = postprocessor.to_json()  # name, model, options: rebuilt (the engine is shared)
    restored = KiragRerank.from_json(saved)
    assert restored.reranker_options == postprocessor.reranker_options and restored.top_n == 1
    again = restored.postprocess_nodes(nodes, query_str="capital of Angola")
    assert [(n.node.node_id, n.score) for n in again] == [(n.node.node_id, n.score) for n in kept]
    with pytest.raises(KiragError, match="can't be serialised"):
        KiragRerank(reranker=postprocessor.reranker).to_dict()
    with pytest.raises(KiragError, match="needs the query"):
        postprocessor.postprocess_nodes(nodes)
    with pytest.raises(KiragError, match="does not take"):
        KiragRerank(model="smollm2-135m", not_an_option=1)
    with pytest.raises(KiragError, match="not both"):
        KiragRerank(reranker=postprocessor.reranker, model="smollm2-135m")
