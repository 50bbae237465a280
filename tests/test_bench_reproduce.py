"""`kirag bench reproduce` end to end on a tiny prepared dataset: real indexes (spaCy triples,
BM25, MiniLM dense), SmolLM2 through llama.cpp as constructor and reader, 1 KiRAG turn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kirag.cli import main

PASSAGES = [
    ("0", "Ed Wood", "Ed Wood is a 1994 American biographical film directed by Tim Burton."),
    ("1", "Tim Burton", "Tim Burton is an American filmmaker born in Burbank, California."),
    ("2", "Scott Derrickson", "Scott Derrickson is an American director born in Denver."),
    (
        "3",
        "Doctor Strange",
        "Doctor Strange is a 2016 superhero film directed by Scott Derrickson.",
    ),
    ("4", "Burbank", "Burbank is a city in Los Angeles County in southern California."),
    ("5", "Denver", "Denver is the capital city of the U.S. state of Colorado."),
    ("6", "Paris", "Paris is the capital and largest city of France."),
    ("7", "Thames", "The Thames is a river that flows through London in England."),
]
QUESTIONS = [
    {
        "id": "q1",
        "question": "In which city was the director of Ed Wood born?",
        "answers": ["Burbank"],
        "supporting_ids": ["0", "1"],
    },
    {
        "id": "q2",
        "question": "Where was the director of Doctor Strange born?",
        "answers": ["Denver"],
        "supporting_ids": ["3", "2"],
    },
]


def _prepared(folder: Path) -> Path:
    """A folder in `kirag data prepare`'s output format."""
    folder.mkdir()
    corpus = [json.dumps({"id": i, "title": t, "text": x}) for i, t, x in PASSAGES]
    (folder / "corpus.jsonl").write_text("\n".join(corpus) + "\n")
    (folder / "test.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    (folder / "manifest.json").write_text(json.dumps({"kind": "open-domain-qa", "dataset": "tiny"}))
    return folder


@pytest.mark.llm
def test_reproduce_scores_kirag_reference_and_baselines_with_every_setting(tmp_path, capsys):
    pytest.importorskip("llama_cpp")
    dataset = _prepared(tmp_path / "tiny")
    output, workdir = tmp_path / "results.json", tmp_path / "indexes"
    argv = ["bench", "reproduce", "--dataset", str(dataset), "--limit", "2", "--engine",
            "llamacpp", "--turns", "1", "--num-demonstrations", "1", "--rounds", "2",
            "--constructor-max-tokens", "24", "--reader-max-tokens", "8", "--workdir", str(workdir),
            "--output", str(output)]  # fmt: skip
    assert main(argv) == 0
    results = json.loads(output.read_text())
    settings = results["settings"]
    assert settings["dataset"] == "tiny" and settings["split"] == "test"
    assert (settings["model"], settings["engine"], settings["extractor"]) == (
        "smollm2-135m", "llamacpp", "spacy",
    )  # fmt: skip
    assert settings["aligner_used"] and settings["demonstrations_dataset"] == "wikipedia"
    assert (settings["turns"], settings["num_demonstrations"], settings["rounds"]) == (1, 1, 2)
    assert (settings["constructor_max_tokens"], settings["reader_max_tokens"]) == (24, 8)
    assert settings["index_extractor"].startswith("spacy")
    names = [row["system"] for row in results["table"]]
    assert len(names) == 4 and names[-1].startswith("KiRAG reference")
    for row in results["table"]:
        assert set(row) >= {"R@3", "R@5", "EM", "F1"}
        per_question = results["per_question"][row["system"]]
        assert len(per_question) == 2
        # the table is the mean of the per-question scores, each against the gold support
        for key in ("R@3", "R@5", "EM", "F1"):
            assert row[key] == pytest.approx(sum(q[key] for q in per_question) / 2, abs=1e-4)
        for q, gold in zip(per_question, QUESTIONS, strict=True):
            found = len(set(q["ranked"][:5]) & set(gold["supporting_ids"])) / 2
            assert q["R@5"] == pytest.approx(found)
    bm25 = results["table"][0]
    assert bm25["system"].startswith("BM25") and bm25["R@5"] > 0  # lexical overlap finds support
    # the config beside the results holds the command's settings too
    config = tmp_path / "results.json.config.json"
    assert "smollm2-135m" in config.read_text()
    assert not (tmp_path / "results.json.partial.json").exists()  # removed once finished
    # a second run reuses the index, and resumes from the finished systems of an interrupted run
    manifest = next(workdir.glob("*/manifest.json"))
    before = manifest.stat().st_mtime_ns
    again = tmp_path / "again.json"
    finished = {**bm25, "questions/min": -1.0}  # a marker: reused, not recomputed
    partial = {
        "key": {"settings": settings, "question_ids": ["q1", "q2"]},
        "rows": {bm25["system"]: finished},
        "per_question": {bm25["system"]: results["per_question"][bm25["system"]]},
    }
    Path(f"{again}.partial.json").write_text(json.dumps(partial))
    argv[argv.index("--output") + 1] = str(again)
    assert main([*argv, "--systems", "bm25,dense"]) == 0
    assert manifest.stat().st_mtime_ns == before
    table = json.loads(again.read_text())["table"]
    assert table[0] == finished  # reused as saved
    # recomputed: the same retrieval (the reader's answers may differ with llama.cpp's cache)
    assert table[1]["system"] == results["table"][1]["system"]
    assert [table[1][k] for k in ("R@3", "R@5")] == [results["table"][1][k] for k in ("R@3", "R@5")]
    assert table[1]["questions/min"] > 0


def test_reproduce_reports_a_folder_that_is_not_prepared(tmp_path, capsys):
    argv = ["bench", "reproduce", "--dataset", str(tmp_path), "--workdir", str(tmp_path / "i")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "test.jsonl" in err and "Traceback" not in err


def test_reproduce_rejects_an_unknown_system(tmp_path, capsys):
    dataset = _prepared(tmp_path / "tiny")
    argv = ["bench", "reproduce", "--dataset", str(dataset), "--systems", "bm25,ircot"]
    assert main(argv) == 2
    assert "ircot" in capsys.readouterr().err


def test_reproduce_reports_an_index_that_is_not_one(tmp_path, capsys):
    dataset = _prepared(tmp_path / "tiny")
    argv = ["bench", "reproduce", "--dataset", str(dataset), "--index", str(tmp_path / "none")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "none" in err and "manifest.json" in err and "Traceback" not in err
