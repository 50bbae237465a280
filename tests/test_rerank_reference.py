"""Rank1 as orionw/rank1 applies it (read at commit 30585c2): its 14 per-dataset prompts byte
for byte, the query string they make (trailing newlines kept), passages with empty titles, the
score cache keyed by precision and context, the two long-passage policies, and defaults that work
together (a thinking budget larger than the context; a query too long for it). Real SmolLM2 GGUF
through llama.cpp."""

from __future__ import annotations

import hashlib
import json
import logging
from importlib import resources

import pytest
from kirag.rerank import rank1_scoring as rs
from kirag.rerank.rank1 import MIN_PASSAGE_ROOM, Rank1Reranker

from kirag.cli import main
from kirag.errors import ContextError, KiragError, UnknownPromptError
from kirag.io.corpus import read_corpus
from kirag.llm.base import CONTEXT_MARGIN
from kirag.types import Document

# sha256 of each string of the reference's PROMPT_DICT (prompts.py), computed from the file itself
REFERENCE_SHA256 = {
    "SciFact": "dfaba5f68af98a01b8cd8b90b433eb0513589360f2f18a3796449e670d076f90",
    "ClimateFEVER": "b777d8aac14d5cf0d206e9710f4037641c6487c33a182c69317b8c5a6e5497bc",
    "TRECCOVID": "05ec31997b1f2f9ffd4231625d7128326fb94f51d7dc73844bb3a1d2bd6b9f95",
    "ArguAna": "4cc892ba0f9ec3f727fb8d5908f7c823e23f0372a578177298ac49c04583f69a",
    "DBPedia": "d7233704c1263166c0c752dd6e245b147349b2fe76d0954560e069f09b2328e1",
    "FiQA2018": "3375481cc216aa9b34ea1373f037760e229f1fd97bba213c4eb1094cb9aff7b5",
    "NFCorpus": "567df6a34169237b906ebc10b6a16064bab45ef300cd1682140463e89065904f",
    "Touche2020": "1fbec2847561aa927a4458a3d51449246bf77e55db65911f36dc22f59cf85894",
    "SCIDOCS": "5ac7ed96fbb7b73e855e4d731eed55f93615b1e149c784f3294e628a8233b208",
    "BrightRetrieval_aops": "9fa52fe1f21417e012a6a1348901d70df5bde38228f2dbdb17d8df5c7a1d0bb7",
    "BrightRetrieval_theoremqa_questions": (
        "b6647ca1ac602a4ddde80827a0a1f57e77970726b4acd581131e0b96bf66efbc"
    ),
    "BrightRetrieval_leetcode": "bf07e7592e100a6458af22a6caa5f995634a71fdcba9c57cda243fa4e6eb1e71",
    "BrightRetrieval_pony": "054f74e9d323133b86e8a45245fbbfc888fa47827d4c00cd7b8c10d6bcd9ca31",
    "BrightRetrieval": "6d7557f02ea5303fe2e5bb59df929879282143a84fc02d7ac2056f0b15d2e945",
    # the reference's alias: PROMPT_DICT[theorems] = PROMPT_DICT[questions]
    "BrightRetrieval_theoremqa_theorems": (
        "b6647ca1ac602a4ddde80827a0a1f57e77970726b4acd581131e0b96bf66efbc"
    ),
}
ENDS_IN_NEWLINES = {"ClimateFEVER", "ArguAna", "DBPedia", "Touche2020", "BrightRetrieval_leetcode"}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_fourteen_dataset_prompts_are_the_reference_byte_for_byte():
    assert rs.dataset_prompt_names() == list(REFERENCE_SHA256)
    for name, digest in REFERENCE_SHA256.items():
        assert _sha(rs.dataset_prompt(name)) == digest, name
        assert rs.dataset_prompt(name.lower()) == rs.dataset_prompt(
            name
        )  # --dataset-prompt scifact
    assert {n for n in REFERENCE_SHA256 if rs.dataset_prompt(n).endswith("\n")} == ENDS_IN_NEWLINES
    # get_prompt's rule: a subtask without a prompt of its own takes the task's
    assert rs.dataset_prompt("BrightRetrieval_biology") == rs.dataset_prompt("BrightRetrieval")
    with pytest.raises(UnknownPromptError, match="SciFact"):
        rs.dataset_prompt("no-such-dataset")
    text = "Find FILL_QUERY_HERE\n"
    assert rs.resolve_dataset_prompt(text) == text and rs.resolve_dataset_prompt(None) is None
    notice = resources.files("kirag.rerank").joinpath("prompts", "LICENSE-rank1").read_text()
    assert "MIT License" in notice and "Copyright (c) 2025 Orion Weller" in notice


def test_the_query_string_keeps_the_prompts_trailing_newlines():
    prompt = rs.dataset_prompt("climatefever")
    query = rs.query_with_instruction("Sea levels rise.", dataset_prompt=prompt)
    assert query == (
        "I am looking to write an essay for and need to find evidence the supports or contradict "
        "this statement:\n\nSea levels rise.\n\nIf the passage provides information that supports "
        "or contradicts it in any way it is relevant so I can cite it.\n\n"
    )
    assert rs.build_prompt(query, "P").endswith("cite it.\n\n\nPassage: P\n<think>")
    # the reference appends the instruction first, then wraps the result in the dataset prompt
    assert rs.query_with_instruction("q ", "Be strict.", "<FILL_QUERY_HERE>\n") == (
        "<q  Be strict.>\n"
    )
    assert rs.query_with_instruction(" q ", " q") == "q"  # a repeated instruction: stripped query
    assert rs.query_with_instruction(" q ") == " q "  # no instruction: untouched


def test_an_empty_title_keeps_the_passages_leading_space(tmp_path):
    assert rs.passage_text({"title": "", "text": "x y"}) == " x y"
    assert rs.passage_text({"text": "x y"}) == "x y"
    assert rs.passage_text(Document("d", "x y", "")) == " x y"
    assert rs.passage_text(Document("d", "x y")) == "x y"
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "1", "title": "", "text": "x y"}\n{"_id": "2", "text": "z"}\n')
    first, second = read_corpus(corpus)
    assert (first.title, rs.passage_text(first)) == ("", " x y")
    assert (second.title, rs.passage_text(second)) == (None, "z")


@pytest.fixture(scope="module")
def small_engine(smollm2_gguf):
    """SmolLM2 on llama.cpp with a 256-token context, one prompt at a time (exact)."""
    pytest.importorskip("llama_cpp")
    from kirag.llm.llamacpp_engine import LlamaCppEngine

    engine = LlamaCppEngine(str(smollm2_gguf), context_length=256, reuse_prefix=False)
    yield engine
    engine.close()


def test_the_cache_key_holds_precision_and_context_length(smollm2_gguf, small_engine):
    from kirag.llm.llamacpp_engine import LlamaCppEngine

    base = Rank1Reranker(engine=small_engine, thinking_budget=0)
    assert base.settings["precision"] == small_engine.precision
    assert "kv f16" in small_engine.precision and base.settings["context_length"] == 256
    others = [
        LlamaCppEngine(str(smollm2_gguf), context_length=n, kv_type=kv)
        for n, kv in ((256, "f32"), (512, "f16"))
    ]
    try:
        prints = {Rank1Reranker(engine=e, thinking_budget=0).fingerprint for e in others}
    finally:
        for engine in others:
            engine.close()
    assert len(prints | {base.fingerprint}) == 3  # another KV precision, another context


def test_passage_policies_truncate_or_keep_the_whole_passage(small_engine):
    passage = "George Orwell wrote essays, novels and reviews for many papers. " * 15
    query = "Who wrote Animal Farm?"
    assert 150 < small_engine.count_tokens(passage) < 200
    truncate = Rank1Reranker(engine=small_engine, thinking_budget=40)
    reference = Rank1Reranker(engine=small_engine, thinking_budget=40, passage_policy="reference")
    assert truncate.settings["passage_policy"] == "truncate"
    assert reference.settings["passage_policy"] == "reference"
    assert truncate.fingerprint != reference.fingerprint
    [cut] = truncate.score([(query, passage)])
    [whole] = reference.score([(query, passage)])
    assert cut.truncated and not whole.truncated
    assert cut.fallback in ("none", "rethink") and whole.fallback in ("none", "rethink", "default")
    prompt_tokens = small_engine.count_tokens(rs.build_prompt(query, passage))
    # the reference keeps the passage; the context, not the budget, ends the thinking
    assert whole.thinking_tokens <= 256 - prompt_tokens < 40
    with pytest.raises(KiragError, match="passage_policy must be one of truncate, reference"):
        Rank1Reranker(engine=small_engine, passage_policy="keep")


def test_a_budget_larger_than_the_context_is_fitted_and_said(small_engine, caplog):
    caplog.set_level(logging.WARNING)
    fitted = Rank1Reranker(engine=small_engine)  # the reference's 8192 in a 256-token context
    overhead = small_engine.count_tokens(rs.build_prompt("", "")) + 1
    room = min(MIN_PASSAGE_ROOM, 256 // 2)
    assert fitted.thinking_budget == 256 - overhead - CONTEXT_MARGIN - room
    assert fitted.settings["thinking_budget"] == 8192
    assert fitted.settings["thinking_budget_used"] == fitted.thinking_budget
    assert "does not fit the 256-token context" in caplog.text
    kept = Rank1Reranker(engine=small_engine, passage_policy="reference")
    assert kept.thinking_budget == 8192 and "context ends thoughts earlier" in caplog.text
    with pytest.raises(ContextError, match="query 'long'"):
        fitted.check_queries({"short": "Who?", "long": "Who wrote it? " * 60})


@pytest.fixture
def sample(tmp_path, enwiki_slice):
    """A tiny BM25 index over a few bundled passages, a query and its one-hit run."""
    corpus = tmp_path / "few.jsonl"
    corpus.write_text("".join(enwiki_slice.read_text().splitlines(keepends=True)[:12]))
    index = tmp_path / "bm25"
    assert main(["-q", "index", "bm25", "--corpus", str(corpus), "--index", str(index)]) == 0
    topics = tmp_path / "topics.tsv"
    topics.write_text("q1\tWho wrote Animal Farm?\n")
    run = tmp_path / "bm25.trec"
    search = ["-q", "search", "--index", str(index), "--topics", str(topics), "--k", "1"]
    assert main([*search, "--output", str(run)]) == 0
    return run, topics, index


def test_rerank_with_default_flags_runs(sample, tmp_path, capsys, caplog):
    """`kirag rerank --run --topics --index --output`, nothing else: the 8192-token budget is
    fitted to llama.cpp's 4096-token context, and said."""
    pytest.importorskip("llama_cpp")
    run, topics, index = sample
    out = tmp_path / "rank1.trec"
    args = ["rerank", "--run", str(run), "--topics", str(topics), "--index", str(index)]
    assert main([*args, "--output", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 1
    config = json.loads((tmp_path / "rank1.trec.config.json").read_text())
    used = config["settings"]["reranker_settings"]
    assert used["context_length"] == 4096 and used["thinking_budget"] == 8192
    assert 0 < used["thinking_budget_used"] < 4096 - MIN_PASSAGE_ROOM
    assert used["passage_policy"] == "truncate" and used["precision"]
    assert "does not fit the 4096-token context" in caplog.text


def test_a_query_too_long_for_the_context_is_one_line_naming_it(sample, tmp_path, capsys):
    pytest.importorskip("llama_cpp")
    run, topics, index = sample
    topics.write_text("q1\t" + "Who wrote Animal Farm and why? " * 40 + "\n")
    out = tmp_path / "rank1.trec"
    args = ["-q", "rerank", "--run", str(run), "--topics", str(topics), "--index", str(index)]
    flags = ["--engine", "llamacpp", "--context", "256", "--thinking-budget", "0"]
    assert main([*args, *flags, "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "query 'q1'" in err and "--context" in err
    assert not out.exists() and not (tmp_path / "rank1.trec.scores.jsonl").exists()
    assert main([*args, "--dataset-prompt", "nosuch", "--output", str(out)]) == 2
    assert "unknown dataset prompt 'nosuch'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # the argument layer refuses it before any work
        main([*args, "--thinking-budget", "-1", "--output", str(out)])
    assert exited.value.code == 2
    assert "argument --thinking-budget: must be an integer >= 0" in capsys.readouterr().err


def test_precision_defaults_float16_on_a_gpu_and_float32_on_the_cpu(transformers_engine):
    from kirag.llm.transformers_engine import default_dtype

    assert default_dtype("cuda") == default_dtype("cuda:1") == "float16"  # the reference's
    assert default_dtype("cpu") == "float32"
    if transformers_engine.device == "cpu":
        assert transformers_engine.dtype == transformers_engine.precision == "float32"
    reranker = Rank1Reranker(engine=transformers_engine, thinking_budget=0)
    assert reranker.settings["precision"] == transformers_engine.precision


def test_each_prompt_of_a_batch_thinks_until_its_own_context_end(transformers_engine, monkeypatch):
    """The reference policy relies on it: vLLM ends each sequence at the context, so a long
    prompt batched with a short one must not cut the short one's generation."""
    short, long = "Animal Farm is", "Animal Farm is a novella by George Orwell, " * 4 + "which"
    length = len(transformers_engine._prompt_ids(long))
    monkeypatch.setattr(transformers_engine, "context_length", length + 3)
    first, second = transformers_engine.generate_detailed([short, long], 8)
    assert len(first.token_ids) == 8 or first.finish_reason == "eos"
    assert len(second.token_ids) == 3 or second.finish_reason == "eos"
