"""The real rerank client libraries, unchanged but for their base URL, against a real
`kirag serve` process on a loopback port: LangChain's `CohereRerank` (langchain-cohere) and
LlamaIndex's Cohere and Jina rerankers. Each must return the documents in kirag's own order
with kirag's own scores (the Python API's, computed here in the test process). The Cohere SDK
itself and LlamaIndex's TEI reranker are tested in tests/test_serve.py.

The reranker is a real cross-encoder (a 1-layer BERT with seeded random weights, drawn wide so
its scores spread): the server starts in seconds, and the scores differ by far more than float
noise, so the order is a real check."""

from __future__ import annotations

import itertools

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from kirag.bench.serve import ServerProcess  # noqa: E402

# a server process and a cross-encoder in the fixtures: several seconds on 2 cores
pytestmark = pytest.mark.slow

QUERY = "Who wrote Animal Farm?"
PASSAGES = [
    "Animal Farm is a novella by George Orwell.",
    "Alabama is a state in the southeastern United States.",
    "Orwell wrote the book between November 1943 and February 1944.",
    "Aristotle taught Alexander the Great.",
    "The farm animals overthrow their human farmer.",
]
TOP_N = 3
TIMEOUT = 120


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory):
    """The session's tiny cross-encoder recipe with wide initial weights (its own gives scores
    within 1e-6 of each other)."""
    from conftest import build_tiny_cross_encoder

    folder = tmp_path_factory.mktemp("cross-encoder") / "spread-cross-encoder"
    return build_tiny_cross_encoder(folder, initializer_range=0.5)


@pytest.fixture(scope="module")
def server(cross_encoder):
    args = ["--reranker", "cross-encoder", "--model", str(cross_encoder)]
    with ServerProcess(args) as running:
        yield running


@pytest.fixture(scope="module")
def kirag_order(cross_encoder) -> list[tuple[int, float]]:
    """(index, score) best first, from kirag's Python API in this process."""
    from kirag.rerank.factory import load_reranker

    from kirag.types import Document

    reranker = load_reranker("cross-encoder", str(cross_encoder))
    hits = reranker.rerank(QUERY, [Document(str(i), t) for i, t in enumerate(PASSAGES)])
    order = [(int(h.doc_id), float(h.score)) for h in hits]
    gaps = [a[1] - b[1] for a, b in itertools.pairwise(order)]
    assert min(gaps) > 1e-4, f"scores too close for an order check: {order}"
    return order


def test_the_server_agrees_with_the_python_api(server, kirag_order):
    body = httpx.post(
        f"{server.url}/v1/rerank",
        json={"query": QUERY, "documents": PASSAGES, "top_n": TOP_N},
        timeout=TIMEOUT,
    ).json()
    got = [(r["index"], r["relevance_score"]) for r in body["results"]]
    assert [i for i, _ in got] == [i for i, _ in kirag_order[:TOP_N]]
    assert [s for _, s in got] == pytest.approx([s for _, s in kirag_order[:TOP_N]], abs=1e-5)


def test_langchain_cohere_rerank(server, kirag_order):
    """LangChain's CohereRerank with `base_url` (it builds its own cohere.ClientV2)."""
    langchain_cohere = pytest.importorskip("langchain_cohere")
    from langchain_core.documents import Document

    reranker = langchain_cohere.CohereRerank(
        cohere_api_key="unused", base_url=server.url, model="kirag", top_n=TOP_N
    )
    kept = reranker.compress_documents(
        [Document(page_content=t, metadata={"i": i}) for i, t in enumerate(PASSAGES)], QUERY
    )
    assert [d.metadata["i"] for d in kept] == [i for i, _ in kirag_order[:TOP_N]]
    assert [d.metadata["relevance_score"] for d in kept] == pytest.approx(
        [s for _, s in kirag_order[:TOP_N]], abs=1e-5
    )
    # the lower-level call, every document
    rows = reranker.rerank(PASSAGES, QUERY, top_n=None)
    assert [r["index"] for r in rows] == [i for i, _ in kirag_order]


def test_langchain_cohere_rerank_with_a_client(server, kirag_order):
    """The other documented way: a cohere.ClientV2 pointed at the server, passed in."""
    langchain_cohere = pytest.importorskip("langchain_cohere")
    import cohere

    client = cohere.ClientV2(api_key="unused", base_url=server.url, timeout=TIMEOUT)
    reranker = langchain_cohere.CohereRerank(client=client, model="kirag", top_n=TOP_N)
    rows = reranker.rerank(PASSAGES, QUERY)
    assert [r["index"] for r in rows] == [i for i, _ in kirag_order[:TOP_N]]


def _nodes():
    from llama_index.core.schema import NodeWithScore, TextNode

    return [NodeWithScore(node=TextNode(text=t, id_=str(i))) for i, t in enumerate(PASSAGES)]


def test_llama_index_cohere_rerank(server, kirag_order):
    cohere_rerank = pytest.importorskip("llama_index.postprocessor.cohere_rerank")
    reranker = cohere_rerank.CohereRerank(
        api_key="unused", base_url=server.url, model="kirag", top_n=TOP_N
    )
    kept = reranker.postprocess_nodes(_nodes(), query_str=QUERY)
    assert [int(n.node.id_) for n in kept] == [i for i, _ in kirag_order[:TOP_N]]
    assert [n.score for n in kept] == pytest.approx([s for _, s in kirag_order[:TOP_N]], abs=1e-5)


def test_llama_index_jina_rerank(server, kirag_order):
    """LlamaIndex's Jina reranker posts Jina's request shape to BASE_URL/rerank."""
    jina = pytest.importorskip("llama_index.postprocessor.jinaai_rerank")
    reranker = jina.JinaRerank(api_key="unused", base_url=f"{server.url}/v1", top_n=TOP_N)
    kept = reranker.postprocess_nodes(_nodes(), query_str=QUERY)
    assert [int(n.node.id_) for n in kept] == [i for i, _ in kirag_order[:TOP_N]]
    assert [n.score for n in kept] == pytest.approx([s for _, s in kirag_order[:TOP_N]], abs=1e-5)


def test_accepted_but_ignored_fields_change_nothing(server, kirag_order):
    """The fields kirag accepts for compatibility and ignores (docs/serve.md lists them):
    the same order and scores with and without them."""
    cohere = httpx.post(f"{server.url}/v1/rerank", json={
        "model": "rerank-v3.5", "query": QUERY, "documents": PASSAGES, "top_n": TOP_N,
        "max_chunks_per_doc": 1, "max_tokens_per_doc": 8, "rank_fields": ["text"],
        "unknown_field": True,
    }, timeout=TIMEOUT)  # fmt: skip
    assert cohere.status_code == 200
    assert cohere.json()["model"] == "rerank-v3.5"  # echoed, not used to pick a model
    got = [(r["index"], r["relevance_score"]) for r in cohere.json()["results"]]
    assert [i for i, _ in got] == [i for i, _ in kirag_order[:TOP_N]]
    assert [s for _, s in got] == pytest.approx([s for _, s in kirag_order[:TOP_N]], abs=1e-5)
    tei = httpx.post(f"{server.url}/rerank", json={
        "query": QUERY, "texts": PASSAGES, "raw_scores": True, "truncate": True,
        "truncation_direction": "Left",
    }, timeout=TIMEOUT).json()  # fmt: skip
    assert [(r["index"]) for r in tei] == [i for i, _ in kirag_order]
    assert [r["score"] for r in tei] == pytest.approx([s for _, s in kirag_order], abs=1e-5)
