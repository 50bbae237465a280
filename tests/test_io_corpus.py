"""Corpus readers on the real Wikipedia passages, and every bad-input case the readers name."""

from __future__ import annotations

import bz2
import gzip
import json
import types

import pytest
from conftest import jsonl, write_lines

from kirag.errors import InputError
from kirag.io.corpus import bundled_corpus_path, read_corpus


def test_bundled_sample_streams_all_real_passages():
    reader = read_corpus("enwiki-sample")
    assert reader.path == bundled_corpus_path("enwiki-sample")
    iterator = iter(reader)
    assert isinstance(iterator, types.GeneratorType)  # a stream, not a list
    first = next(iterator)
    assert first.id == "Anarchism#0" and first.title == "Anarchism"
    assert first.text.startswith("Anarchism is a political philosophy")
    assert 1 + sum(1 for _ in iterator) == 4996


def test_slice_can_be_read_twice(enwiki_slice):
    reader = read_corpus(enwiki_slice)
    assert [d.id for d in reader] == [d.id for d in reader]
    assert reader.report.read == 314


def test_beir_jsonl_and_metadata(tmp_path):
    path = write_lines(
        tmp_path / "corpus.jsonl",
        jsonl(
            [
                {
                    "_id": "4983",
                    "title": "Microstructural development",
                    "text": "Alterations of...",
                    "metadata": {"url": "u"},
                }
            ]
        ),
    )
    (doc,) = read_corpus(path)
    assert (doc.id, doc.title, doc.text, doc.metadata) == (
        "4983",
        "Microstructural development",
        "Alterations of...",
        {"url": "u"},
    )


def test_beir_folder_reads_corpus_jsonl(tmp_path):
    write_lines(tmp_path / "corpus.jsonl", jsonl([{"_id": 1, "title": "", "text": "x y"}]))
    write_lines(tmp_path / "queries.jsonl", jsonl([{"_id": "q", "text": "not a doc"}]))
    assert [d.id for d in read_corpus(tmp_path)] == ["1"]


def test_jsoncollection_folder_reads_every_file_in_order(tmp_path):
    write_lines(tmp_path / "b.jsonl", jsonl([{"id": "b", "contents": "bee"}]))
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"id": "a", "contents": "ay"}) + "\n")
    assert [d.id for d in read_corpus(tmp_path)] == ["a", "b"]


def test_bz2_files_and_folders(tmp_path):
    (tmp_path / "c.jsonl.bz2").write_bytes(bz2.compress(b'{"id": "c", "contents": "sea"}\n'))
    write_lines(tmp_path / "b.jsonl", jsonl([{"id": "b", "contents": "bee"}]))
    assert [d.id for d in read_corpus(tmp_path)] == ["b", "c"]
    (tmp_path / "collection.tsv").write_bytes(bz2.compress(b"0\tfirst\n1\tsecond\n"))
    assert [d.text for d in read_corpus(tmp_path / "collection.tsv")] == ["first", "second"]


def test_msmarco_tsv_and_gzip_whatever_the_name(tmp_path):
    raw = "0\tThe presence of communication amid scientific minds\n1\tThe Manhattan Project\n"
    with gzip.open(tmp_path / "collection.tsv", "wt") as fh:  # gzip content, plain name
        fh.write(raw)
    docs = list(read_corpus(tmp_path / "collection.tsv"))
    assert [(d.id, d.text) for d in docs] == [
        ("0", "The presence of communication amid scientific minds"),
        ("1", "The Manhattan Project"),
    ]


def test_tsv_with_header_maps_columns(tmp_path):
    path = write_lines(tmp_path / "psgs.tsv", ["id\ttext\ttitle", "1\tAaron is a prophet\tAaron"])
    (doc,) = read_corpus(path)
    assert (doc.id, doc.text, doc.title) == ("1", "Aaron is a prophet", "Aaron")


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        (['{"id": "a", "contents": "x"}', '{"id": "b", "contents": '], 2, "malformed JSON"),
        (
            ['{"id": "a", "contents": "x"}', '{"id": "a", "contents": "y"}'],
            2,
            "duplicate document id 'a'",
        ),
        (['{"id": "  ", "contents": "x"}'], 1, "empty document id"),
        (['{"id": "a", "body2": "x"}'], 1, "no text field"),
        (['{"contents": "x"}'], 1, "no id field"),
        (['{"id": "a", "contents": "   "}'], 1, "empty text and no title"),
        (['["a", "b"]'], 1, "expected a JSON object"),
        (
            ['{"id": "a", "contents": "x"}', b'{"id": "b", "contents": "caf\xe9"}'],
            2,
            "not valid utf-8 (byte 0xe9",
        ),
    ],
)
def test_bad_jsonl_lines_name_file_and_line(tmp_path, lines, line, message):
    path = write_lines(tmp_path / "bad.jsonl", lines)
    with pytest.raises(InputError) as err:
        list(read_corpus(path))
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert message in str(err.value)
    assert (err.value.path, err.value.line) == (str(path), line)


def test_bad_tsv_column_count(tmp_path):
    path = write_lines(tmp_path / "c.tsv", ["1\tok", "2\tone\ttoo many"])
    with pytest.raises(InputError, match=r"c\.tsv:2: expected 2 tab-separated columns"):
        list(read_corpus(path))


def test_skip_mode_counts_and_reports_bad_lines(tmp_path, caplog):
    path = write_lines(
        tmp_path / "mixed.jsonl",
        [
            '{"id": "a", "contents": "fine"}',
            "{broken",
            '{"id": "a", "contents": "dup"}',
            b'{"id": "c", "contents": "\xff"}',
            '{"id": "d", "contents": "fine too"}',
        ],
    )
    reader = read_corpus(path, on_error="skip")
    assert [d.id for d in reader] == ["a", "d"]
    assert (reader.report.read, reader.report.skipped) == (2, 3)
    assert reader.report.problems[0].startswith(f"{path}:2:")
    assert "skipped 3 bad lines" in caplog.text


def test_missing_corpus_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no such corpus"):
        read_corpus(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="holds no corpus files"):
        read_corpus(tmp_path)
