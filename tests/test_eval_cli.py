"""`kirag eval` on real judgments: the MS MARCO preset's official MRR@10 and the handling of
judged queries missing from a run, checked against pytrec_eval called directly."""

from __future__ import annotations

import bz2
import gzip
import json
import random

import pytest
import pytrec_eval
from kirag.eval.runs import read_run, read_run_scores, write_run

from kirag.cli import main
from kirag.errors import InputError
from kirag.io.qrels import read_qrels
from kirag.io.topics import read_topics
from kirag.types import Hit


@pytest.fixture(scope="module")
def devsmall(data_dir):
    return read_qrels(data_dir / "qrels.msmarco-passage.dev-subset.txt.gz")


def _partial_run(qrels, queries: int, seed: int) -> dict[str, list[Hit]]:
    """A run over the first `queries` judged queries: 30 random passages with one relevant
    passage at a random rank, ranks following scores."""
    rng = random.Random(seed)
    run = {}
    for qid in list(qrels)[:queries]:
        docs = [f"n{qid}-{i}" for i in range(30)]
        docs[rng.randrange(30)] = next(iter(qrels[qid]))
        run[qid] = [Hit(d, 100.0 - r, r) for r, d in enumerate(docs, 1)]
    return run


def test_msmarco_preset_is_the_official_mrr(tmp_path, data_dir, devsmall, capsys):
    run = _partial_run(devsmall, 300, seed=1)
    write_run(run, tmp_path / "run.tsv")  # MS MARCO format: qid, pid, rank
    out = tmp_path / "res.json"
    qrels_path = data_dir / "qrels.msmarco-passage.dev-subset.txt.gz"
    argv = ["eval", "--run", str(tmp_path / "run.tsv"), "--qrels", str(qrels_path)]
    assert main([*argv, "--preset", "msmarco", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{len(devsmall) - 300} judged queries have no results, counted as 0" in printed
    top10 = {q: {h.doc_id: h.score for h in hits[:10]} for q, hits in run.items()}
    reference = pytrec_eval.RelevanceEvaluator(devsmall, {"recip_rank", "recall_1000"}).evaluate(
        top10
    )
    expected = sum(v["recip_rank"] for v in reference.values()) / len(devsmall)
    results = json.loads(out.read_text())
    assert results["aggregate"]["run.tsv"]["MRR@10"] == pytest.approx(expected, abs=1e-9)
    assert results["missing_queries"]["run.tsv"] == len(devsmall) - 300
    assert (tmp_path / "res.json.config.json").exists()
    # --missing skip: trec_eval's mean over the run's queries (R@1000 of the full run)
    full = pytrec_eval.RelevanceEvaluator(devsmall, {"recall_1000"}).evaluate(
        {q: {h.doc_id: h.score for h in hits} for q, hits in run.items()}
    )
    assert main([*argv, "--metrics", "R@1000", "--missing", "skip", "--output", str(out)]) == 0
    value = json.loads(out.read_text())["aggregate"]["run.tsv"]["R@1000"]
    assert value == pytest.approx(sum(v["recall_1000"] for v in full.values()) / 300, abs=1e-9)


def test_eval_needs_runs_or_predictions(capsys):
    assert main(["eval", "--qrels", "x"]) == 2
    assert "give --run and --qrels" in capsys.readouterr().err


def test_submit_msmarco_and_validate(tmp_path, data_dir, capsys):
    from kirag.io.topics import read_topics

    dev_topics = data_dir / "topics.msmarco-passage.dev-subset.txt.gz"
    dev_qids = list(read_topics(dev_topics))
    rng = random.Random(2)
    dev = {
        q: [Hit(str(rng.randrange(8_841_823)), 20.0 - r, r) for r in range(1, 21)] for q in dev_qids
    }
    for hits in dev.values():  # make the passage ids of each query distinct
        seen = set()
        for i, h in enumerate(hits):
            while h.doc_id in seen:
                h = Hit(str(int(h.doc_id) + 1), h.score, h.rank)
            hits[i] = h
            seen.add(h.doc_id)
    write_run(dev, tmp_path / "dev.tsv")
    (tmp_path / "eval_topics.tsv").write_text("900001\tfirst question\n900002\tsecond\n")
    write_run(
        {"900001": [Hit("11", 2.0, 1), Hit("12", 1.0, 2)], "900002": [Hit("13", 1.0, 1)]},
        tmp_path / "eval.tsv",
    )
    base = [
        "submit", "msmarco", "--dev-run", str(tmp_path / "dev.tsv"), "--eval-run",
        str(tmp_path / "eval.tsv"), "--dev-topics", str(dev_topics), "--eval-topics",
        str(tmp_path / "eval_topics.tsv"), "--name", "kirag-test", "--team", "kirag team",
        "--description", "random", "--type", "full ranking", "--output-dir", str(tmp_path),
    ]  # fmt: skip
    assert main(base) == 0
    folder = next((tmp_path / "submissions").glob("*-kirag-test"))
    assert sorted(p.name for p in folder.iterdir()) == ["dev.txt.bz2", "eval.txt.bz2"]
    assert (tmp_path / f"{folder.name}.config.json").exists()
    validate = ["submit", "validate", "msmarco", str(folder), "--dev-topics", str(dev_topics)]
    assert main(validate) == 0 and "valid" in capsys.readouterr().out
    # a query missing from the eval run: nothing is written, a clean error
    (tmp_path / "eval_topics.tsv").write_text("900001\tq\n900002\tq\n900003\tq\n")
    other = [*base[:-1], str(tmp_path / "other")]
    assert main(other) == 2
    assert "topics have no results" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_eval_check_reports_what_trec_eval_would_reorder(tmp_path, capsys):
    (tmp_path / "run.trec").write_text(
        "1 Q0 a 2 1.0 t\n1 Q0 b 1 1.0 t\n7 Q0 c 1 1.0 t\n"  # rank order, a tie, unjudged 7
    )
    (tmp_path / "qrels.txt").write_text("1 0 b 1\n2 0 z 1\n")
    argv = ["eval", "--run", str(tmp_path / "run.trec"), "--qrels", str(tmp_path / "qrels.txt")]
    assert main([*argv, "--check", "--metrics", "MRR@10"]) == 1  # an error was found
    out = capsys.readouterr().out
    assert "ranks are not 1, 2, 3" in out and "1 tied scores" in out
    assert "1 queries without judgments" in out and "1 judged queries have no results" in out
    assert "check: 1 errors found" in out
    # trec_eval's order: b before a (tie broken by document id, descending): RR 1 for query 1,
    # query 2 is judged but missing: 0 -> mean 0.5
    assert "0.5000" in out


def test_msmarco_files_compressed_with_bz2_are_read(tmp_path, data_dir, devsmall, capsys):
    # MS MARCO ships several files as .bz2; kirag reads bz2 wherever it reads gzip (the one
    # place inputs are opened), whatever the file is called
    run = _partial_run(devsmall, 50, seed=4)
    write_run(run, tmp_path / "run.tsv")
    (tmp_path / "run.tsv.bz2").write_bytes(bz2.compress((tmp_path / "run.tsv").read_bytes()))
    qrels_text = gzip.decompress(
        (data_dir / "qrels.msmarco-passage.dev-subset.txt.gz").read_bytes()
    )
    (tmp_path / "qrels.dev.small.tsv").write_bytes(bz2.compress(qrels_text))  # plain name
    results = {}
    for run_file, qrels_path in (
        ("run.tsv", data_dir / "qrels.msmarco-passage.dev-subset.txt.gz"),
        ("run.tsv.bz2", tmp_path / "qrels.dev.small.tsv"),
    ):
        out = tmp_path / f"{run_file}.json"
        argv = ["eval", "--run", str(tmp_path / run_file), "--qrels", str(qrels_path)]
        assert main([*argv, "--preset", "msmarco", "--output", str(out)]) == 0
        results[run_file] = json.loads(out.read_text())["aggregate"][run_file]
    assert results["run.tsv.bz2"] == results["run.tsv"] and results["run.tsv"]["MRR@10"] > 0
    topics = gzip.decompress((data_dir / "topics.msmarco-passage.dev-subset.txt.gz").read_bytes())
    (tmp_path / "queries.dev.small.tsv.bz2").write_bytes(bz2.compress(topics))
    assert len(read_topics(tmp_path / "queries.dev.small.tsv.bz2")) == len(devsmall)
    # a truncated download is named, not a traceback
    (tmp_path / "cut.tsv.bz2").write_bytes((tmp_path / "run.tsv.bz2").read_bytes()[:2000])
    with pytest.raises(InputError, match=r"cut\.tsv\.bz2(:\d+)?: bz2 file is truncated or corrupt"):
        read_run_scores(tmp_path / "cut.tsv.bz2")
    argv = ["eval", "--run", str(tmp_path / "cut.tsv.bz2"), "--qrels", str(qrels_path)]
    assert main([*argv, "--preset", "msmarco"]) == 2
    assert "bz2 file is truncated or corrupt" in capsys.readouterr().err


def test_msmarco_runs_are_tab_separated_as_the_official_script_reads_them(tmp_path, capsys):
    # msmarco_eval.py splits each line on tabs: a space-separated run is not valid there
    (tmp_path / "qrels.tsv").write_text("1\t0\t7\t1\n")
    (tmp_path / "run.tsv").write_text("1\t5\t1\n1 7 2\n")
    argv = ["eval", "--run", str(tmp_path / "run.tsv"), "--qrels", str(tmp_path / "qrels.tsv")]
    assert main([*argv, "--preset", "msmarco"]) == 2
    err = capsys.readouterr().err
    assert "run.tsv:2: columns separated by spaces: MS MARCO runs are tab-separated" in err
    for reader in (read_run, read_run_scores):
        with pytest.raises(InputError, match=r"run\.tsv:2: columns separated by spaces"):
            reader(tmp_path / "run.tsv")
    # an empty column between two tabs: the script's int('') fails; so does kirag
    (tmp_path / "run.tsv").write_text("1\t\t7\t1\n")
    with pytest.raises(InputError, match=r"run\.tsv:1: an empty column"):
        read_run_scores(tmp_path / "run.tsv", value="rank")
    # spaces around tab-separated values, Windows line ends and a score column are fine
    (tmp_path / "run.tsv").write_text("1 \t5\t1\r\n1\t7 \t2\t0.5\n")
    assert main([*argv, "--preset", "msmarco"]) == 0 and "0.5000" in capsys.readouterr().out
    assert read_run_scores(tmp_path / "run.tsv") == {"1": {"5": -1.0, "7": 0.5}}
