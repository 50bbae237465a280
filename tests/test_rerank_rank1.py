"""Rank1 against its reference behaviour, with the real SmolLM2-135M GGUF through llama.cpp and
transformers: the exact prompt, P(true) math, stop strings, the rethink fallback, the 0.5 last
resort, truncation, caching/resume, and whole-run reranking."""

from __future__ import annotations

import json
import math

import pytest
from kirag.rerank import rank1_scoring as rs
from kirag.rerank.cache import ScoreCache
from kirag.rerank.rank1 import Rank1Reranker
from kirag.retrieval.fusion import fuse_with_first_stage

from kirag.errors import InputError
from kirag.io.docstore import DocStore
from kirag.llm.base import Generation
from kirag.types import Document, Hit, Query

QUERY = "Who wrote Animal Farm?"


def test_prompt_is_exactly_the_reference():
    assert rs.build_prompt("q?", "Title text.") == (
        "Determine if the following passage is relevant to the query. Answer only with 'true' or 'false'.\n"
        "Query: q?\nPassage: Title text.\n<think>"
    )
    assert rs.passage_text({"title": "Paris", "text": "is a city."}) == "Paris is a city."
    assert rs.passage_text(Document("d", "no title")) == "no title"
    assert rs.query_with_instruction("q", "Be strict.") == "q Be strict."
    assert rs.query_with_instruction("q", "q") == "q"
    assert rs.query_with_instruction("q", dataset_prompt="Find FILL_QUERY_HERE now") == "Find q now"


def test_p_true_math():
    assert rs.p_true({1: math.log(0.3), 2: math.log(0.1)}, 1, 2) == pytest.approx(0.75)
    assert rs.p_true({1: -1000.0, 2: -1001.0}, 1, 2) == pytest.approx(
        1 / (1 + math.exp(-1))
    )  # stable
    assert rs.p_true({1: -1.0}, 1, 2) is None
    assert rs.p_true({1: float("-inf"), 2: -1.0}, 1, 2) is None


@pytest.mark.parametrize(
    ("reasoning", "cleaned"),
    [
        ("The passage names Orwell. It is relevant", "The passage names Orwell."),
        ("Relevant!  ", "Relevant!"),
        ("no punctuation at all", "no punctuation at all"),
        ("", ""),
    ],
)
def test_rethink_cleanup_follows_the_reference(reasoning, cleaned):
    assert rs.clean_for_rethink(reasoning) == cleaned
    assert rs.forced_prompt("P", reasoning) == f"P\n{cleaned}\n</think>"


@pytest.fixture(scope="module", params=["llamacpp", "exact_llamacpp", "transformers"])
def engine(request):
    return request.getfixturevalue(f"{request.param}_engine")


def _tolerance(engine) -> float:
    """Exact engines score a pair the same whatever else is batched with it; llama.cpp's batched
    sequences move the Q4_1 P(true) with how the tokens were packed (measured on 48 pairs with
    P(true) 0.02-0.13: median 0.004, max 0.025 from one prompt at a time)."""
    return 5e-2 if getattr(engine, "reuse_prefix", False) else 1e-6


@pytest.fixture(scope="module")
def docs(enwiki_slice_docs):
    by_id = {d.id: d for d in enwiki_slice_docs}
    return [by_id[i] for i in ("Animal_Farm#0", "Aristotle#0", "Alabama#0")]


def _manual_forced(engine, query, doc, reasoning=""):
    prompt = rs.build_prompt(query, rs.passage_text(doc))
    logprobs = engine.next_token_logprobs(
        [rs.forced_prompt(prompt, reasoning)], [" true", " false"]
    )[0]
    return rs.p_true(logprobs, " true", " false")


def test_budget_zero_scores_at_once(engine, docs):
    reranker = Rank1Reranker(engine=engine, thinking_budget=0)
    hits = reranker.rerank(QUERY, docs)
    for hit in hits:
        doc = next(d for d in docs if d.id == hit.doc_id)
        assert hit.score == pytest.approx(
            _manual_forced(engine, QUERY, doc), abs=_tolerance(engine)
        )
        assert hit.metadata["fallback"] == "none" and hit.metadata["reasoning"] == ""
        assert 0.0 < hit.score < 1.0
    assert [h.rank for h in hits] == [1, 2, 3] and hits[0].score >= hits[-1].score


def test_unfinished_thoughts_take_the_rethink_fallback(engine, docs):
    reranker = Rank1Reranker(engine=engine, thinking_budget=6)  # too short to reach </think>
    hits = reranker.rerank(QUERY, docs[:2])
    for hit in hits:
        doc = next(d for d in docs if d.id == hit.doc_id)
        assert hit.metadata["fallback"] == "rethink" and hit.metadata["thinking_tokens"] <= 6
        expected = _manual_forced(engine, QUERY, doc, hit.metadata["reasoning"])
        assert hit.score == pytest.approx(expected, abs=_tolerance(engine))


THOUGHT = "Is the passage relevant, true or false? The answer is"


class FinishedThinking:
    """The real engine, made to finish its thought with an answer (SmolLM2 never emits
    </think> itself, and after "</think>" neither " true" nor " false" is in its top 20). The
    final log-probs are the real model's after THOUGHT, where both are."""

    def __init__(self, engine):
        self.engine = engine
        for name in (
            "name",
            "model_id",
            "context_length",
            "token_ids",
            "count_tokens",
            "truncate",
            "next_token_logprobs",
        ):
            setattr(self, name, getattr(engine, name))

    def generate_detailed(self, prompts, max_tokens, stop=None):
        out = []
        for prompt in prompts:
            real = self.engine.generate_detailed([prompt + THOUGHT], 1)[0]
            self.final = real.final_logprobs
            out.append(Generation(THOUGHT, [1, 2, 3], real.final_logprobs, "stop", "</think> true"))
        return out


def test_a_finished_thought_is_scored_from_the_final_position(llamacpp_engine, docs):
    fake = FinishedThinking(llamacpp_engine)
    reranker = Rank1Reranker(engine=fake, thinking_budget=64)
    hit = reranker.rerank(QUERY, docs[:1])[0]
    final = fake.final
    true_id, false_id = (
        llamacpp_engine.token_ids(" true")[0],
        llamacpp_engine.token_ids(" false")[0],
    )
    assert true_id in final and false_id in final  # both in the top 20 there
    assert hit.metadata["fallback"] == "none"
    assert hit.score == pytest.approx(rs.p_true(final, true_id, false_id), abs=1e-9)


class Garbage:
    """An engine whose model emits garbage and whose forced answer has no true/false mass."""

    name, model_id, context_length = "garbage", "garbage", 4096

    def __init__(self, engine):
        self.token_ids, self.count_tokens, self.truncate = (
            engine.token_ids,
            engine.count_tokens,
            engine.truncate,
        )

    def generate_detailed(self, prompts, max_tokens, stop=None):
        return [Generation("\x00\ufffd<<<>>> ]]]", [7], {7: 0.0}, "length") for _ in prompts]

    def next_token_logprobs(self, prompts, candidates):
        return [{c: float("-inf") for c in candidates} for _ in prompts]


def test_garbage_never_crashes_a_batch_and_falls_back_to_half(llamacpp_engine, docs):
    reranker = Rank1Reranker(engine=Garbage(llamacpp_engine), thinking_budget=16, batch_size=2)
    hits = reranker.rerank(QUERY, docs)
    assert [h.score for h in hits] == [0.5, 0.5, 0.5]
    assert {h.metadata["fallback"] for h in hits} == {"default"}
    assert [h.doc_id for h in hits] == [d.id for d in docs]  # ties keep the first-stage order
    assert reranker.fallbacks["default"] == 3


def test_overlong_passages_are_truncated_with_a_count(caplog):
    pytest.importorskip("llama_cpp")
    from kirag.llm.llamacpp_engine import LlamaCppEngine
    from kirag.models import packaged_path

    small = LlamaCppEngine(str(packaged_path("smollm2-135m")), context_length=256)
    reranker = Rank1Reranker(engine=small, thinking_budget=0)
    long_doc = Document("long", "Orwell wrote many essays. " * 200, "George Orwell")
    hit = reranker.rerank(QUERY, [long_doc, Document("short", "Animal Farm is by Orwell.")])
    assert reranker.truncated_passages == 1
    assert next(h for h in hit if h.doc_id == "long").metadata["truncated"] is True
    assert "truncated to fit" in caplog.text


def test_without_prefix_reuse_llamacpp_is_bit_identical_in_any_order(exact_llamacpp_engine, docs):
    exact = exact_llamacpp_engine
    forward = Rank1Reranker(engine=exact, thinking_budget=0).rerank(QUERY, docs)
    backward = Rank1Reranker(engine=exact, thinking_budget=0).rerank(QUERY, list(reversed(docs)))
    assert {h.doc_id: h.score for h in forward} == {h.doc_id: h.score for h in backward}


def test_batch_size_and_llamacpp_prefix_reuse(smollm2_gguf, llamacpp_engine, docs):
    from kirag.llm.llamacpp_engine import LlamaCppEngine

    exact = LlamaCppEngine(str(smollm2_gguf), reuse_prefix=False)
    one = Rank1Reranker(engine=exact, thinking_budget=8, batch_size=1).rerank(QUERY, docs)
    three = Rank1Reranker(engine=exact, thinking_budget=8, batch_size=3).rerank(QUERY, docs)
    assert [(h.doc_id, h.score) for h in one] == [(h.doc_id, h.score) for h in three]
    # batched sequences with KV-prefix reuse (the default, faster) move P(true) a little
    fast = {
        h.doc_id: h.score
        for h in Rank1Reranker(engine=llamacpp_engine, thinking_budget=8, batch_size=3).rerank(
            QUERY, docs
        )
    }
    worst = max(abs(fast[h.doc_id] - h.score) for h in one)
    assert worst < 0.05, worst


class Counting:
    def __init__(self, engine):
        self.engine, self.calls = engine, 0
        for name in ("name", "model_id", "context_length", "token_ids", "count_tokens", "truncate"):
            setattr(self, name, getattr(engine, name))

    def generate_detailed(self, prompts, max_tokens, stop=None):
        self.calls += len(prompts)
        return self.engine.generate_detailed(prompts, max_tokens, stop)

    def next_token_logprobs(self, prompts, candidates):
        self.calls += len(prompts)
        return self.engine.next_token_logprobs(prompts, candidates)


def test_cache_resumes_and_is_keyed_by_configuration(tmp_path, llamacpp_engine, docs):
    path = tmp_path / "scores.jsonl"
    counting = Counting(llamacpp_engine)
    first = Rank1Reranker(engine=counting, thinking_budget=0, cache=path).rerank(QUERY, docs)
    calls = counting.calls
    again = Rank1Reranker(engine=counting, thinking_budget=0, cache=path).rerank(QUERY, docs)
    assert counting.calls == calls  # everything came from the cache
    assert [(h.doc_id, h.score) for h in again] == [(h.doc_id, h.score) for h in first]
    Rank1Reranker(engine=counting, thinking_budget=4, cache=path).rerank(QUERY, docs[:1])
    assert counting.calls > calls  # another budget is another configuration
    with open(path, "a") as fh:
        fh.write('{"key": "half-writ')  # a crash in the middle of a line
    cache = ScoreCache(path)
    assert cache.ignored_lines == 1 and len(cache) == 4
    cache.put_many([("k", {"p_true": 0.1})])
    assert ScoreCache(path).get("k") == {"key": "k", "p_true": 0.1}


def test_rerank_run_reads_passages_and_keeps_first_stage_scores(
    tmp_path, llamacpp_engine, enwiki_slice_docs
):
    store = DocStore.build(tmp_path / "docs.sqlite", enwiki_slice_docs)
    run = {
        "q1": [Hit("Aristotle#0", 9.0, 1), Hit("Animal_Farm#0", 8.0, 2), Hit("Alabama#0", 7.0, 3)]
    }
    reranker = Rank1Reranker(engine=llamacpp_engine, thinking_budget=0)
    out = reranker.rerank_run(run, {"q1": Query("q1", QUERY)}, store, k=2)
    assert len(out["q1"]) == 2 and {h.doc_id for h in out["q1"]} == {"Aristotle#0", "Animal_Farm#0"}
    top = out["q1"][0]
    assert {"first_stage_score", "first_stage_rank", "p_true", "reasoning", "fallback"} <= set(
        top.metadata
    )
    with pytest.raises(InputError, match="not in the topics"):
        reranker.rerank_run({"zz": run["q1"]}, {"q1": Query("q1", QUERY)}, store)
    with pytest.raises(InputError, match="not in the corpus"):
        reranker.rerank_run({"q1": [Hit("Nope#1", 1.0, 1)]}, {"q1": Query("q1", QUERY)}, store)


def test_fusion_with_the_first_stage():
    reranked = [
        Hit("b", 0.9, 1, metadata={"first_stage_score": 1.0, "first_stage_rank": 3}),
        Hit("a", 0.1, 2, metadata={"first_stage_score": 10.0, "first_stage_rank": 1}),
        Hit("c", 0.0, 3, metadata={"first_stage_score": 5.0, "first_stage_rank": 2}),
    ]
    assert [h.doc_id for h in fuse_with_first_stage(reranked, "interpolate", 1.0)] == [
        "b",
        "a",
        "c",
    ]
    assert [h.doc_id for h in fuse_with_first_stage(reranked, "interpolate", 0.0)] == [
        "a",
        "c",
        "b",
    ]
    fused = fuse_with_first_stage(reranked, "interpolate", 0.5)
    assert fused[0].score == pytest.approx(0.5 * (1 / 0.9 * 0.1) + 0.5 * 1.0)
    assert fused[0].metadata["rerank_score"] == 0.1
    assert next(h.doc_id for h in fuse_with_first_stage(reranked, "rrf", 0.2)) == "a"
    with pytest.raises(ValueError):
        fuse_with_first_stage(reranked, "interpolate", 1.5)


def test_cross_encoder_with_a_tiny_model_built_here(tiny_cross_encoder, enwiki_slice_docs):
    from kirag.rerank.cross_encoder import CrossEncoderReranker

    folder = tiny_cross_encoder
    reranker = CrossEncoderReranker(str(folder), batch_size=2)
    docs = enwiki_slice_docs[:5]
    hits = reranker.rerank(QUERY, docs, k=3)
    scores = reranker.predict([(QUERY, rs.passage_text(d)) for d in docs])
    assert [h.score for h in hits] == sorted(scores, reverse=True)[:3]
    assert reranker.predict([(QUERY, rs.passage_text(docs[0]))]) == [scores[0]]  # deterministic


def test_rerank_command_end_to_end(tmp_path, enwiki_slice, capsys):
    pytest.importorskip("llama_cpp")
    from kirag.eval.runs import read_run

    from kirag.cli import main

    index = tmp_path / "bm25"
    assert main(["-q", "index", "bm25", "--corpus", str(enwiki_slice), "--index", str(index)]) == 0
    topics = tmp_path / "topics.tsv"
    topics.write_text("q1\tWho wrote Animal Farm?\nq2\tWhich king was taught by Aristotle?\n")
    run = tmp_path / "bm25.trec"
    assert (
        main(
            [
                "-q",
                "search",
                "--index",
                str(index),
                "--topics",
                str(topics),
                "--output",
                str(run),
                "--k",
                "10",
            ]
        )
        == 0
    )
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q1 0 Animal_Farm#0 1\nq2 0 Aristotle#1 1\n")
    out = tmp_path / "rank1.trec"
    args = [
        "-q",
        "rerank",
        "--run",
        str(run),
        "--topics",
        str(topics),
        "--index",
        str(index),
        "--engine",
        "llamacpp",
        "--thinking-budget",
        "0",
        "--k",
        "4",
        "--output",
        str(out),
        "--explanations",
        str(tmp_path / "why.jsonl"),
        "--qrels",
        str(qrels),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "first stage" in printed and "reranked" in printed
    reranked = read_run(out)
    assert set(reranked) == {"q1", "q2"} and all(len(h) == 4 for h in reranked.values())
    why = [json.loads(line) for line in (tmp_path / "why.jsonl").read_text().splitlines()]
    assert len(why) == 8 and {"p_true", "reasoning", "fallback", "first_stage_rank"} <= set(why[0])
    config = json.loads((tmp_path / "rank1.trec.config.json").read_text())
    assert config["results"]["pairs"] == 8 and "effect" in config["results"]
    assert len((tmp_path / "rank1.trec.scores.jsonl").read_text().splitlines()) == 8
    # a second run finds every pair in the cache
    assert main([*args[:-2], "--fusion", "interpolate", "--fusion-weight", "0.3"]) == 0
    assert len((tmp_path / "rank1.trec.scores.jsonl").read_text().splitlines()) == 8
