"""Dataset loaders, run validation, leaderboard submission writers/validators, and the
`kirag eval` / `kirag submit` commands."""

from __future__ import annotations

import bz2
import datetime as dt
import json
import re

import pytest
from kirag.eval.datasets import load_beir, load_msmarco_passage, load_questions, load_trec_dl
from kirag.eval.qa_evaluation import evaluate_predictions
from kirag.eval.runs import read_run, validate_run, write_run
from kirag.eval.submission import (
    MSMarcoMetadata,
    QAPrediction,
    read_qa_predictions,
    validate_msmarco_submission,
    validate_qa_predictions,
    validate_trec_submission,
    write_msmarco_submission,
    write_qa_predictions,
    write_trec_submission,
)

from kirag.cli import main
from kirag.errors import InputError
from kirag.types import Hit

HOTPOT = [
    {
        "_id": "h1",
        "question": "Which rocket launched Apollo 11?",
        "answer": "Saturn V",
        "supporting_facts": [["Apollo 11", 1], ["Saturn V", 0]],
        "context": [
            ["Apollo 11", ["Apollo 11 landed on the Moon.", "It was launched by a Saturn V."]],
            ["Saturn V", ["Saturn V was a rocket."]],
        ],
        "type": "bridge",
        "level": "hard",
    }
]
TWOWIKI = [
    {
        "_id": "w1",
        "type": "compositional",
        "question": "Who is the mother of the director of film X?",
        "answer": "Jane",
        "supporting_facts": [["X", 0], ["Bob", 1]],
        "evidences": [["X", "director", "Bob"], ["Bob", "mother", "Jane"]],
        "context": [
            ["X", ["X is a film by Bob."]],
            ["Bob", ["Bob is a director.", "His mother is Jane."]],
        ],
    }
]
MUSIQUE = {
    "id": "2hop__1_2",
    "question": "What is the capital of the country where Sonatrach is based?",
    "answer": "Algiers",
    "answer_aliases": ["Alger"],
    "answerable": True,
    "paragraphs": [
        {
            "idx": 0,
            "title": "Sonatrach",
            "paragraph_text": "Sonatrach is the national oil company of Algeria.",
            "is_supporting": True,
        },
        {
            "idx": 1,
            "title": "Algeria",
            "paragraph_text": "Its capital is Algiers.",
            "is_supporting": True,
        },
        {
            "idx": 2,
            "title": "Angola",
            "paragraph_text": "Luanda is the capital.",
            "is_supporting": False,
        },
    ],
}


def test_qa_loaders_detect_each_format(tmp_path):
    (tmp_path / "hotpot.json").write_text(json.dumps(HOTPOT))
    (tmp_path / "2wiki.json").write_text(json.dumps(TWOWIKI))
    (tmp_path / "musique.jsonl").write_text(json.dumps(MUSIQUE) + "\n")
    hotpot = load_questions(tmp_path / "hotpot.json")[0]
    assert (hotpot.dataset, hotpot.answers, hotpot.gold_doc_ids) == (
        "hotpotqa",
        ["Saturn V"],
        ["Apollo 11", "Saturn V"],
    )
    assert hotpot.documents[0].metadata["sentences"][1].startswith("It was launched")
    wiki = load_questions(tmp_path / "2wiki.json")[0]
    assert wiki.dataset == "2wikimultihopqa" and wiki.evidences[1] == ["Bob", "mother", "Jane"]
    musique = load_questions(tmp_path / "musique.jsonl")[0]
    assert musique.answers == ["Algiers", "Alger"] and musique.gold_doc_ids == [
        "2hop__1_2#0",
        "2hop__1_2#1",
    ]
    from pathlib import Path

    from kirag.data import __file__ as data_init

    bundled = load_questions(Path(data_init).parent / "multihop_enwiki.jsonl")
    assert len(bundled) == 31 and bundled[0].gold_doc_ids == ["Ayn_Rand#31", "Aristotle#0"]


def test_qa_loaders_reject_bad_files(tmp_path):
    (tmp_path / "bad.json").write_text('[{"_id": "1"}]')
    with pytest.raises(InputError, match="not a hotpotqa record"):
        load_questions(tmp_path / "bad.json")
    (tmp_path / "dup.json").write_text(json.dumps(HOTPOT + HOTPOT))
    with pytest.raises(InputError, match="duplicate question id 'h1'"):
        load_questions(tmp_path / "dup.json")
    (tmp_path / "odd.txt").write_text("hello\n")
    with pytest.raises(InputError, match="not a HotpotQA"):
        load_questions(tmp_path / "odd.txt")
    (tmp_path / "m.jsonl").write_text(json.dumps(MUSIQUE) + "\n{broken\n")
    with pytest.raises(InputError, match=r"m\.jsonl:2: malformed JSON"):
        load_questions(tmp_path / "m.jsonl", "musique")


def test_ranking_dataset_loaders(tmp_path, data_dir):
    (tmp_path / "collection.tsv").write_text("0\tfirst passage\n1\tsecond passage\n")
    (tmp_path / "queries.dev.small.tsv").write_text("5\ta question\n")
    (tmp_path / "qrels.dev.small.tsv").write_text("5\t0\t1\t1\n")
    msmarco = load_msmarco_passage(tmp_path)
    assert [d.id for d in msmarco.corpus] == ["0", "1"] and msmarco.qrels == {"5": {"1": 1}}
    dl = load_trec_dl(data_dir / "topics.dl19-passage.txt", data_dir / "qrels.dl19-passage.txt.gz")
    assert dl.rel_level == 2 and len(dl.queries) == 43
    beir = tmp_path / "scifact"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "T", "text": "x"}) + "\n")
    (beir / "queries.jsonl").write_text(
        json.dumps({"_id": "1", "text": "q1"})
        + "\n"
        + json.dumps({"_id": "2", "text": "q2"})
        + "\n"
    )
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n")
    loaded = load_beir(beir)
    assert list(loaded.queries) == ["1"] and loaded.qrels == {"1": {"d1": 1}}


def test_run_validation_catches_every_problem():
    run = {
        "1": [Hit("a", 3, 1), Hit("a", 2, 2)],
        "2": [Hit("b", 3, 2), Hit("c", 2, 1)],
        "3": [Hit("d", 1, 1), Hit("e", 2, 2)],
        "4": [Hit("f", 1, 1), Hit("g", 1, 2)],
        "9": [Hit("h", 1, 1)],
    }
    report = validate_run(run, topics=["1", "2", "3", "4", "5"], max_hits=1)
    messages = [str(p) for p in report.problems]
    assert any("'a' ranked more than once" in m for m in messages)
    assert any("query '2': ranks are not 1, 2, 3" in m for m in messages)
    assert any("query '3': scores rise" in m for m in messages)
    assert any("warning: query '4': 1 tied scores" in m for m in messages)
    assert any("query '9': not in the topics" in m for m in messages)
    assert any("more than the 1 allowed" in m for m in messages)
    assert any("1 topics have no results" in m for m in messages)
    assert not report.ok
    with pytest.raises(InputError, match="invalid run"):
        report.raise_if_invalid()
    assert validate_run({"1": [Hit("a", 2, 1), Hit("b", 1, 2)]}, topics=["1"]).ok


def test_run_files_roundtrip_in_every_format(tmp_path):
    run = {
        "q1": [Hit("d1", 2.5, 1, metadata={"p_true": 0.9}), Hit("d2", 1.0, 2)],
        "q2": [Hit("d3", 0.5, 1)],
    }
    for name in ("run.trec", "run.tsv", "run.jsonl"):
        write_run(run, tmp_path / name, tag="t1")
        back = read_run(tmp_path / name)
        assert {q: [h.doc_id for h in hits] for q, hits in back.items()} == {
            "q1": ["d1", "d2"],
            "q2": ["d3"],
        }
    assert read_run(tmp_path / "run.jsonl")["q1"][0].metadata == {"p_true": 0.9}
    with pytest.raises(InputError, match="run tag"):
        write_run(run, tmp_path / "x.trec", tag="has space")
    (tmp_path / "bad.trec").write_text("q1 Q0 d1 1 2.0 t\nq1 Q0 d2 two 1.0 t\n")
    with pytest.raises(InputError, match=r"bad\.trec:2: rank must be an integer"):
        read_run(tmp_path / "bad.trec")


def _msmarco_runs(dev_qids=("1", "2", "3")):
    dev = {q: [Hit(f"{q}{i:02d}", 100 - i, i) for i in range(1, 16)] for q in dev_qids}
    evl = {str(q): [Hit(f"{q}{i:02d}", 100 - i, i) for i in range(1, 12)] for q in range(10, 12)}
    return dev, evl


def test_msmarco_submission_written_and_revalidated(tmp_path, data_dir):
    from kirag.io.topics import read_topics

    dev_qids = list(read_topics(data_dir / "topics.msmarco-passage.dev-subset.txt.gz"))[:3]
    dev, evl = _msmarco_runs(dev_qids)
    meta = MSMarcoMetadata("Team kirag", "BM25 + Rank1", "reranking", "https://arxiv.org/abs/1", "")
    folder = write_msmarco_submission(
        tmp_path, "Kirag Run", dev, evl, list(dev), list(evl), meta, date=dt.date(2026, 11, 24)
    )
    assert folder == tmp_path / "submissions" / "20261124-kirag-run"
    lines = bz2.decompress((folder / "dev.txt.bz2").read_bytes()).decode().splitlines()
    q = dev_qids[0]
    assert len(lines) == 30 and lines[0] == f"{q}\t{q}01\t1" and lines[9].endswith("\t10")
    metadata_path = tmp_path / "submissions" / "20261124-kirag-run-metadata.json"
    assert json.loads(metadata_path.read_text()) == {
        "team": "Team kirag",
        "model_description": "BM25 + Rank1",
        "paper": "https://arxiv.org/abs/1",
        "code": "",
        "type": "reranking",
    }
    assert validate_msmarco_submission(folder, list(dev), list(evl)) == []
    # deeper runs are allowed (the leaderboard's sanity check prefers 1,000 per query)
    deep = write_msmarco_submission(
        tmp_path, "deep", dev, evl, list(dev), list(evl), meta, dt.date(2026, 11, 24), depth=15
    )
    assert len(bz2.decompress((deep / "dev.txt.bz2").read_bytes()).splitlines()) == 45
    assert validate_msmarco_submission(deep, list(dev), list(evl)) == []

    def problems_with(eval_bytes: bytes) -> list[str]:
        (folder / "eval.txt.bz2").write_bytes(bz2.compress(eval_bytes))
        return validate_msmarco_submission(folder, list(dev), list(evl))

    tampered = problems_with(b"10\t5\t1\n10\t5\t2\n")
    assert any("ranked more than once" in p for p in tampered)
    assert any("topics have no results" in p for p in tampered)
    assert "eval.txt.bz2:1: expected qid<TAB>pid<TAB>rank" in problems_with(b"10 5 1\n")[0]
    assert "integer fields" in problems_with(b"10\tp5\t1\n")[0]
    assert "rank 1001 outside" in problems_with(b"10\t5\t1001\n")[0]
    assert any("ranks are not 1, 2, 3" in p for p in problems_with(b"10\t5\t2\n11\t6\t1\n"))
    (folder / "eval.txt.bz2").write_bytes(b"not bz2")
    assert "not a bz2-compressed" in validate_msmarco_submission(folder)[0]
    # metadata problems
    (folder / "eval.txt.bz2").unlink()
    metadata_path.write_text(json.dumps({"team": "T", "model_description": "m", "type": "x"}))
    problems = validate_msmarco_submission(folder)
    assert any("eval.txt.bz2 is missing" in p for p in problems)
    assert any("missing fields ['paper', 'code']" in p for p in problems)
    metadata_path.write_text(json.dumps(meta.to_dict() | {"embargo_until": "2027/12/01"}))
    assert "within nine months" in validate_msmarco_submission(folder)[-1]


def test_msmarco_submission_refuses_invalid_input(tmp_path):
    dev, evl = _msmarco_runs()
    good = MSMarcoMetadata("T", "d", "full ranking")
    with pytest.raises(InputError, match="type must be one of"):
        write_msmarco_submission(
            tmp_path, "x", dev, evl, list(dev), list(evl), MSMarcoMetadata("T", "d", "dense")
        )
    with pytest.raises(InputError, match="team must not be empty"):
        write_msmarco_submission(
            tmp_path, "x", dev, evl, list(dev), list(evl), MSMarcoMetadata(" ", "d", "reranking")
        )
    with pytest.raises(InputError, match="paper must be a URL"):
        write_msmarco_submission(
            tmp_path,
            "x",
            dev,
            evl,
            list(dev),
            list(evl),
            MSMarcoMetadata("T", "d", "reranking", "arxiv"),
        )
    with pytest.raises(InputError, match="embargo_until must be yyyy/mm/dd"):
        write_msmarco_submission(
            tmp_path,
            "x",
            dev,
            evl,
            list(dev),
            list(evl),
            MSMarcoMetadata("T", "d", "reranking", embargo_until="2027-01-01"),
        )
    with pytest.raises(InputError, match="topics have no results"):
        write_msmarco_submission(tmp_path, "x", dev, evl, [*dev, "99"], list(evl), good)
    broken = {**dev, "1": [Hit("7", 1, 1), Hit("7", 0.5, 2)]}
    with pytest.raises(InputError, match="ranked more than once"):
        write_msmarco_submission(tmp_path, "x", broken, evl, list(dev), list(evl), good)
    named = {**dev, "1": [Hit("doc-7", 1, 1)]}
    with pytest.raises(InputError, match="MS MARCO ids are integers"):
        write_msmarco_submission(tmp_path, "x", named, evl, list(dev), list(evl), good)
    with pytest.raises(InputError, match="depth must be"):
        write_msmarco_submission(tmp_path, "x", dev, evl, list(dev), list(evl), good, depth=1001)
    assert not (tmp_path / "submissions").exists()  # nothing written
    anonymous = MSMarcoMetadata("T", "d", "reranking", embargo_until="2027/08/24")
    folder = write_msmarco_submission(
        tmp_path, "anon", dev, evl, list(dev), list(evl), anonymous, dt.date(2026, 11, 24)
    )
    assert validate_msmarco_submission(folder, list(dev), list(evl)) == []


def test_trec_submission(tmp_path):
    run = {"1": [Hit(f"d{i}", 10 - i, i) for i in range(1, 6)], "2": [Hit("d1", 1.0, 1)]}
    path = write_trec_submission(run, tmp_path / "r.trec", "kirag1", ["1", "2"], k=3)
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and lines[0] == "1 Q0 d1 1 9.0 kirag1"
    assert validate_trec_submission(path, ["1", "2"], k=3) == []
    assert any("have no results" in p for p in validate_trec_submission(path, ["1", "2", "3"], k=3))
    with pytest.raises(InputError, match="run tag"):
        write_trec_submission(run, tmp_path / "x.trec", "bad tag!", ["1", "2"])
    with pytest.raises(InputError, match="topics have no documents"):
        write_trec_submission(run, tmp_path / "x.trec", "t", ["1", "2", "3"])
    with pytest.raises(InputError, match="not topics"):
        write_trec_submission(run, tmp_path / "x.trec", "t", ["1"])
    (tmp_path / "two-tags.trec").write_text("1 Q0 a 1 2.0 A\n1 Q0 b 2 1.0 B\n")
    assert any(
        "several run tags" in p for p in validate_trec_submission(tmp_path / "two-tags.trec")
    )


@pytest.mark.parametrize("target", ["hotpotqa", "2wikimultihopqa", "musique"])
def test_qa_prediction_files_roundtrip(tmp_path, target):
    predictions = [
        QAPrediction(
            "a",
            "Saturn V",
            [("Apollo 11", 1)],
            support_idxs=[0, 1],
            evidence=[["X", "r", "Y"]],
            answerable=True,
        ),
        QAPrediction("b", "Paris", [], support_idxs=[], answerable=False),
    ]
    path = write_qa_predictions(target, predictions, tmp_path / f"pred.{target}", ["a", "b"])
    back = {p.id: p for p in read_qa_predictions(target, path)}
    assert back["a"].answer == "Saturn V"
    if target == "musique":
        assert back["a"].support_idxs == [0, 1] and back["b"].answerable is False
        assert json.loads(path.read_text().splitlines()[0]) == {
            "id": "a",
            "predicted_answer": "Saturn V",
            "predicted_support_idxs": [0, 1],
            "predicted_answerable": True,
        }
    else:
        data = json.loads(path.read_text())
        assert data["sp"]["a"] == [["Apollo 11", 1]]
        assert ("evidence" in data) == (target == "2wikimultihopqa")
    assert validate_qa_predictions(target, path, ["a", "b"]) == []
    missing = "line by line" if target == "musique" else "1 questions have no prediction"
    assert missing in validate_qa_predictions(target, path, ["a", "b", "c"])[0]
    with pytest.raises(InputError, match=missing):
        write_qa_predictions(target, predictions, tmp_path / "x", ["a", "b", "c"])
    if target == "musique":  # MuSiQue's script pairs lines by position: the order matters
        with pytest.raises(InputError, match="first difference at line 1"):
            write_qa_predictions(target, predictions[::-1], tmp_path / "x", ["a", "b"])
        with pytest.raises(InputError, match="more than twice"):
            write_qa_predictions(target, predictions[:1] * 3, tmp_path / "x")
    else:
        with pytest.raises(InputError, match="appears twice"):
            write_qa_predictions(target, predictions + predictions[:1], tmp_path / "x")
    with pytest.raises(InputError, match="evidence items"):
        write_qa_predictions(
            target, [QAPrediction("a", "x", evidence=[["s", "r"]])], tmp_path / "x"
        )
    assert not (tmp_path / "x").exists()


def test_evaluate_predictions_hotpot_style(tmp_path):
    (tmp_path / "hotpot.json").write_text(json.dumps(HOTPOT))
    examples = load_questions(tmp_path / "hotpot.json")
    result = evaluate_predictions(
        [QAPrediction("h1", "the Saturn V", [("Apollo 11", 1)])], examples
    )
    assert result["aggregate"]["EM"] == 1.0 and result["aggregate"]["sp_EM"] == 0.0
    assert result["aggregate"]["sp_F1"] == pytest.approx(2 / 3)
    assert result["aggregate"]["joint_F1"] == pytest.approx(2 / 3)
    assert evaluate_predictions([], examples)["aggregate"]["F1"] == 0.0


def test_eval_command_table_significance_and_plot(tmp_path, data_dir, capsys):
    from kirag.io.qrels import read_qrels

    qrels = read_qrels(data_dir / "qrels.dl19-passage.txt.gz")
    good = {
        q: [
            Hit(d, float(g) + 1.0 / (i + 2), i + 1)
            for i, (d, g) in enumerate(sorted(j.items(), key=lambda x: -x[1]))
        ]
        for q, j in qrels.items()
    }
    bad = {
        q: [Hit(h.doc_id, 1.0 / i, i) for i, h in enumerate(reversed(hits), 1)]
        for q, hits in good.items()
    }
    write_run(good, tmp_path / "good.trec")
    write_run(bad, tmp_path / "bad.trec")
    args = [
        "eval",
        "--run",
        str(tmp_path / "bad.trec"),
        "--run",
        str(tmp_path / "good.trec"),
        "--qrels",
        str(data_dir / "qrels.dl19-passage.txt.gz"),
        "--preset",
        "dl",
        "--trials",
        "500",
    ]
    args += [
        "--output",
        str(tmp_path / "res.json"),
        "--per-query",
        str(tmp_path / "pq.json"),
        "--plot",
        str(tmp_path / "diff.png"),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "nDCG@10" in out and "good.trec" in out and "†‡" in out
    assert (tmp_path / "diff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((tmp_path / "res.json").read_text())
    assert results["aggregate"]["good.trec"]["nDCG@10"] == pytest.approx(1.0)
    assert results["comparisons"][0]["randomization_p"] < 0.05
    assert set(json.loads((tmp_path / "pq.json").read_text())) == {"bad.trec", "good.trec"}
    assert (tmp_path / "res.json.config.json").exists()


def test_submit_commands(tmp_path, capsys):
    run = {"1": [Hit("d1", 2.0, 1), Hit("d2", 1.0, 2)]}
    write_run(run, tmp_path / "in.trec")
    (tmp_path / "topics.tsv").write_text("1\tquestion one\n")
    assert (
        main(
            [
                "submit",
                "trec",
                "--run",
                str(tmp_path / "in.trec"),
                "--topics",
                str(tmp_path / "topics.tsv"),
                "--tag",
                "k1",
                "--output",
                str(tmp_path / "out.trec"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "submit",
                "validate",
                "trec",
                str(tmp_path / "out.trec"),
                "--topics",
                str(tmp_path / "topics.tsv"),
            ]
        )
        == 0
    )
    assert "valid" in capsys.readouterr().out
    (tmp_path / "topics2.tsv").write_text("1\tq\n2\tq2\n")
    assert (
        main(
            [
                "submit",
                "validate",
                "trec",
                str(tmp_path / "out.trec"),
                "--topics",
                str(tmp_path / "topics2.tsv"),
            ]
        )
        == 1
    )
    assert "INVALID" in capsys.readouterr().out
    answers = tmp_path / "answers.jsonl"
    answers.write_text(
        json.dumps({"id": "h1", "answer": "Saturn V", "supporting_facts": [["Apollo 11", 1]]})
        + "\n"
    )
    (tmp_path / "hotpot.json").write_text(json.dumps(HOTPOT))
    pred = tmp_path / "pred.json"
    assert (
        main(
            [
                "submit",
                "qa",
                "--target",
                "hotpotqa",
                "--answers",
                str(answers),
                "--questions",
                str(tmp_path / "hotpot.json"),
                "--output",
                str(pred),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "submit",
                "validate",
                "hotpotqa",
                str(pred),
                "--questions",
                str(tmp_path / "hotpot.json"),
            ]
        )
        == 0
    )
    assert (
        main(["eval", "--predictions", str(pred), "--questions", str(tmp_path / "hotpot.json")])
        == 0
    )
    assert "joint_F1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("target", "content", "message"),
    [
        ("hotpotqa", '{"answer": {"a": "x"}}', '"sp"'),
        ("2wikimultihopqa", '{"answer": {"a": "x"}, "sp": {}}', '"evidence"'),
        ("hotpotqa", '{"answer": {"a": 3}, "sp": {}}', "answer must be a string"),
        ("hotpotqa", '{"answer": {"a": "x"}, "sp": {"a": [["T", "0"]]}}', "sentence index"),
        ("hotpotqa", '{"answer": {"a": "x"}, "sp": {"a": [["T", 0]]}', "malformed JSON"),
        ("musique", '{"id": "a", "predicted_answer": "x"}\n', "not a MuSiQue prediction"),
        ("musique", "", "no predictions"),
    ],
)
def test_invalid_prediction_files_are_reported(tmp_path, target, content, message):
    path = tmp_path / "pred"
    path.write_text(content)
    problems = validate_qa_predictions(target, path)
    assert len(problems) == 1 and message in problems[0]
    with pytest.raises(InputError, match=re.escape(message)):
        read_qa_predictions(target, path)


def test_trec_runs_keep_close_scores_apart(tmp_path):
    """Scores 1e-8 apart stay distinct when written, so trec_eval keeps the ranking (rounding
    to 6 decimals would tie them and trec_eval would put "b" first, by document id)."""
    run = {"q": [Hit("a", 0.12345671, 1), Hit("b", 0.12345670, 2)]}
    write_run(run, tmp_path / "r.trec")
    back = read_run(tmp_path / "r.trec")["q"]
    assert [h.score for h in back] == [0.12345671, 0.12345670]
    from kirag.eval.metrics import evaluate

    assert evaluate({"q": back}, {"q": {"a": 1}}, ["MRR"]).aggregate["MRR"] == 1.0
    bad = validate_run({"q": [Hit("a", float("nan"), 1)]})
    assert not bad.ok and "NaN" in str(bad.errors[0])
