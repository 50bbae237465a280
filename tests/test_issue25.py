"""Issue 25, items 1-5 and 7-9, one test each, as a careless user meets them (item 6, Ctrl-C, is
tests/test_interrupts.py; the generated fuzz of every flag is tests/test_cli_fuzz.py).
In-process through `kirag.cli.main` on real files and real indexes."""

from __future__ import annotations

import json
import os
import resource
import shutil

import pytest

from kirag.cli import main
from kirag.errors import KiragError, SettingsError

RUN = "q1 Q0 Lincoln#0 1 9.5 bm25\nq1 Q0 Alabama#1 2 3.2 bm25\n"
QRELS = "q1 0 Lincoln#0 1\n"


def kirag(capsys, *argv: str) -> tuple[int, str]:
    try:
        code = main(["-q", *argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err.strip()


def one_line(err: str) -> str:
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def files(tmp_path):
    (tmp_path / "t.tsv").write_text("q1\tLincoln president\n")
    (tmp_path / "r.trec").write_text(RUN)
    (tmp_path / "q.txt").write_text(QRELS)
    return tmp_path


# --- 1-5: no command destroys its own input ------------------------------------------------


def test_1_search_refuses_to_write_its_run_over_the_topics(files, enwiki_bm25, capsys):
    topics = str(files / "t.tsv")
    code, err = kirag(capsys, "search", "--index", str(enwiki_bm25), "--topics", topics, "--output", topics)  # fmt: skip
    assert code == 2 and "--topics" in one_line(err) and "--output" in err
    assert (files / "t.tsv").read_text() == "q1\tLincoln president\n"


def test_1_a_symlink_to_the_topics_is_the_same_file(files, enwiki_bm25, capsys):
    os.symlink(files / "t.tsv", files / "link.trec")
    code, err = kirag(capsys, "search", "--index", str(enwiki_bm25), "--topics", str(files / "t.tsv"), "--output", str(files / "link.trec"))  # fmt: skip
    assert code == 2 and "same file" in one_line(err)
    assert (files / "t.tsv").read_text() == "q1\tLincoln president\n"


@pytest.mark.parametrize(
    ("flags", "names"),
    [
        (["--output", "r.trec"], ("--run", "--output")),
        (["--per-query", "q.txt"], ("--qrels", "--per-query")),
        (["--output", "x.json", "--per-query", "x.json"], ("--output", "--per-query")),
        (["--output", "hard.trec"], ("--run", "--output")),  # a hard link of the run
    ],
)
def test_2_eval_refuses_outputs_over_its_inputs_or_each_other(files, capsys, monkeypatch, flags, names):  # fmt: skip
    monkeypatch.chdir(files)
    os.link(files / "r.trec", files / "hard.trec")
    code, err = kirag(capsys, "eval", "--run", "r.trec", "--qrels", "q.txt", *flags)
    assert code == 2 and all(n in one_line(err) for n in names), err
    assert (files / "r.trec").read_text() == RUN and (files / "q.txt").read_text() == QRELS
    assert not (files / "x.json").exists()


@pytest.mark.parametrize("flag", ["--output", "--cache", "--explanations"])
def test_3_4_rerank_refuses_to_write_over_the_first_stage_run(files, enwiki_bm25, capsys, flag):
    run = str(files / "r.trec")
    argv = ["rerank", "--run", run, "--topics", str(files / "t.tsv"), "--index", str(enwiki_bm25)]
    argv += ["--output", str(files / "out.trec")] if flag != "--output" else []
    code, err = kirag(capsys, *argv, flag, run)
    assert code == 2 and "--run" in one_line(err) and flag in err
    assert (files / "r.trec").read_text() == RUN


def test_4_the_default_cache_is_checked_too(files, enwiki_bm25, capsys):
    """--output X puts the cache at X.scores.jsonl: an input there is refused as well."""
    shutil.copy(files / "r.trec", files / "o.trec.scores.jsonl")
    run = str(files / "o.trec.scores.jsonl")
    code, err = kirag(capsys, "rerank", "--run", run, "--topics", str(files / "t.tsv"), "--index", str(enwiki_bm25), "--output", str(files / "o.trec"))  # fmt: skip
    assert code == 2 and "--cache" in one_line(err) and "--run" in err
    assert (files / "o.trec.scores.jsonl").read_text() == RUN


def test_5_a_read_only_output_is_not_replaced(files, enwiki_bm25, capsys):
    output = files / "ro.trec"
    output.write_text("kept\n")
    output.chmod(0o444)
    code, err = kirag(capsys, "search", "--index", str(enwiki_bm25), "--topics", str(files / "t.tsv"), "--output", str(output))  # fmt: skip
    assert code == 2 and "read-only" in one_line(err) and "--output" in err
    assert output.read_text() == "kept\n"


# --- 7: metric names and cutoffs are kirag's to check -------------------------------------


@pytest.mark.parametrize("metric", ["nDCG@0", "P@0", "R@0", "MAP@0", "nDCG@1.5", "MRR@0", "R@-3", "nDCG@", "@10"])  # fmt: skip
def test_7_bad_metric_cutoffs_are_one_line(files, capsys, metric):
    code, err = kirag(capsys, "eval", "--run", str(files / "r.trec"), "--qrels", str(files / "q.txt"), "--metrics", metric)  # fmt: skip
    assert code == 2 and metric in one_line(err) and "--metrics" in err


def test_7_the_library_refuses_them_too():
    from kirag.eval.metrics import evaluate

    run = {"q1": {"Lincoln#0": 1.0}}
    with pytest.raises(SettingsError, match=r"'MRR@0'.*integer >= 1"):
        evaluate(run, {"q1": {"Lincoln#0": 1}}, ["MRR@0"])
    with pytest.raises(KiragError, match="cutoff"):
        evaluate(run, {"q1": {"Lincoln#0": 1}}, ["nDCG(cutoff=0)"])
    assert evaluate(run, {"q1": {"Lincoln#0": 1}}, ["MRR@1"]).aggregate == {"MRR@1": 1.0}


# --- 8: library errors a user can cause are KiragErrors naming the parameter -------------


def test_8_search_k_zero_is_one_line_and_the_library_names_k(files, enwiki_bm25, capsys):
    from kirag.retrieval.bm25 import BM25Retriever

    for k in ("0", "-5"):
        code, err = kirag(capsys, "search", "--index", str(enwiki_bm25), "--query", "Lincoln", "--k", k)  # fmt: skip
        assert code == 2 and "--k" in one_line(err) and "integer >= 1" in err
    retriever = BM25Retriever(enwiki_bm25)
    with pytest.raises(SettingsError, match=r"^k must be an integer >= 1 \(got 0\)$"):
        retriever.search("Lincoln", k=0)
    with pytest.raises(SettingsError, match="threads"):
        retriever.batch_search({"q": "Lincoln"}, k=3, threads=0)


def test_8_chains_and_rerank_errors_are_kirag_errors(files, capsys):
    from kirag.rerank.base import as_hits

    from kirag.rag.chains import IterativeRetriever
    from kirag.types import Hit

    with pytest.raises(SettingsError, match="max_turns must be an integer >= 1"):
        IterativeRetriever(None, max_turns=0)  # checked before the index is touched
    with pytest.raises(KiragError, match="without their document text"):
        as_hits([Hit("d1", 1.0, 1)])
    code, err = kirag(capsys, "answer", "--index", str(files / "none"), "--question", "Who?", "--turns", "0")  # fmt: skip
    assert code == 2 and "--turns" in one_line(err)


# --- 9: silently odd inputs now get a word -------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [["--threads", "0"], ["--threads", "-1"], ["--depth", "0"], ["--depth", "-1"]],
)
def test_9_search_threads_and_depth_below_one(files, enwiki_bm25, capsys, flags):
    code, err = kirag(capsys, "search", "--index", str(enwiki_bm25), "--query", "x", *flags)
    assert code == 2 and flags[0] in one_line(err)


def test_9_bm25_k1_and_b_out_of_range(files, enwiki_slice, capsys):
    index = str(files / "idx")
    for flags in (["--k1", "-1"], ["--b", "5"], ["--b", "-0.1"], ["--k1", "nan"]):
        code, err = kirag(capsys, "index", "bm25", "--corpus", str(enwiki_slice), "--index", index, *flags)  # fmt: skip
        assert code == 2 and flags[0] in one_line(err)
    assert not (files / "idx").exists()
    from kirag.retrieval.bm25 import BM25Retriever

    with pytest.raises(SettingsError, match=r"^b must be a finite number from 0 to 1 \(got 5\)$"):
        BM25Retriever.build(enwiki_slice, files / "idx", b=5)


def test_9_empty_topics_and_a_header_line(files, enwiki_bm25, capsys):
    (files / "empty.tsv").write_text("")
    (files / "header.tsv").write_text("qid\tquery\nq1\tLincoln\n")
    out = str(files / "o.trec")
    code, err = kirag(capsys, "search", "--index", str(enwiki_bm25), "--topics", str(files / "empty.tsv"), "--output", out)  # fmt: skip
    assert code == 2 and "empty.tsv" in one_line(err) and "no topics" in err
    code, err = kirag(capsys, "search", "--index", str(enwiki_bm25), "--topics", str(files / "header.tsv"), "--output", out)  # fmt: skip
    assert code == 2 and "header.tsv:1:" in one_line(err) and "header" in err
    assert not (files / "o.trec").exists()


def test_9_fusing_indexes_of_different_corpora(files, enwiki_bm25, capsys):
    (files / "other.jsonl").write_text('{"id": "x1", "contents": "another collection"}\n')
    other = str(files / "other-bm25")
    assert kirag(capsys, "index", "bm25", "--corpus", str(files / "other.jsonl"), "--index", other)[0] == 0  # fmt: skip
    code, err = kirag(capsys, "search", "--index", str(enwiki_bm25), "--index", other, "--query", "Lincoln")  # fmt: skip
    assert code == 2 and "different corpora" in one_line(err)
    code, _ = kirag(capsys, "search", "--index", str(enwiki_bm25), "--index", str(enwiki_bm25), "--query", "Lincoln")  # fmt: skip
    assert code == 0


def test_9_shard_size_zero_before_the_model_loads(files, capsys):
    """Refused by argparse: no corpus read, no model loaded (the corpus does not even exist)."""
    code, err = kirag(capsys, "index", "dense", "--corpus", str(files / "nothing.jsonl"), "--index", str(files / "d"), "--shard-size", "0")  # fmt: skip
    assert code == 2 and "--shard-size" in one_line(err)


def test_9_cjk_and_emoji_queries_are_not_called_stopwords(files, enwiki_bm25, capsys):
    (files / "cjk.tsv").write_text("q1\t林肯 总统\nq2\t🦁🦁\nq3\tLincoln\n")
    code, err = kirag(capsys, "search", "--index", str(enwiki_bm25), "--topics", str(files / "cjk.tsv"), "--output", str(files / "o.trec"))  # fmt: skip
    assert code == 0 and "2 of 3 queries got no hits" in err and "never saw" in err


def test_9_cr_only_line_endings_get_a_hint(files, enwiki_bm25, capsys):
    (files / "cr.tsv").write_bytes(b"q1\tLincoln\rq2\tAlabama\rq3\tfarm\r")
    code, err = kirag(capsys, "search", "--index", str(enwiki_bm25), "--topics", str(files / "cr.tsv"), "--output", str(files / "o.trec"))  # fmt: skip
    assert code == 2 and "carriage return" in one_line(err)


def test_9_a_pretty_printed_json_corpus_suggests_jsonl(files, capsys):
    docs = [{"id": "d1", "contents": "one"}, {"id": "d2", "contents": "two"}]
    (files / "corpus.jsonl").write_text(json.dumps(docs, indent=2))
    code, err = kirag(capsys, "index", "bm25", "--corpus", str(files / "corpus.jsonl"), "--index", str(files / "i"))  # fmt: skip
    assert code == 2 and "JSONL" in one_line(err) and "corpus.jsonl:1:" in err


def test_9_the_utf8_advice_names_no_missing_flag(files, enwiki_bm25, capsys):
    (files / "latin.tsv").write_bytes("q1\tcaf\xe9\n".encode("latin-1"))
    code, err = kirag(capsys, "search", "--index", str(enwiki_bm25), "--topics", str(files / "latin.tsv"), "--output", str(files / "o.trec"))  # fmt: skip
    assert code == 2 and "iconv" in one_line(err) and "pass the right encoding" not in err


def test_9_an_empty_corpus_is_named(files, capsys):
    (files / "nothing.jsonl").write_text("\n\n")
    code, err = kirag(capsys, "index", "bm25", "--corpus", str(files / "nothing.jsonl"), "--index", str(files / "i"))  # fmt: skip
    assert code == 2 and "nothing.jsonl" in one_line(err) and "no documents" in err


def test_9_a_failed_dense_build_names_its_resumable_shards(files, capsys):
    """A real failure after the shards were written (a file-size limit: the disk is full when
    the merged embeddings are written); the error says where the finished work waits."""
    corpus = files / "c.jsonl"
    corpus.write_text("".join(f'{{"id": "d{i}", "contents": "passage {i}"}}\n' for i in range(24)))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    argv = ["index", "dense", "--corpus", str(corpus), "--index", str(files / "dense")]
    resource.setrlimit(resource.RLIMIT_FSIZE, (22_000, hard))  # shards of 8 fit, 24 do not
    try:
        code, err = kirag(capsys, *argv, "--shard-size", "8")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert code == 2, err
    last = err.splitlines()[-1]  # (transformers' own "Loading weights" bar comes before it)
    assert last.startswith("kirag index: error:") and "Traceback" not in err, err
    assert ".dense.encode-" in last and "resumes" in last
    kept = next(files.glob(".dense.encode-*"))
    assert sorted(p.name for p in kept.iterdir()) == ["shard_00000.npy", "shard_00001.npy", "shard_00002.npy"]  # fmt: skip
