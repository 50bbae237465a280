"""A `kirag rerank` killed with SIGKILL and run again writes exactly the run an uninterrupted
rerank writes, byte for byte: batches are fixed by the whole run's pairs and every batch starts
from an empty llama.cpp KV cache. Real processes, real SmolLM2 GGUF, real BM25 index, budget 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="the llamacpp extra (llama-cpp-python) is not installed")

TOPICS = (
    "q1\tWho wrote Animal Farm?\n"
    "q2\tWhich king was taught by Aristotle?\n"
    "q3\tWhat is the capital of Alabama?\n"
)
HITS = 6
PAIRS = 3 * HITS


def _kirag(*args: str, **kwargs) -> subprocess.Popen:
    code = "import sys; from kirag.cli import main; sys.exit(main(sys.argv[1:]))"
    env = dict(os.environ, KIRAG_PROGRESS="0")
    return subprocess.Popen([sys.executable, "-c", code, "-q", *args], env=env, **kwargs)


def _ok(*args: str) -> None:
    process = _kirag(*args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out


@pytest.fixture(scope="module")
def first_stage(tmp_path_factory, enwiki_slice_docs):
    folder = tmp_path_factory.mktemp("resume")
    corpus, index = folder / "corpus.jsonl", folder / "bm25"
    topics, run = folder / "topics.tsv", folder / "bm25.trec"
    # the real passages, cut to their first 200 characters: short prompts keep the test fast
    corpus.write_text(
        "".join(
            json.dumps({"id": d.id, "contents": d.text[:200]}) + "\n" for d in enwiki_slice_docs
        )
    )
    topics.write_text(TOPICS)
    _ok("index", "bm25", "--corpus", str(corpus), "--index", str(index))
    _ok(
        "search",
        "--index",
        str(index),
        "--topics",
        str(topics),
        "--k",
        str(HITS),
        "--output",
        str(run),
    )
    assert len(run.read_text().splitlines()) == PAIRS
    return index, topics, run


def _rerank_args(index: Path, topics: Path, run: Path, out: Path) -> list[str]:
    return [
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
        "--batch-size",
        "4",
        "--k",
        str(HITS),
        "--output",
        str(out),
    ]


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


@pytest.mark.llm
def test_a_killed_rerank_resumes_to_the_uninterrupted_run_byte_for_byte(tmp_path, first_stage):
    index, topics, run = first_stage
    whole = tmp_path / "whole.trec"
    _ok(*_rerank_args(index, topics, run, whole))

    out = tmp_path / "resumed.trec"
    cache = tmp_path / "resumed.trec.scores.jsonl"
    process = _kirag(
        *_rerank_args(index, topics, run, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    # kill mid-query: batches of 4 and 2 per query, so 7..12 lines leave q2 or q3 half-scored
    while _lines(cache) < 7 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = _lines(cache)
    assert process.returncode == -signal.SIGKILL, process.stderr.read()
    assert 0 < killed_at < PAIRS, killed_at  # a real interruption: some pairs scored, not all
    assert not out.exists()

    _ok(*_rerank_args(index, topics, run, out))
    assert _lines(cache) == PAIRS
    assert out.read_bytes() == whole.read_bytes()
