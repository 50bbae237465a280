"""`kirag serve` as a real process on a loopback port: the HTTP API against the Python API,
the rerank shapes through real clients (httpx, the Cohere SDK), limits, the API key, 503s under
overload, a bounded load test, kill -9 and restart, graceful shutdown, the MCP tools over stdio,
and the page in Debian's chromium."""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from browser_support import PageWatch, browser, screenshot  # noqa: E402, F401 (fixture)

from kirag.bench.serve import ServerProcess, http_load, kirag_command, rss_mb  # noqa: E402

# a server or index build in the fixtures, model calls: over 30 s on 2 cores
pytestmark = pytest.mark.slow

QUESTION = "In which city was the philosopher who taught Alexander the Great born?"
QUERIES = ["Who wrote Animal Farm?", "Aristotle teacher of Alexander", "capital of Alabama"]
PASSAGES = [
    "Animal Farm is a novella by George Orwell.",
    "Alabama is a state in the southeastern United States.",
    "Orwell wrote the book between November 1943 and February 1944.",
]
RANK1 = ["--reranker", "rank1", "--engine", "llamacpp", "--thinking-budget", "0"]
# model calls on a shared 2-core machine can take seconds each: generous, never infinite
MODEL_TIMEOUT = 300
http = httpx.Client(timeout=MODEL_TIMEOUT)


@pytest.fixture(scope="module")
def server(enwiki_bm25, small_triple_index):
    """Everything loaded: BM25, KiRAG, Rank1 (SmolLM2 on llama.cpp); a model queue of 2."""
    args = ["--index", str(enwiki_bm25), "--kirag", str(small_triple_index), *RANK1,
            "--model-queue", "2", "--search-queue", "16", "--max-k", "50"]  # fmt: skip
    with ServerProcess(args) as running:
        yield running


@pytest.fixture(scope="module")
def search_server(enwiki_bm25):
    """Search only: starts in a few seconds."""
    with ServerProcess(["--index", str(enwiki_bm25), "--search-queue", "8"]) as running:
        yield running


def test_health_openapi_and_docs(server):
    health = http.get(f"{server.url}/health").json()
    assert health["search"] and health["rerank"] and health["answer"]
    paths = http.get(f"{server.url}/openapi.json").json()["paths"]
    assert {"/search", "/answer", "/rerank", "/v1/rerank", "/health"} <= set(paths)
    assert "swagger" in http.get(f"{server.url}/docs").text.lower()


def test_search_is_the_python_api(server, enwiki_bm25):
    from kirag.retrieval.factory import load_retriever

    retriever = load_retriever(enwiki_bm25)
    for query in QUERIES:
        body = http.post(f"{server.url}/search", json={"query": query, "k": 5}).json()
        direct = retriever.search(query, 5, with_documents=True)
        assert [h["id"] for h in body["hits"]] == [h.doc_id for h in direct]
        assert [h["score"] for h in body["hits"]] == pytest.approx([h.score for h in direct])
        assert body["hits"][0]["text"] == direct[0].document.text


def test_rerank_shapes_agree_with_the_reranker(server):
    from kirag.rerank.factory import load_reranker

    from kirag.types import Document

    query = "Who wrote Animal Farm?"
    tei = http.post(
        f"{server.url}/rerank",
        json={"query": query, "texts": PASSAGES, "return_text": True},
        timeout=MODEL_TIMEOUT,
    )
    assert tei.status_code == 200
    rows = tei.json()
    assert sorted(r["index"] for r in rows) == [0, 1, 2]
    assert all(r["text"] == PASSAGES[r["index"]] for r in rows)
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    cohere = http.post(f"{server.url}/v1/rerank", json={
        "model": "rank1", "query": query, "documents": PASSAGES, "top_n": 2, "return_documents": True,
    }, timeout=MODEL_TIMEOUT).json()  # fmt: skip
    assert [r["index"] for r in cohere["results"]] == [r["index"] for r in rows[:2]]
    assert cohere["results"][0]["document"]["text"] == PASSAGES[rows[0]["index"]]
    reranker = load_reranker("rank1", "smollm2-135m", engine="llamacpp", thinking_budget=0)
    direct = reranker.rerank(query, [Document(str(i), t) for i, t in enumerate(PASSAGES)])
    assert [int(h.doc_id) for h in direct] == [r["index"] for r in rows]
    assert [h.score for h in direct] == pytest.approx([r["score"] for r in rows], abs=1e-4)


def test_the_cohere_sdk_talks_to_v1_and_v2_rerank(server):
    cohere = pytest.importorskip("cohere")
    query = "Who wrote Animal Farm?"
    rows = http.post(f"{server.url}/rerank", json={"query": query, "texts": PASSAGES}).json()
    v2 = cohere.ClientV2(api_key="unused", base_url=server.url, timeout=MODEL_TIMEOUT)
    response = v2.rerank(model="rank1", query=query, documents=PASSAGES, top_n=2)
    assert [r.index for r in response.results] == [r["index"] for r in rows[:2]]
    assert [r.relevance_score for r in response.results] == pytest.approx(
        [r["score"] for r in rows[:2]]
    )
    v1 = cohere.Client(api_key="unused", base_url=server.url, timeout=MODEL_TIMEOUT)
    response = v1.rerank(
        model="rank1", query=query, documents=PASSAGES, top_n=2, return_documents=True
    )
    assert [r.index for r in response.results] == [r["index"] for r in rows[:2]]
    assert response.results[0].document.text == PASSAGES[rows[0]["index"]]


def test_llama_index_tei_reranker_talks_to_rerank(server):
    """LlamaIndex's text-embeddings-inference node postprocessor, pointed at the server."""
    tei = pytest.importorskip("llama_index.postprocessor.tei_rerank")
    from llama_index.core.schema import NodeWithScore, TextNode

    query = "Who wrote Animal Farm?"
    reranker = tei.TextEmbeddingInference(base_url=server.url, top_n=2, timeout=MODEL_TIMEOUT)
    nodes = [NodeWithScore(node=TextNode(text=t, id_=str(i))) for i, t in enumerate(PASSAGES)]
    kept = reranker.postprocess_nodes(nodes, query_str=query)
    rows = http.post(f"{server.url}/rerank", json={"query": query, "texts": PASSAGES}).json()
    assert [n.node.id_ for n in kept] == [str(r["index"]) for r in rows[:2]]
    assert [n.score for n in kept] == pytest.approx([r["score"] for r in rows[:2]])


def test_answer_and_its_stream(server, small_triple_index):
    from kirag.rag.pipeline import KiRAG

    body = http.post(
        f"{server.url}/answer", json={"question": QUESTION, "k": 5}, timeout=MODEL_TIMEOUT
    ).json()
    direct = KiRAG(small_triple_index).answer(QUESTION, k=5)
    assert body["answer"] == direct.answer
    assert [d["id"] for d in body["documents"]] == [h.doc_id for h in direct.hits]
    assert [s["head"] for s in body["chains"][0]["steps"]] == [
        t.head for t in direct.result.best_chain.triples
    ]
    events = []
    with http.stream("POST", f"{server.url}/answer", json={"question": QUESTION, "k": 5, "stream": True},
                      timeout=MODEL_TIMEOUT) as response:  # fmt: skip
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line[5:])))
    names = [n for n, _ in events]
    assert names[-1] == "answer" and names.count("turn") >= 1
    assert events[-1][1]["answer"] == body["answer"]
    turns = [e for n, e in events if n == "turn"]
    assert [t["turn"] for t in turns] == list(range(1, len(turns) + 1))


def test_limits_answer_4xx_naming_the_limit(server):
    over = http.post(f"{server.url}/search", json={"query": "x", "k": 51})
    assert over.status_code == 422 and "50" in over.json()["error"]
    empty = http.post(f"{server.url}/search", json={"query": "  ", "k": 5})
    assert empty.status_code == 422
    many = http.post(f"{server.url}/rerank", json={"query": "x", "texts": ["t"] * 101})
    assert many.status_code == 422 and "100" in many.json()["error"]
    huge = http.post(f"{server.url}/search", content=b'{"query": "' + b"a" * 1_100_000 + b'"}',
                      headers={"content-type": "application/json"})  # fmt: skip
    assert huge.status_code == 413
    # a query that looks like a path is only text: searched, never opened
    path_like = http.post(f"{server.url}/search", json={"query": "/etc/passwd", "k": 3})
    assert path_like.status_code == 200
    assert http.get(f"{server.url}/assets/..%2F..%2Fsettings.py").status_code == 404


def test_api_key_from_the_environment(enwiki_bm25):
    with ServerProcess(["--index", str(enwiki_bm25)], env={"KIRAG_API_KEY": "s3cret"}) as keyed:
        body = {"query": "Animal Farm", "k": 2}
        assert http.post(f"{keyed.url}/search", json=body).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert http.post(f"{keyed.url}/search", json=body, headers=wrong).status_code == 401
        right = {"Authorization": "Bearer s3cret"}
        assert http.post(f"{keyed.url}/search", json=body, headers=right).status_code == 200
        assert (
            http.post(f"{keyed.url}/search", json=body, headers={"X-API-Key": "s3cret"}).status_code
            == 200
        )
        health = http.get(f"{keyed.url}/health").json()
        assert health["api_key_required"] is True and "s3cret" not in json.dumps(health)
        assert health["limits"]["max_k"] == 100


def test_overload_gets_503_with_retry_after_never_500(server):
    bodies = [{"query": q, "documents": PASSAGES} for q in QUERIES]
    within = http_load(server.url, "/v1/rerank", bodies, 2, 3, timeout_s=MODEL_TIMEOUT)
    assert set(within["statuses"]) == {"200"}, within
    over = http_load(server.url, "/v1/rerank", bodies, 8, 3, timeout_s=MODEL_TIMEOUT)
    assert set(over["statuses"]) <= {"200", "503"} and over["statuses"].get("503", 0) > 0, over
    print("rerank overload (8 clients, model queue 2, 3 s):", over)


def test_bounded_load_on_search(search_server):
    """8 clients for 5 s (under the search queue of 8): no error, p50/p99, RSS flat."""
    bodies = [{"query": q, "k": 10} for q in QUERIES * 5]
    http_load(search_server.url, "/search", bodies, clients=2, duration_s=1)  # warm-up
    before = rss_mb(search_server.pid)
    result = http_load(search_server.url, "/search", bodies, clients=8, duration_s=5)
    after = rss_mb(search_server.pid)
    print("search load:", result, "RSS MB", before, "->", after)
    assert set(result["statuses"]) == {"200"} and result["requests"] > 20, result
    assert result["p99_ms"] < 5000
    assert after < before * 1.25 + 20, (before, after)


def _fingerprint(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_kill_9_under_load_then_restart_gives_the_same_answers(enwiki_bm25):
    files = _fingerprint(enwiki_bm25)
    server = ServerProcess(["--index", str(enwiki_bm25)]).start()
    answers = [http.post(f"{server.url}/search", json={"query": q, "k": 5}).json() for q in QUERIES]
    bodies = [{"query": q, "k": 10} for q in QUERIES]
    load = threading.Thread(target=http_load, args=(server.url, "/search", bodies, 4, 3, 5))
    load.start()
    time.sleep(1)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    load.join(30)
    assert not load.is_alive()
    restarted = ServerProcess(["--index", str(enwiki_bm25)], port=server.port).start()
    try:
        again = [
            http.post(f"{restarted.url}/search", json={"query": q, "k": 5}).json() for q in QUERIES
        ]
        assert again == answers
    finally:
        restarted.__exit__(None, None, None)
        server.__exit__(None, None, None)
    assert _fingerprint(enwiki_bm25) == files  # serving wrote nothing into the index


def test_graceful_shutdown_finishes_the_request_in_flight(enwiki_bm25):
    """SIGTERM while a rerank runs: the request is answered, then the process ends (uvicorn
    re-raises the signal after its graceful shutdown: the status says SIGTERM, not a crash)."""
    server = ServerProcess(["--index", str(enwiki_bm25), *RANK1]).start()
    result = {}

    def ask():
        result["response"] = http.post(
            f"{server.url}/rerank", json={"query": "Animal Farm", "texts": PASSAGES}
        )

    thread = threading.Thread(target=ask)
    thread.start()
    deadline = time.monotonic() + 30
    while http.get(f"{server.url}/health").json()["queues"]["model"]["inside"] == 0:
        assert time.monotonic() < deadline, "the rerank never started"
        time.sleep(0.05)
    assert server.stop(timeout=MODEL_TIMEOUT) in (0, -signal.SIGTERM)
    thread.join(MODEL_TIMEOUT)
    assert result["response"].status_code == 200 and len(result["response"].json()) == 3
    server.__exit__(None, None, None)


def test_mcp_tools_over_stdio(enwiki_bm25):
    import asyncio
    import concurrent.futures

    mcp = pytest.importorskip("mcp")
    from kirag.retrieval.factory import load_retriever

    command = kirag_command("-q", "serve", "--index", str(enwiki_bm25), "--mcp")

    async def session():
        params = mcp.StdioServerParameters(command=command[0], args=command[1:])
        async with mcp.Client(params) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("search", {"query": "Who wrote Animal Farm?", "k": 3})
            return tools, result

    # a thread of its own: an earlier test's sync Playwright may still hold this thread's loop
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        tools, result = pool.submit(asyncio.run, session()).result()
    assert tools == {"search"}
    hits = result.structured_content["hits"]
    direct = load_retriever(enwiki_bm25).search("Who wrote Animal Farm?", 3)
    assert [h["id"] for h in hits] == [h.doc_id for h in direct]


def test_the_page_asks_and_shows_the_chain(server, browser):  # noqa: F811
    watch = PageWatch(browser, block_network=False)
    page = watch.page
    page.goto(server.url + "/")
    page.fill("#question", QUESTION)
    page.click("#ask button")
    page.wait_for_selector("#answer section.kirag-item", timeout=MODEL_TIMEOUT * 1000)
    assert page.locator("#turns svg.chain-graph").count() >= 1
    assert page.locator("#answer svg.chain-graph").count() >= 1
    screenshot(page, "serve-ask.png")
    page.fill("#query", "Who wrote Animal Farm?")
    page.click("#search button")
    page.wait_for_selector("#hit-table")
    assert page.locator("#hit-table tr").count() == 1 + 5
    page.fill("#rerank-query", "Who wrote Animal Farm?")
    page.fill("#passages", "\n".join(PASSAGES))
    page.click("#rerank button")
    page.wait_for_selector("#rerank-table")
    assert page.locator("#rerank-table tr").count() == 1 + 3
    assert watch.errors == []
    assert all(url.startswith(server.url) for url in watch.requests), watch.requests
    watch.close()


def test_serve_refuses_bad_flags_in_one_line(capsys, enwiki_bm25):
    from kirag.cli import main

    assert main(["serve"]) == 2
    assert "nothing to serve" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # the argument layer, before anything loads
        main(["serve", "--index", str(enwiki_bm25), "--model-queue", "0"])
    assert exited.value.code == 2
    assert "argument --model-queue: must be an integer >= 1" in capsys.readouterr().err
    assert sys.executable  # the server runs with this interpreter (kirag_command)
