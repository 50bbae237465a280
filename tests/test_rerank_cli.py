"""`kirag rerank` on a streamed corpus file: a crash halfway keeps what was scored, the re-run
scores only the rest and gives the same run; bad runs fail with a clear error. Real SmolLM2 GGUF
through llama.cpp, budget 0 (fast)."""

from __future__ import annotations

import json

import pytest
from kirag.eval.runs import read_run_scores
from kirag.rerank.rank1 import Rank1Reranker

from kirag.cli import main

RUN = [
    ("q1", ["Aristotle#0", "Animal_Farm#0", "Alabama#0", "Animal_Farm#1"]),
    ("q2", ["Alabama#0", "Aristotle#1", "Aristotle#0", "Animal_Farm#0"]),
]


@pytest.fixture
def inputs(tmp_path, llamacpp_engine):
    topics = tmp_path / "topics.tsv"
    topics.write_text("q1\tWho wrote Animal Farm?\nq2\tWhich king was taught by Aristotle?\n")
    run = tmp_path / "first.trec"
    run.write_text(
        "".join(
            f"{qid} Q0 {doc} {rank} {10.0 - rank} bm25\n"
            for qid, docs in RUN
            for rank, doc in enumerate(docs, 1)
        )
    )
    return topics, run


def _args(topics, run, corpus, out):
    return [
        "-q",
        "rerank",
        "--run",
        str(run),
        "--topics",
        str(topics),
        "--corpus",
        str(corpus),
        "--engine",
        "llamacpp",
        "--thinking-budget",
        "0",
        "--batch-size",
        "2",
        "--k",
        "4",
        "--output",
        str(out),
    ]


class Crash(RuntimeError):
    pass


def test_a_crash_halfway_keeps_what_was_scored_and_the_rerun_scores_the_rest(
    tmp_path, inputs, enwiki_slice, monkeypatch
):
    topics, run = inputs
    out = tmp_path / "rank1.trec"
    cache = tmp_path / "rank1.trec.scores.jsonl"
    real = Rank1Reranker._score_prompts
    scored: list[int] = []

    def crash_on_third_batch(self, prompts):
        if len(scored) == 2:
            raise Crash("the machine went away")
        scored.append(len(prompts))
        return real(self, prompts)

    monkeypatch.setattr(Rank1Reranker, "_score_prompts", crash_on_third_batch)
    with pytest.raises(Crash):
        main(_args(topics, run, enwiki_slice, out))
    assert not out.exists()  # no half-written run
    kept = [json.loads(line) for line in cache.read_text().splitlines()]
    assert len(kept) == 4 == sum(scored)  # two batches of two, flushed as they went

    monkeypatch.setattr(
        Rank1Reranker, "_score_prompts", lambda self, p: scored.append(len(p)) or real(self, p)
    )
    scored.clear()
    assert main(_args(topics, run, enwiki_slice, out)) == 0
    assert sum(scored) == 4  # only the pairs the crash left unscored
    assert len(cache.read_text().splitlines()) == 8

    resumed = read_run_scores(out)
    out.unlink()
    cache.unlink()
    scored.clear()
    assert main(_args(topics, run, enwiki_slice, out)) == 0
    assert sum(scored) == 8
    # resuming gives exactly the uninterrupted run: fixed batches, each from an empty KV cache
    uninterrupted = read_run_scores(out)
    assert set(uninterrupted) == {"q1", "q2"}
    assert resumed == uninterrupted
    config = json.loads((tmp_path / "rank1.trec.config.json").read_text())
    assert config["settings"]["corpus"] == str(enwiki_slice) and config["results"]["pairs"] == 8


def test_bad_runs_fail_clearly(tmp_path, inputs, enwiki_slice, capsys):
    topics, _ = inputs
    out = tmp_path / "rank1.trec"
    missing = tmp_path / "missing-doc.trec"
    missing.write_text("q1 Q0 No_Such_Passage#0 1 3.0 bm25\n")
    assert main(_args(topics, missing, enwiki_slice, out)) == 2
    assert "No_Such_Passage#0" in capsys.readouterr().err
    unknown = tmp_path / "unknown-qid.trec"
    unknown.write_text("q9 Q0 Alabama#0 1 3.0 bm25\n")
    assert main(_args(topics, unknown, enwiki_slice, out)) == 2
    assert "not in the topics" in capsys.readouterr().err
    assert not out.exists()


def test_show_prints_the_reasoning_of_the_top_hit(tmp_path, inputs, enwiki_slice, capsys):
    topics, run = inputs
    args = _args(topics, run, enwiki_slice, tmp_path / "rank1.trec")
    args[args.index("--thinking-budget") + 1] = "8"
    assert main([*args, "--show", "1", "--explanations", str(tmp_path / "why.jsonl")]) == 0
    printed = capsys.readouterr().out
    why = [json.loads(line) for line in (tmp_path / "why.jsonl").read_text().splitlines()]
    for qid in ("q1", "q2"):
        top = next(r for r in why if r["qid"] == qid and r["rank"] == 1)
        assert f"#1 {top['docid']}" in printed and top["fallback"] in printed
        assert top["reasoning"] and " ".join(top["reasoning"].split())[:40] in " ".join(
            printed.split()
        )
    assert "Who wrote Animal Farm?" in printed


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--quantize", "int8"], "unknown GGUF type 'int8' for the llama.cpp engine"),
        (["--dtype", "float16"], "dtype is an option of transformers or vllm"),
        (["--quantization", "awq"], "vllm (AWQ/GPTQ/FP8 checkpoints on a GPU)"),
        (["--tensor-parallel", "2"], "tensor_parallel_size is an option of vllm"),
    ],
)
def test_options_of_another_engine_are_refused_clearly(
    tmp_path, inputs, enwiki_slice, capsys, flags, message
):
    topics, run = inputs
    out = tmp_path / "rank1.trec"
    assert main([*_args(topics, run, enwiki_slice, out), *flags]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_rerankers_come_from_one_registry():
    """`kirag rerank --reranker` and `kirag answer --rerank` build rerankers through
    load_reranker; an option a reranker does not take is an error naming what it takes."""
    from kirag.rerank.factory import RERANKERS, load_reranker, register_reranker, reranker_options

    from kirag.cli import build_parser
    from kirag.errors import KiragError

    rerank = build_parser()._subparsers._group_actions[0].choices["rerank"]
    reranker_flag = next(a for a in rerank._actions if a.dest == "reranker")
    assert list(reranker_flag.choices) == ["rank1", "cross-encoder"]
    assert list(RERANKERS) == ["rank1", "cross-encoder", "fused"]  # fused: `--fusion` on the CLI
    assert "thinking_budget" in reranker_options("rank1")
    assert "thinking_budget" not in reranker_options("cross-encoder")
    with pytest.raises(KiragError, match="does not take thinking_budget"):
        load_reranker("cross-encoder", "some/model", thinking_budget=8)
    with pytest.raises(KiragError, match="unknown reranker 'nope'"):
        load_reranker("nope")
    with pytest.raises(ValueError, match="module:Class"):
        register_reranker("mine", "kirag.rerank.rank1.Rank1Reranker")
