"""Topics and qrels readers on the real TREC / MS MARCO / BEIR files, and their bad input."""

from __future__ import annotations

import pytest
from conftest import jsonl, write_lines

from kirag.errors import InputError
from kirag.io.qrels import read_qrels
from kirag.io.topics import read_topics


def test_real_dl19_topics_and_graded_qrels(data_dir):
    topics = read_topics(data_dir / "topics.dl19-passage.txt")
    assert len(topics) == 43
    assert topics["156493"].text == "do goldfish grow"
    qrels = read_qrels(data_dir / "qrels.dl19-passage.txt.gz")
    assert set(qrels) == set(topics)
    assert sum(len(v) for v in qrels.values()) == 9260
    assert {g for judged in qrels.values() for g in judged.values()} == {0, 1, 2, 3}


def test_real_msmarco_dev_small_and_beir_gz(data_dir):
    topics = read_topics(data_dir / "topics.msmarco-passage.dev-subset.txt.gz")
    assert len(topics) == 6980
    qrels = read_qrels(data_dir / "qrels.msmarco-passage.dev-subset.txt.gz")
    assert sum(len(v) for v in qrels.values()) == 7437
    scifact = read_topics(data_dir / "topics.beir-v1.0.0-scifact.test.tsv.gz")
    assert scifact["1"].text.startswith("0-dimensional biomaterials")
    assert read_qrels(data_dir / "qrels.beir-v1.0.0-scifact.test.txt")["1"] == {"31715818": 1}


def test_beir_queries_jsonl_and_qrels_tsv_with_header(tmp_path):
    write_lines(
        tmp_path / "queries.jsonl", jsonl([{"_id": "q1", "text": "what is x", "metadata": {}}])
    )
    assert read_topics(tmp_path)["q1"].text == "what is x"  # a BEIR folder
    qrels = write_lines(
        tmp_path / "test.tsv", ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q1\td2\t0"]
    )
    assert read_qrels(qrels) == {"q1": {"d1": 1, "d2": 0}}


def test_trec_topic_format(tmp_path):
    path = write_lines(
        tmp_path / "topics.301",
        [
            "<top>",
            "<num> Number: 301",
            "<title> International Organized Crime",
            "<desc> Description:",
            "</top>",
        ],
    )
    assert read_topics(path)["301"].text == "International Organized Crime"


def test_jsonl_topic_with_instruction(tmp_path):
    path = write_lines(
        tmp_path / "t.jsonl", jsonl([{"qid": 7, "query": "q", "instruction": "Be strict."}])
    )
    query = read_topics(path)["7"]
    assert (query.text, query.instruction) == ("q", "Be strict.")


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        (["1\tfirst", "1\tagain"], 2, "duplicate query id '1' (first on line 1)"),
        (["1\tfine", "2\t   "], 2, "query '2' has an empty text"),
        (["1\tfine", "justone"], 2, "expected 2 tab-separated columns"),
        (["\tno id"], 1, "empty query id"),
        ([b"1\t\xc3("], 1, "not valid utf-8"),
    ],
)
def test_bad_topics(tmp_path, lines, line, message):
    path = write_lines(tmp_path / "topics.tsv", lines)
    with pytest.raises(InputError) as err:
        read_topics(path)
    assert str(err.value).startswith(f"{path}:{line}: ") and message in str(err.value)


def test_topics_skip_mode(tmp_path):
    path = write_lines(tmp_path / "topics.tsv", ["1\tfine", "1\tdup", "2\t", "3\tok"])
    assert list(read_topics(path, on_error="skip")) == ["1", "3"]


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        (
            ["1 0 d1 1", "1 0 d1 2"],
            2,
            "duplicate judgment for query '1', document 'd1' (first on line 1, grade 1; here grade 2)",
        ),
        (["1 0 d1 1", "1 0 d2 high"], 2, "relevance grade must be an integer"),
        (["1 0 d1 1", "1 0 d2 1 extra"], 2, "expected 4 columns"),
    ],
)
def test_bad_qrels(tmp_path, lines, line, message):
    path = write_lines(tmp_path / "qrels.txt", lines)
    with pytest.raises(InputError) as err:
        read_qrels(path)
    assert str(err.value).startswith(f"{path}:{line}: ") and message in str(err.value)


def test_qrels_skip_mode_keeps_first_judgment(tmp_path):
    path = write_lines(tmp_path / "qrels.txt", ["1 0 d1 1", "1 0 d1 3", "bad", "2 0 d9 0"])
    assert read_qrels(path, on_error="skip") == {"1": {"d1": 1}, "2": {"d9": 0}}
