"""kirag.integrations.haystack: components in real Haystack pipelines (saved to YAML and loaded
back), on real indexes over the bundled passages and the real tiny Rank1 model."""

from __future__ import annotations

import os
import threading

import pytest
from framework_indexes import BRIDGE, BRIDGE_GOLD, build_indexes

from kirag.errors import IndexLoadError, KiragError

os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"  # before haystack is imported
pytest.importorskip("haystack", reason="the haystack extra is not installed")

from haystack import Document, Pipeline
from haystack.core.errors import DeserializationError

from kirag.integrations.haystack import KiragRanker, KiragRetriever

QUERY = "anarchism political philosophy"
# Rank1 on the packaged SmolLM2 through llama.cpp, budget 0, one prompt at a time (so scores
# don't depend on what ran before)
RANK1 = {"engine": "llamacpp", "thinking_budget": 0, "engine_options": {"reuse_prefix": False}}


@pytest.fixture(scope="module")
def indexes(tmp_path_factory, enwiki_slice_docs, slice_triple_index):
    return build_indexes(tmp_path_factory.mktemp("hay"), enwiki_slice_docs, slice_triple_index)


def pipeline(indexes) -> Pipeline:
    """retriever (BM25 top 2) -> Rank1 ranker (top 2)."""
    pipe = Pipeline()
    pipe.add_component("retriever", KiragRetriever(index=str(indexes["bm25"]), top_k=2))
    pipe.add_component("ranker", KiragRanker(model="smollm2-135m", top_k=2, options=RANK1))
    pipe.connect("retriever.documents", "ranker.documents")
    return pipe


def recording(function, threads: list):
    """`function`, noting the thread of each call."""

    def call(*args, **kwargs):
        threads.append(threading.get_ident())
        return function(*args, **kwargs)

    return call


def inputs(query: str) -> dict:
    return {"retriever": {"query": query}, "ranker": {"query": query}}


def test_retriever_returns_the_index_hits_as_documents(indexes):
    from kirag.retrieval.bm25 import BM25Retriever

    expected = BM25Retriever(indexes["bm25"]).search(QUERY, 5, with_documents=True)
    retriever = KiragRetriever(index=indexes["bm25"], top_k=5)
    documents = retriever.run(QUERY)["documents"]
    assert [d.id for d in documents] == [h.doc_id for h in expected]
    for document, hit in zip(documents, expected, strict=True):
        assert isinstance(document, Document) and document.content == hit.document.text
        assert document.score == pytest.approx(hit.score)
        assert document.meta["title"] == hit.document.title and document.meta["rank"] == hit.rank
    assert len(retriever.run(QUERY, top_k=2)["documents"]) == 2
    with pytest.raises(KiragError, match="top_k"):
        retriever.run(QUERY, top_k=0)


def test_retriever_applies_haystack_filters(indexes):
    retriever = KiragRetriever(index=indexes["bm25"], top_k=3)
    title = {"field": "meta.title", "operator": "==", "value": "Ayn Rand"}
    documents = retriever.run(QUERY, filters=title)["documents"]
    assert documents and all(d.meta["title"] == "Ayn Rand" for d in documents)
    unfiltered = [d.id for d in retriever.run(QUERY, top_k=100)["documents"]]
    assert [d.id for d in documents] == [i for i in unfiltered if i.startswith("Ayn_Rand#")][:3]


def test_components_load_lazily_in_warm_up(tmp_path):
    retriever = KiragRetriever(index=tmp_path / "missing", top_k=2)  # nothing opened yet
    ranker = KiragRanker(model="no-such-model")
    assert retriever.to_dict()["init_parameters"]["index"] == str(tmp_path / "missing")
    with pytest.raises(IndexLoadError, match="no such index folder"):
        retriever.warm_up()
    with pytest.raises(KiragError):
        ranker.warm_up()
    assert ranker.run("q", documents=[]) == {"documents": []}  # nothing to rank: no model needed


@pytest.mark.asyncio
async def test_pipeline_saved_to_yaml_loads_back_and_ranks_the_same(indexes, tmp_path, monkeypatch):
    """retriever -> ranker saved to YAML and loaded back: the loaded one, run asynchronously
    (searches and model calls off the event loop), ranks as the original run synchronously."""
    original = pipeline(indexes)
    saved = tmp_path / "pipeline.yaml"
    saved.write_text(original.dumps())
    text = saved.read_text()
    assert "kirag.integrations.haystack.KiragRanker" in text and "thinking_budget: 0" in text

    with pytest.raises(DeserializationError, match="allowlist"):
        Pipeline.loads(text)  # Haystack 3.x refuses third-party modules unless allowed
    loaded = Pipeline.loads(text, allowed_modules=["kirag.*"])

    before = original.run(inputs(QUERY))["ranker"]["documents"]
    loaded.warm_up()
    threads = []
    for name, obj, method in (
        ("retriever", "_retriever", "search"),
        ("ranker", "_reranker", "rerank"),
    ):
        target = getattr(loaded.get_component(name), obj)
        monkeypatch.setattr(target, method, recording(getattr(target, method), threads))
    after = (await loaded.run_async(inputs(QUERY)))["ranker"]["documents"]
    assert len(threads) == 2 and threading.get_ident() not in threads  # not the loop's thread
    assert [(d.id, d.score) for d in after] == [(d.id, d.score) for d in before]
    assert len(after) == 2 and after[0].score >= after[1].score
    for document in after:
        meta = document.meta
        assert meta["p_true"] == document.score and 0 < document.score < 1
        assert meta["retrieval_score"] == meta["first_stage_score"] > 0
        assert meta["fallback"] == "none" and meta["reasoning"] == ""
        assert meta["score"] == document.score
    assert [d.meta["rank"] for d in after] == [1, 2]


def test_allowlist_environment_variable(indexes, monkeypatch):
    text = pipeline(indexes).dumps()
    monkeypatch.setenv("HAYSTACK_DESERIALIZATION_ALLOWLIST", "kirag.*")
    loaded = Pipeline.loads(text)
    assert isinstance(loaded.get_component("retriever"), KiragRetriever)


def test_ranker_keeps_inputs_and_scores_like_rank1(exact_llamacpp_engine):
    from kirag.rerank.rank1 import Rank1Reranker

    from kirag.integrations.common import record_hit

    rank1 = Rank1Reranker(engine=exact_llamacpp_engine, thinking_budget=0)
    documents = [
        Document(id="a", content="Aardvarks eat ants.", meta={"title": "Aardvark"}, score=3.0),
        Document(id="b", content="Luanda is the capital of Angola.", meta={"src": "x"}),
    ]
    before = [d.to_dict() for d in documents]
    ranked = KiragRanker(reranker=rank1).run("capital of Angola", documents)["documents"]
    assert [d.to_dict() for d in documents] == before  # inputs untouched
    direct = rank1.rerank(
        "capital of Angola",
        [record_hit(d.id, d.content, {**d.meta, "score": d.score or 0.0}, i) for i, d in enumerate(documents, 1)],
    )  # fmt: skip
    assert [(d.id, d.score) for d in ranked] == [(h.doc_id, h.score) for h in direct]
    top = KiragRanker(reranker=rank1, top_k=1).run("capital of Angola", documents)["documents"]
    assert [(d.id, d.score) for d in top] == [(d.id, d.score) for d in ranked[:1]]
    by_id = {d.id: d for d in ranked}
    assert by_id["a"].meta["retrieval_score"] == 3.0 and by_id["a"].meta["title"] == "Aardvark"
    assert by_id["b"].meta["retrieval_score"] is None and by_id["b"].meta["src"] == "x"


def test_loaded_objects_are_not_serialisable(indexes, exact_llamacpp_engine):
    from kirag.rerank.rank1 import Rank1Reranker
    from kirag.retrieval.bm25 import BM25Retriever

    retriever = KiragRetriever(retriever=BM25Retriever(indexes["bm25"]), top_k=2)
    assert len(retriever.run(QUERY)["documents"]) == 2  # usable, only not saveable
    with pytest.raises(KiragError, match="loaded retriever and can't be serialised"):
        retriever.to_dict()
    ranker = KiragRanker(reranker=Rank1Reranker(engine=exact_llamacpp_engine, thinking_budget=0))
    with pytest.raises(KiragError, match="loaded reranker and can't be serialised"):
        ranker.to_dict()
    with pytest.raises(KiragError, match="not both"):
        KiragRanker(reranker=ranker._reranker, model="smollm2-135m")
    with pytest.raises(KiragError, match="exactly one"):
        KiragRetriever()


def test_kirag_pipeline_component_round_trips_with_its_options(indexes):
    from kirag.rag.pipeline import KiRAG

    component = KiragRetriever(index=indexes["triples"], top_k=4, options={"mode": "aligner"})
    restored = KiragRetriever.from_dict(component.to_dict())
    assert restored.options == {"mode": "aligner"} and restored.index == str(indexes["triples"])
    documents = restored.run(BRIDGE)["documents"]
    expected = KiRAG(indexes["triples"], mode="aligner").retrieve(BRIDGE, k=4)
    steps = [t.text for t in expected.best_chain.triples]
    assert steps and [d.id for d in documents] == [h.doc_id for h in expected.hits]
    assert BRIDGE_GOLD & {d.id for d in documents}
    assert all(d.meta["chain"] == steps for d in documents)
    chain_docs = {t.doc_id for t in expected.best_chain.triples}
    assert {d.id for d in documents if "chain_facts" in d.meta} == chain_docs & {
        d.id for d in documents
    }
    with pytest.raises(KiragError, match="mode"):
        KiragRetriever(index=indexes["triples"], options={"mode": "nonsense"}).run(BRIDGE)
