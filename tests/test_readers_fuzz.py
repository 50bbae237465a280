"""Property test of every file reader (corpus JSONL/TSV, topics TSV/JSONL/TREC, qrels, runs in
TREC/MS MARCO/JSONL): whatever the bytes, a reader either parses them or raises kirag's own
InputError whose message is one line starting `path:line: ` — never another exception, never an
error that leaves the user guessing where."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kirag.eval.runs import read_run, read_run_scores

from kirag.errors import InputError
from kirag.io.corpus import read_corpus
from kirag.io.json_array import iter_json_array
from kirag.io.qrels import read_qrels
from kirag.io.topics import read_topics

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# tokens that sit at the edges of what the formats allow
TOKENS = st.one_of(
    st.sampled_from(
        [
            *("q1", "d1", "Q0", "0", "1", "2", "-1", "1.5", "nan", "NaN", "inf", "-inf", "1e999"),
            *("", "a b", "a\tb", "\u00a0", "x\x1fy", "{", "}", "<top>", "</top>", "<num>"),
            *("<title>", "Number: 7", "1_0", "\u0661", "\ufeff", "\r", "\x00", "null", "true"),
        ]
    ),
    st.text(max_size=6),
)
SEPARATORS = st.sampled_from([" ", "\t", "  ", " \t"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TOKENS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TOKENS, inner, max_size=3),
    max_leaves=6,
)
KEYS = st.sampled_from(
    [
        *("id", "_id", "docid", "pid", "qid", "query_id", "contents", "text", "title", "query"),
        *("metadata", "hits", "rank", "score", "question"),
    ]
)


@st.composite
def column_line(draw) -> str:
    """A whitespace- or tab-separated line of edge-case tokens (TREC, MS MARCO, qrels, TSV)."""
    tokens = draw(st.lists(TOKENS, min_size=0, max_size=7))
    return draw(SEPARATORS).join(tokens)


@st.composite
def json_line(draw) -> str:
    """A JSON object with the keys the readers look for and arbitrary values, or broken JSON."""
    record = draw(st.dictionaries(KEYS, JSON_VALUES, max_size=5))
    if draw(st.booleans()) and "hits" not in record:
        hits = st.fixed_dictionaries(
            {"docid": JSON_VALUES, "rank": JSON_VALUES, "score": JSON_VALUES}
        )
        record["hits"] = draw(st.lists(hits, max_size=3))
    text = json.dumps(record)  # NaN and Infinity included, as Python writes them
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


LINES = st.lists(
    st.one_of(column_line(), json_line(), st.text(max_size=30)), min_size=0, max_size=6
)


@st.composite
def file_bytes(draw) -> bytes:
    """A file's bytes: edge-case lines, sometimes with raw undecodable bytes spliced in."""
    data = "\n".join(draw(LINES)).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 5)) == 0:
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(min_size=1, max_size=4)) + data[cut:]
    if draw(st.booleans()):
        data += b"\n"
    return data


def assert_parses_or_names_file_and_line(path: Path, data: bytes, read: Callable) -> None:
    path.write_bytes(data)
    try:
        result = read(path)
        if not isinstance(result, dict):
            list(result)  # streaming readers fail only when iterated
    except InputError as exc:
        message = str(exc)
        assert "\n" not in message and "\r" not in message, message
        match = re.match(rf"{re.escape(str(path))}:(\d+): \S", message)
        assert match, f"no file:line in {message!r}"
        assert 1 <= int(match.group(1)) <= data.count(b"\n") + 1, message


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


READERS: dict[str, tuple[str, Callable]] = {
    "corpus-jsonl": ("corpus.jsonl", lambda p: read_corpus(p)),
    "corpus-tsv": ("collection.tsv", lambda p: read_corpus(p)),
    "topics-tsv": ("topics.tsv", lambda p: read_topics(p, format="tsv")),
    "topics-jsonl": ("queries.jsonl", lambda p: read_topics(p, format="jsonl")),
    "topics-trec": ("topics.txt", lambda p: read_topics(p, format="trec")),
    "qrels": ("qrels.txt", read_qrels),
    "run-trec": ("run.trec", lambda p: read_run(p, format="trec")),
    "run-msmarco": ("run.tsv", lambda p: read_run(p, format="msmarco")),
    "run-jsonl": ("run.jsonl", lambda p: read_run(p, format="jsonl")),
    "run-scores-trec": ("scores.trec", lambda p: read_run_scores(p, format="trec")),
    "run-scores-msmarco": ("scores.tsv", lambda p: read_run_scores(p, format="msmarco")),
    "run-auto": ("any.run", read_run),
    "json-array": ("questions.json", lambda p: list(iter_json_array(p))),
}


@pytest.mark.parametrize("reader", READERS)
@SETTINGS
@given(data=file_bytes())
def test_every_input_parses_or_fails_on_one_line_naming_file_and_line(folder, reader, data):
    name, read = READERS[reader]
    assert_parses_or_names_file_and_line(folder / name, data, read)


@SETTINGS
@given(
    topics=st.lists(st.sampled_from(["7", "8", "9 x", ""]), min_size=1, max_size=4),
    tops=st.booleans(),
    title=st.sampled_from(["a question", "", "x\ty"]),
)
def test_trec_topics_shapes(folder, topics, tops, title):
    """TREC topic files: the block structure (with or without `<top>`), with duplicate, empty
    and spaced numbers and empty titles."""
    block = "<top>\n<num> Number: {}\n<title> {}\n</top>\n" if tops else "<num> {}\n<title> {}\n"
    text = "".join(block.format(n, title) for n in topics)
    assert_parses_or_names_file_and_line(
        folder / "trec-topics.txt", text.encode(), lambda p: read_topics(p, format="trec")
    )
