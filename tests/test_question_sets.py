"""The hand-written multi-hop question sets over the bundled Wikipedia sample (dev and test,
made by benchmarks/questions/split.py): format, unique ids, gold passages that exist and span two
articles, answers stated in the gold passages, no overlap with the 31 bundled questions, and a
split that the seeded script reproduces."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from kirag.eval.datasets import detect_qa_format, load_kirag_questions

from kirag.io.corpus import bundled_corpus_path, read_corpus

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "kirag" / "data"
BUNDLED = DATA / "multihop_enwiki.jsonl"
SPLITS = {"dev": DATA / "multihop_enwiki_dev.jsonl", "test": DATA / "multihop_enwiki_test.jsonl"}
FIELDS = ("id", "question", "answers", "supporting_ids", "type")
TYPES = {"bridge", "comparison"}
YES_NO = {"yes", "no"}


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def read_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def passages() -> dict:
    """id -> (title, title + text) of every passage of the bundled sample, as retrievers read it."""
    return {d.id: (d.title, d.contents) for d in read_corpus(bundled_corpus_path("enwiki-sample"))}


@pytest.fixture(scope="module")
def new_questions() -> list[dict]:
    return [q for path in SPLITS.values() for q in read_records(path)]


@pytest.fixture(scope="module")
def split_script():
    path = ROOT / "benchmarks" / "questions" / "split.py"
    spec = importlib.util.spec_from_file_location("question_split", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_format_and_loader(new_questions):
    for path in SPLITS.values():
        assert detect_qa_format(path) == "kirag"
        assert [q.id for q in load_kirag_questions(path)] == [q["id"] for q in read_records(path)]
    for q in new_questions:
        assert tuple(q) == FIELDS, q["id"]
        assert q["type"] in TYPES, q["id"]
        assert q["question"].strip().endswith("?"), q["id"]
        assert q["answers"] and all(isinstance(a, str) and a.strip() for a in q["answers"]), q["id"]
        assert len(set(q["answers"])) == len(q["answers"]), q["id"]


def test_ids_unique_across_all_three_files(new_questions):
    ids = [q["id"] for q in read_records(BUNDLED)] + [q["id"] for q in new_questions]
    assert [i for i, n in Counter(ids).items() if n > 1] == []


def test_support_passages_exist_and_span_two_articles(new_questions, passages):
    for q in new_questions:
        support = q["supporting_ids"]
        assert 2 <= len(support) <= 3 and len(set(support)) == len(support), q["id"]
        missing = [s for s in support if s not in passages]
        assert missing == [], q["id"]
        assert len({passages[s][0] for s in support}) >= 2, q["id"]


def test_answers_are_stated_in_the_support_passages(new_questions, passages):
    for q in new_questions:
        if q["type"] == "comparison" and normalise(q["answers"][0]) in YES_NO:
            assert {normalise(a) for a in q["answers"]} <= YES_NO, q["id"]
            continue
        text = normalise(" ".join(passages[s][1] for s in q["supporting_ids"]))
        assert any(normalise(a) in text for a in q["answers"]), q["id"]


def test_yes_no_questions_are_at_most_a_fifth_of_the_comparisons(new_questions):
    comparisons = [q for q in new_questions if q["type"] == "comparison"]
    yes_no = [q for q in comparisons if normalise(q["answers"][0]) in YES_NO]
    assert len(yes_no) <= 0.2 * len(comparisons)


def test_no_overlap_with_the_bundled_questions(new_questions):
    bundled = read_records(BUNDLED)
    texts = {normalise(q["question"]) for q in bundled}
    supports = {frozenset(q["supporting_ids"]) for q in bundled}
    new_texts = [normalise(q["question"]) for q in new_questions]
    assert len(set(new_texts)) == len(new_texts)
    for q in new_questions:
        assert normalise(q["question"]) not in texts, q["id"]
        assert frozenset(q["supporting_ids"]) not in supports, q["id"]


def test_questions_spread_over_many_articles(new_questions, passages):
    titles = {passages[s][0] for q in new_questions for s in q["supporting_ids"]}
    assert len(titles) >= 50
    assert Counter(q["type"] for q in new_questions).keys() == TYPES


def test_split_is_the_seeded_scripts_output(split_script, new_questions):
    assert split_script.main(["--check"]) == 0
    splits = split_script.split_all()
    assert {name: read_records(path) for name, path in SPLITS.items()} == splits
    for qtype in TYPES:
        dev = sum(q["type"] == qtype for q in splits["dev"])
        total = sum(q["type"] == qtype for q in new_questions)
        assert 0.5 <= dev / total <= 0.7, qtype
