"""Long model work says what it will cost once it has started: one line on stderr with the rate
measured on its own first items, the time of the rest and the settings that make it faster.
Real work: Rank1 on the packaged SmolLM2 (2 pairs, a tiny budget), spaCy extraction, MiniLM
encoding into shards."""

from __future__ import annotations

import re

import pytest

from kirag.core.cost import CostMeter, estimate, format_duration

ESTIMATE_LINE = re.compile(r"^kirag: .*: \d+ of \d+ \w+s in .*; the other \d+: .*\. Faster: .+$")


def cost_lines(stderr: str) -> list[str]:
    """The estimate lines of stderr (after any progress bar's clearing codes on that line)."""
    return [line[line.index("kirag: ") :] for line in stderr.splitlines() if "kirag: " in line]


@pytest.fixture
def progress_on(monkeypatch):
    """Progress (and so the estimate) on, as on a terminal; the suite runs with it off."""
    from kirag.core.progress import set_progress

    monkeypatch.setenv("KIRAG_PROGRESS", "1")
    set_progress(True)
    yield
    set_progress(None)


def test_durations_and_estimates_are_plain_arithmetic():
    assert [format_duration(s) for s in (0.2, 40, 719, 3600 * 3 + 300)] == [
        "1 s",
        "40 s",
        "12 min",
        "3 h 05 min",
    ]
    found = estimate(done=2, total=100, elapsed_s=100.0, units_done=6700, remaining_units=98 * 3533)
    assert found.rate == pytest.approx(67.0)
    assert found.remaining_s == pytest.approx(98 * 3533 / 67.0)


def test_the_meter_says_once_after_the_first_items_and_only_with_progress_on(progress_on):
    said, now = [], [0.0]
    meter = CostMeter("Rank1 reranking", 100, "pair", "a lower --thinking-budget", "token",
                      per_item=3533, clock=lambda: now[0], write=said.append)  # fmt: skip
    now[0] = 105.0
    meter.update(2, 7066)
    meter.update(1, 3533)
    assert len(said) == 1 and ESTIMATE_LINE.match(said[0]), said
    assert "2 of 100 pairs in 2 min (67.3 tokens/s)" in said[0]
    assert "the other 98: up to 1 h 26 min at 3533 tokens per pair" in said[0]
    assert said[0].endswith("Faster: a lower --thinking-budget")
    from kirag.core.progress import set_progress

    set_progress(False)
    quiet = []
    CostMeter("x", 3, "doc", "y", write=quiet.append).update(1)
    assert quiet == []  # --quiet / KIRAG_PROGRESS=0: nothing
    last = []
    set_progress(True)
    CostMeter("x", 1, "doc", "y", write=last.append).update(1)
    assert last == []  # nothing left to estimate


@pytest.mark.llm
def test_rank1_rerank_estimates_from_its_first_pair(progress_on, enwiki_bm25, tmp_path, capsys):
    """`kirag rerank` with default flags but a tiny budget, on 2 pairs, one per batch: the
    thinking-token rate of the first pair gives the estimate of the second."""
    from kirag.cli import main

    topics = tmp_path / "t.tsv"
    topics.write_text("q1\tWho wrote Animal Farm?\n")
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 Animal_Farm#0 1 2.0 bm25\nq1 Q0 Aristotle#0 2 1.0 bm25\n")
    argv = ["rerank", "--run", str(run), "--topics", str(topics), "--index", str(enwiki_bm25),
            "--output", str(tmp_path / "r.trec"), "--engine", "llamacpp", "--thinking-budget", "8",
            "--batch-size", "1"]  # fmt: skip
    assert main(argv) == 0
    lines = cost_lines(capsys.readouterr().err)
    assert len(lines) == 1 and ESTIMATE_LINE.match(lines[0]), lines
    assert lines[0].startswith("kirag: Rank1 reranking: 1 of 2 pairs in ")
    assert "tokens/s" in lines[0] and "up to " in lines[0] and "at 8 tokens per pair" in lines[0]
    assert "--thinking-budget" in lines[0] and "--k" in lines[0]


@pytest.mark.llm
def test_rank1_rerank_calls_say_it_once_per_reranker(progress_on, enwiki_slice_docs, capsys):
    from kirag.rerank.rank1 import Rank1Reranker

    reranker = Rank1Reranker(engine="llamacpp", thinking_budget=4, batch_size=1)
    reranker.rerank("Who wrote Animal Farm?", enwiki_slice_docs[:2])
    reranker.rerank("Which king was taught by Aristotle?", enwiki_slice_docs[2:4])
    lines = cost_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "1 of 2 pairs" in lines[0], lines


def test_extraction_estimates_from_its_first_batch(
    progress_on, enwiki_slice_docs, tmp_path, capsys
):
    from kirag.knowledge.extraction import TripleStore, extract_corpus, make_extractor

    store = TripleStore(tmp_path / "cache.sqlite")
    extract_corpus(enwiki_slice_docs[:6], make_extractor("spacy"), store, batch_size=2)
    lines = cost_lines(capsys.readouterr().err)
    assert len(lines) == 1 and ESTIMATE_LINE.match(lines[0]), lines
    assert lines[0].startswith("kirag: triple extraction (spacy): 2 of 6 passages in ")
    assert "passages/s" in lines[0] and "the other 4: about " in lines[0]
    # a rerun finds everything cached: nothing to estimate
    extract_corpus(enwiki_slice_docs[:6], make_extractor("spacy"), store, batch_size=2)
    assert cost_lines(capsys.readouterr().err) == []


def test_encoding_into_shards_estimates_from_its_first_shard(progress_on, tmp_path, capsys):
    from kirag.retrieval.dense import Encoder, encode_to_shards

    texts = [f"passage number {i} about Animal Farm" for i in range(6)]
    encode_to_shards(Encoder("minilm", device="cpu"), texts, tmp_path / "work", 6, shard_size=2)
    lines = cost_lines(capsys.readouterr().err)
    assert len(lines) == 1 and ESTIMATE_LINE.match(lines[0]), lines
    assert lines[0].startswith("kirag: encoding passages: 2 of 6 docs in ")
    assert "--encoder-backend" in lines[0]
