"""The openai engine against real servers on loopback: llama-cpp-python's own OpenAI-compatible
server over the packaged SmolLM2 GGUF (one per session), compared with the in-process llama.cpp
engine on the same file; a proxy of our own for a 429 storm and for a crash mid-rerank; the CLI
commands (rerank, index triples, answer in every mode) through the server."""

from __future__ import annotations

import json
import logging

import pytest
from openai_servers import API_KEY, LlamaServer, StormProxy

from kirag.cli import main
from kirag.errors import ServerAuthError, ServerError, SettingsError
from kirag.llm.base import chat_generate
from kirag.types import Document

pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is not installed")

ALIAS = "smollm2-135m"
KEY_ENV = "KIRAG_TEST_API_KEY"
BUDGET = 24  # a small thinking budget: the mechanics, quickly

# The binding's server reuses the KV prefix of its previous request and evaluates the rest of a
# prompt in other batches, which moves llama.cpp's quantized arithmetic enough to flip a greedy
# near-tie (measured: 4-5 of 8 reader prompts): with it, a greedy text depended on the requests
# before. The tests' server runs with --no-prefix-reuse (every prompt from an empty cache, as
# the in-process exact_llamacpp_engine); the equality tests also send their requests one at a
# time, and one worker runs this file in file order.
pytestmark = pytest.mark.xdist_group("openai_server")


@pytest.fixture(scope="session")
def llama_server(smollm2_gguf):
    server = LlamaServer(smollm2_gguf, ALIAS, prefix_reuse=False).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, API_KEY)


def remote(url: str, **options):
    from kirag.llm.openai_engine import OpenAIEngine

    options.setdefault("api_key_env", KEY_ENV)
    return OpenAIEngine(ALIAS, base_url=url, context_length=4096, **options)


@pytest.fixture(scope="session")
def served(llama_server):
    import os

    os.environ[KEY_ENV] = API_KEY
    engine = remote(llama_server.url, concurrency=2)
    yield engine
    engine.close()


def pairs(docs, n=2):
    questions = ["Who wrote Animal Farm?", "Which king was taught by Aristotle?"]
    return [(questions[i % 2], docs[i * 7].contents) for i in range(n)]


# ---------------------------------------------------------------- the engine seam


def test_the_server_is_identified_and_tokens_match_the_gguf(served, exact_llamacpp_engine):
    assert served.server.kind == "llama-cpp-python"
    assert served.server.version and served.server.model == ALIAS
    text = "Determine if the following passage is relevant. Answer only with 'true'."
    assert served.token_ids(text) == exact_llamacpp_engine.token_ids(text)
    assert served.token_ids(" true") == exact_llamacpp_engine.token_ids(" true")
    ids = exact_llamacpp_engine.token_ids(text)
    assert served.detokenize(ids) == exact_llamacpp_engine.detokenize(ids)


def test_rank1_scores_and_reasoning_equal_the_in_process_engine(
    served, exact_llamacpp_engine, enwiki_slice_docs
):
    from kirag.rerank.rank1 import Rank1Reranker

    chosen = pairs(enwiki_slice_docs)
    local = Rank1Reranker(engine=exact_llamacpp_engine, thinking_budget=BUDGET).score(chosen)
    reranker = Rank1Reranker(engine=served, thinking_budget=BUDGET)
    assert reranker.settings["server"]["kind"] == "llama-cpp-python"
    scores = reranker.score(chosen)
    for mine, theirs in zip(scores, local, strict=True):
        assert mine.reasoning == theirs.reasoning
        assert mine.fallback == theirs.fallback
        assert mine.thinking_tokens == theirs.thinking_tokens
        # the server evaluates prompts with its own batching: quantized arithmetic moves a little
        assert mine.p_true == pytest.approx(theirs.p_true, abs=0.02)


def test_direct_scoring_and_the_forced_answer_equal_the_in_process_engine(
    served, exact_llamacpp_engine, enwiki_slice_docs
):
    from kirag.rerank import rank1_scoring as rs

    prompts = [rs.forced_prompt(rs.build_prompt(q, p), "") for q, p in pairs(enwiki_slice_docs)]
    # " true"/" false" are in the top 20; " zebra" is not: asked for by echoing it
    candidates = [rs.TRUE_TOKEN, rs.FALSE_TOKEN, " zebra"]
    local = exact_llamacpp_engine.next_token_logprobs(prompts, candidates)
    mine = served.next_token_logprobs(prompts, candidates)
    for row, expected in zip(mine, local, strict=True):
        # the server reuses the KV cache of its previous request: the rest of the prompt is
        # evaluated in another batch, which moves quantized arithmetic a little (cold: ~1e-6)
        for candidate in candidates:
            assert row[candidate] == pytest.approx(expected[candidate], abs=0.15)
        p_true = rs.p_true(row, rs.TRUE_TOKEN, rs.FALSE_TOKEN)
        assert p_true == pytest.approx(rs.p_true(expected, rs.TRUE_TOKEN, rs.FALSE_TOKEN), abs=0.01)


def test_chats_equal_the_in_process_engine_at_temperature_zero(
    llama_server, exact_llamacpp_engine, enwiki_slice_docs
):
    from kirag.rag.reader import ReferenceReader

    docs = enwiki_slice_docs[:3]
    questions = ["Who wrote Animal Farm?", "Where was Aristotle born?"]
    local = ReferenceReader(exact_llamacpp_engine).answer(questions, [docs, docs[1:]])
    one_at_a_time = remote(llama_server.url, concurrency=1)  # a fixed order (see pytestmark)
    try:
        assert ReferenceReader(one_at_a_time).answer(questions, [docs, docs[1:]]) == local
    finally:
        one_at_a_time.close()


def test_prefilled_turns_use_the_local_template_where_the_server_cannot_continue(
    llama_server, smollm2_gguf, exact_llamacpp_engine
):
    messages = [
        {"role": "system", "content": "Answer by reasoning step-by-step."},
        {"role": "user", "content": "Question: Who wrote Animal Farm?"},
    ]
    plain = remote(llama_server.url)
    with pytest.raises(SettingsError, match="as tokenizer"):  # the parameter, not a flag
        chat_generate(plain, [messages], 16, prefills=["Thought: "])
    templated = remote(llama_server.url, tokenizer=str(smollm2_gguf))
    expected = chat_generate(exact_llamacpp_engine, [messages], 16, prefills=["Thought: "])
    assert chat_generate(templated, [messages], 16, prefills=["Thought: "]) == expected


# ---------------------------------------------------------------- a network client


def test_wrong_url_model_and_key_are_one_line_errors(llama_server, monkeypatch, caplog):
    from kirag.llm.server_client import ServerClient

    with pytest.raises(ServerError, match=r"cannot be reached.*check base_url"):
        remote("http://127.0.0.1:9/v1", retries=0)
    with pytest.raises(ServerError, match=r"does not serve model 'nope'.*smollm2-135m"):
        from kirag.llm.openai_engine import OpenAIEngine

        OpenAIEngine("nope", base_url=llama_server.url, api_key_env=KEY_ENV)
    monkeypatch.setenv(KEY_ENV, "wrong-key")
    with caplog.at_level(logging.DEBUG), pytest.raises(ServerAuthError) as error:
        remote(llama_server.url)
    assert KEY_ENV in str(error.value) and "wrong-key" not in str(error.value)
    assert "\n" not in str(error.value)
    assert "wrong-key" not in caplog.text
    with pytest.raises(ServerError, match="check base_url"):  # the root, not the API: 404
        ServerClient(llama_server.url.removesuffix("/v1") + "/nothing", API_KEY, 5, 0).get("x")


def test_a_429_storm_is_retried_and_no_pair_is_lost(llama_server, served, enwiki_slice_docs):
    from kirag.rerank.rank1 import Rank1Reranker

    chosen = pairs(enwiki_slice_docs, 3)
    expected = Rank1Reranker(engine=served, thinking_budget=0).score(chosen)
    proxy = StormProxy(llama_server.url.removesuffix("/v1"))
    try:
        engine = remote(proxy.url, concurrency=3, retries=8)
        proxy.storm = 6  # from now on: the next 6 requests are refused
        scores = Rank1Reranker(engine=engine, thinking_budget=0).score(chosen)
        assert proxy.refused == 6 and engine.client.retried == 6
        assert [s.p_true for s in scores] == pytest.approx([s.p_true for s in expected], abs=1e-6)
        engine.close()
    finally:
        proxy.close()


# ---------------------------------------------------------------- the commands


def _rerank_args(tmp_path, corpus, url, out, *extra):
    topics = tmp_path / "topics.tsv"
    topics.write_text("q1\tWho wrote Animal Farm?\nq2\tWhich king was taught by Aristotle?\n")
    run = tmp_path / "first.trec"
    docs = [["Aristotle#0", "Animal_Farm#0", "Alabama#0"], ["Alabama#0", "Aristotle#1", "Aristotle#0"]]  # fmt: skip
    run.write_text(
        "".join(
            f"{q} Q0 {d} {r} {10 - r} bm25\n"
            for q, ds in zip(("q1", "q2"), docs, strict=True)
            for r, d in enumerate(ds, 1)
        )
    )
    return [
        "-q", "rerank", "--run", str(run), "--topics", str(topics), "--corpus", str(corpus),
        "--engine", "openai", "--base-url", url, "--api-key-env", KEY_ENV, "--model", ALIAS,
        "--thinking-budget", "0", "--batch-size", "2", "--k", "3", "--context", "4096",
        "--output", str(out), *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_rerank_resumes_after_the_server_is_killed_mid_run(
    tmp_path, smollm2_gguf, enwiki_slice, capsys
):
    from kirag.eval.runs import read_run_scores

    server = LlamaServer(smollm2_gguf, ALIAS).start()  # with prefix reuse: the noise below
    proxy = StormProxy(server.url.removesuffix("/v1"))
    try:
        full = tmp_path / "full.trec"
        assert main(_rerank_args(tmp_path, enwiki_slice, proxy.url, full)) == 0
        config = json.loads(full.with_name("full.trec.config.json").read_text())
        assert config["settings"]["servers"][0]["kind"] == "llama-cpp-python"
        assert API_KEY not in json.dumps(config)

        # a fresh server, killed after a few requests: the run stops with one clear line
        server.stop()
        server.start()
        # killed at the 5th completion request: within the second or third batch of two pairs
        proxy.forwarded, proxy.kill_after, proxy.on_kill = 0, 4, server.kill
        out = tmp_path / "resumed.trec"
        args = _rerank_args(tmp_path, enwiki_slice, proxy.url, out, "--retries", "1")
        capsys.readouterr()
        assert main(args) == 2
        error = capsys.readouterr().err
        assert "kirag rerank: error:" in error and "Traceback" not in error
        cache = tmp_path / "resumed.trec.scores.jsonl"
        kept = len(cache.read_text().splitlines())
        assert 0 < kept < 6

        server.start()  # the same port: the same command picks up where it stopped
        proxy.kill_after = None
        assert main(args) == 0
        assert len(cache.read_text().splitlines()) == 6
        resumed, uninterrupted = read_run_scores(out), read_run_scores(full)
        assert {q: set(d) for q, d in resumed.items()} == {
            q: set(d) for q, d in uninterrupted.items()
        }
        # the pairs scored before the kill come from the cache unchanged; those scored after the
        # restart equal the uninterrupted run's within the server's noise: llama-cpp-python's
        # server reuses the KV cache of its previous request, and after a restart the first
        # prompt is evaluated whole (cold), which moves quantized arithmetic a little
        for qid, scores in uninterrupted.items():
            for doc, score in scores.items():
                assert resumed[qid][doc] == pytest.approx(score, abs=0.01)
    finally:
        proxy.close()
        server.stop()


# two passages of the slice in which the tiny model writes triples with the llm prompt
# (short outputs: the whole 256-token budget is rarely used)
TRIPLE_DOCS = ("Anarchism#0", "Autism#0")


def _corpus(path, documents):
    path.write_text(
        "".join(
            json.dumps({"id": d.id, "title": d.title, "contents": d.text}) + "\n" for d in documents
        )
    )
    return path


def _server_flags(url: str) -> list[str]:
    return ["--engine", "openai", "--base-url", url, "--api-key-env", KEY_ENV]


@pytest.fixture(scope="module")
def served_triple_index(tmp_path_factory, llama_server, enwiki_slice_docs):
    """`kirag index triples --extractor llm --engine openai` over TRIPLE_DOCS, built once; the
    documents, the index folder and its run config."""
    import os

    os.environ[KEY_ENV] = API_KEY
    by_id = {d.id: d for d in enwiki_slice_docs}
    documents = [by_id[i] for i in TRIPLE_DOCS]
    folder = tmp_path_factory.mktemp("served-triples")
    index = folder / "triples"
    args = ["-q", "index", "triples", "--corpus", str(_corpus(folder / "tiny.jsonl", documents)),
            "--index", str(index), "--extractor", "llm", "--model", ALIAS,
            "--concurrency", "1",  # requests in a fixed order (see pytestmark)
            *_server_flags(llama_server.url)]  # fmt: skip
    assert main(args) == 0
    return documents, index, json.loads((index / "kirag-config.json").read_text())


@pytest.mark.slow
def test_cli_llm_extraction_equals_the_in_process_engine(
    served_triple_index, exact_llamacpp_engine
):
    from kirag.knowledge.extraction import TripleStore
    from kirag.knowledge.llm_extractor import LLMTripleExtractor

    documents, _, config = served_triple_index
    assert config["settings"]["servers"][0]["model"] == ALIAS
    assert config["settings"]["servers"][0]["kind"] == "llama-cpp-python"
    assert API_KEY not in json.dumps(config)
    results = config["results"]
    assert results["extracted"] == len(documents) and results["triples"] > 0
    store = TripleStore(results["cache"])
    served = {doc: [(t["head"], t["relation"], t["tail"]) for t in json.loads(payload)]
              for doc, _, _, payload in store.dump()}  # fmt: skip
    store.close()
    # the CLI's extractor settings (its default budget of 256 new tokens) on the GGUF in-process
    local = LLMTripleExtractor(exact_llamacpp_engine).extract(documents)
    expected = {d.id: [(t.head, t.relation, t.tail) for t in ts] for d, ts in zip(documents, local, strict=True)}  # fmt: skip
    assert served == expected
    assert all(served.values())  # real triples in every document, e.g. <Autism; is; ...>


@pytest.mark.slow
def test_cli_reference_extraction_is_the_in_process_one(
    tmp_path, llama_server, served, exact_llamacpp_engine, enwiki_slice_docs, capsys
):
    """The reference's prompt (instruction + demonstrations, 512 new tokens) through the server
    writes what the in-process engine writes; with this tiny model that is prose without one
    `<head; relation; tail>`, so the index build stops with one line naming what to change."""
    from kirag.knowledge.reference_extractor import ReferenceTripleExtractor

    first = enwiki_slice_docs[0]
    document = Document(first.id, first.text.split(". ")[0] + ".", first.title)  # one sentence
    mine = ReferenceTripleExtractor(served)
    theirs = ReferenceTripleExtractor(exact_llamacpp_engine, encoder=mine.selector.aligner)
    generated = [
        chat_generate(x.engine, x._conversations([document]), x.max_tokens) for x in (mine, theirs)
    ]
    assert generated[0] == generated[1] and generated[0][0].strip()
    assert mine.extract([document]) == [[]]
    args = ["-q", "index", "triples", "--corpus", str(_corpus(tmp_path / "c.jsonl", [document])),
            "--index", str(tmp_path / "idx"), "--extractor", "reference", "--model", ALIAS,
            *_server_flags(llama_server.url)]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("kirag index: error: no triples were extracted from the corpus by "
                            f"reference:openai:{ALIAS}:")  # fmt: skip
    assert "--extractor" in error


@pytest.mark.slow
def test_answer_in_every_mode_through_the_server(
    served_triple_index, llama_server, smollm2_gguf, capsys
):
    _, index, _ = served_triple_index
    server = _server_flags(llama_server.url)
    question = ["--question", "What is anarchism?"]
    for mode in (["--mode", "aligner", "--reader", ALIAS],
                 ["--mode", "llm", "--constructor", ALIAS, "--reader", ALIAS, "--turns", "1"],
                 ["--mode", "reference", "--constructor", ALIAS, "--turns", "1",
                  "--tokenizer", str(smollm2_gguf)]):  # fmt: skip
        assert main(["answer", "--index", str(index), *mode, *question, *server]) == 0
        assert "A: " in capsys.readouterr().out


@pytest.mark.slow
def test_serve_reranks_and_answers_through_the_server(served_triple_index, llama_server, served):
    """`kirag serve --engine openai` as a process: Rank1 and the KiRAG reader on the model
    server; serve's own --api-key-env guards it, --engine-api-key-env names the model server's."""
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from kirag.rerank.rank1 import Rank1Reranker

    from kirag.bench.serve import ServerProcess
    from kirag.rag.pipeline import KiRAG

    _, index, _ = served_triple_index
    serve_env = "KIRAG_TEST_SERVE_KEY"
    args = ["--kirag", str(index), "--reader", ALIAS,
            "--reranker", "rank1", "--model", ALIAS, "--thinking-budget", "0",
            "--engine", "openai", "--base-url", llama_server.url, "--engine-api-key-env", KEY_ENV,
            "--api-key-env", serve_env]  # fmt: skip
    query, texts = "Who wrote Animal Farm?", ["Animal Farm is a novella by George Orwell.",
                                              "Alabama is a state in the United States."]  # fmt: skip
    question = "What is anarchism?"
    with ServerProcess(args, env={KEY_ENV: API_KEY, serve_env: "serve-secret"}) as running:
        health = httpx.get(f"{running.url}/health").json()
        assert health["rerank"] and health["answer"]
        assert health["servers"][0] == served.server_info
        body = {"query": query, "texts": texts}
        wrong = {"Authorization": f"Bearer {API_KEY}"}  # the model server's key is not serve's
        assert httpx.post(f"{running.url}/rerank", json=body, headers=wrong).status_code == 401
        headers = {"Authorization": "Bearer serve-secret"}
        rows = httpx.post(f"{running.url}/rerank", json=body, headers=headers, timeout=300).json()
        answer = httpx.post(f"{running.url}/answer", json={"question": question, "k": 5},
                            headers=headers, timeout=300).json()  # fmt: skip
    expected = Rank1Reranker(engine=served, thinking_budget=0).score([(query, t) for t in texts])
    scores = {r["index"]: r["score"] for r in rows}
    # the same server: only its KV-cache reuse between requests moves the arithmetic
    assert [scores[i] for i in range(len(texts))] == pytest.approx(
        [s.p_true for s in expected], abs=0.02
    )
    options = {"base_url": llama_server.url, "api_key_env": KEY_ENV}
    direct = KiRAG(index, reader_model=ALIAS, engine="openai", engine_options=options)
    assert answer["answer"] == direct.answer(question, k=5).answer and answer["answer"]


def test_server_flags_need_the_openai_engine(tmp_path, enwiki_slice, capsys):
    args = _rerank_args(tmp_path, enwiki_slice, "http://127.0.0.1:9/v1", tmp_path / "o.trec")
    args[args.index("openai")] = "llamacpp"
    assert main(args) == 2
    assert "--base-url only applies with --engine openai" in capsys.readouterr().err
    args = _rerank_args(tmp_path, enwiki_slice, "http://127.0.0.1:9/v1", tmp_path / "o.trec")
    with pytest.raises(SystemExit) as exited:  # argparse refuses it, before any work
        main([*args, "--concurrency", "0"])
    assert exited.value.code == 2
    assert "argument --concurrency: must be an integer >= 1" in capsys.readouterr().err


def test_a_served_document_is_extracted_like_an_in_process_one(served, exact_llamacpp_engine):
    from kirag.knowledge.llm_extractor import LLMTripleExtractor

    doc = Document("d1", "George Orwell wrote Animal Farm in 1945.", "Animal Farm")
    local = LLMTripleExtractor(exact_llamacpp_engine, max_tokens=48).extract([doc])
    mine = LLMTripleExtractor(served, max_tokens=48).extract([doc])
    assert [t.text for t in mine[0]] == [t.text for t in local[0]]
