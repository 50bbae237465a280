"""`kirag index` and `kirag search` end to end, with run files and resolved configs."""

from __future__ import annotations

import json

import pytest
from kirag.eval.runs import read_run

from kirag.cli import main


@pytest.fixture(scope="module")
def built(tmp_path_factory, enwiki_slice):
    root = tmp_path_factory.mktemp("cli")
    assert (
        main(["-q", "index", "bm25", "--corpus", str(enwiki_slice), "--index", str(root / "bm25")])
        == 0
    )
    return root


def test_index_writes_config_inside_the_folder(built):
    config = json.loads((built / "bm25" / "kirag-config.json").read_text())
    assert config["command"] == "index bm25"
    assert config["settings"]["k1"] == 0.9 and config["results"]["documents"] == 314


def test_index_refuses_to_overwrite_without_flag(built, enwiki_slice, capsys):
    assert (
        main(["-q", "index", "bm25", "--corpus", str(enwiki_slice), "--index", str(built / "bm25")])
        == 2
    )
    err = capsys.readouterr().err
    assert "already exists" in err


def test_search_topics_to_run_file(built, tmp_path, capsys):
    topics = tmp_path / "topics.tsv"
    topics.write_text("q1\tWhich king was taught by Aristotle?\nq2\tApollo 11 Moon landing\n")
    out = tmp_path / "run.trec"
    assert (
        main(
            [
                "-q",
                "search",
                "--index",
                str(built / "bm25"),
                "--topics",
                str(topics),
                "--output",
                str(out),
                "--k",
                "7",
            ]
        )
        == 0
    )
    run = read_run(out)
    assert set(run) == {"q1", "q2"} and all(len(h) == 7 for h in run.values())
    assert run["q1"][0].doc_id.startswith("Aristotle#")
    config = json.loads((tmp_path / "run.trec.config.json").read_text())
    assert config["command"] == "search" and config["results"]["queries"] == 2
    msmarco = tmp_path / "run.tsv"
    assert (
        main(
            [
                "-q",
                "search",
                "--index",
                str(built / "bm25"),
                "--topics",
                str(topics),
                "--output",
                str(msmarco),
                "--k",
                "3",
            ]
        )
        == 0
    )
    assert msmarco.read_text().splitlines()[0].split("\t")[2] == "1"


def test_search_one_query_prints_hits(built, capsys):
    assert (
        main(
            [
                "search",
                "--index",
                str(built / "bm25"),
                "--query",
                "Who wrote Animal Farm?",
                "--k",
                "2",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Animal_Farm#" in out and "[Animal Farm]" in out


def test_search_errors_are_clean(built, tmp_path, capsys):
    assert main(["search", "--index", str(tmp_path / "missing"), "--query", "x"]) == 2
    assert "no such index folder" in capsys.readouterr().err
    topics = tmp_path / "bad.tsv"
    topics.write_text("q1\tfine\nq1\tduplicate\n")
    assert (
        main(
            [
                "search",
                "--index",
                str(built / "bm25"),
                "--topics",
                str(topics),
                "--output",
                str(tmp_path / "r.trec"),
            ]
        )
        == 2
    )
    assert f"{topics}:2: duplicate query id 'q1'" in capsys.readouterr().err
