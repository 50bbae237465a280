"""Nothing silently wrong in run files: NaN/infinite scores and documents ranked twice are
rejected with file:line by every run reader, fusion refuses non-finite scores naming the query
and document, and the id rule (no whitespace in document or query ids) holds from the corpus
and topics readers to every run writer."""

from __future__ import annotations

import json
import math

import pytest
from kirag.eval.runs import read_run, read_run_scores, write_run
from kirag.rerank.base import apply_scores
from kirag.retrieval.fusion import fuse_with_first_stage

from kirag.cli import main
from kirag.errors import InputError
from kirag.io.corpus import read_corpus
from kirag.io.topics import read_topics
from kirag.types import Hit

NON_FINITE = ["nan", "NaN", "inf", "-inf", "Infinity"]


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize(
    "name, line",
    [
        ("run.trec", "q1 Q0 d2 2 {v} t"),
        ("run.tsv", "q1\td2\t2\t{v}"),
        ("run.jsonl", '{{"qid": "q1", "hits": [{{"docid": "d2", "rank": 2, "score": "{v}"}}]}}'),
    ],
)
def test_non_finite_scores_are_refused_with_file_and_line(tmp_path, value, name, line):
    path = tmp_path / name
    first = "q1 Q0 d1 1 2.0 t" if name.endswith("trec") else "q1\td1\t1\t2.0"
    path.write_text(("" if name.endswith("jsonl") else first + "\n") + line.format(v=value) + "\n")
    where = f"{path}:{1 if name.endswith('jsonl') else 2}: "
    for reader in (read_run, read_run_scores):
        with pytest.raises(InputError) as caught:
            reader(path)
        message = str(caught.value)
        assert message.startswith(where) and "finite" in message and "\n" not in message


def test_eval_refuses_a_nan_score_instead_of_moving_the_metrics(tmp_path, capsys):
    run = tmp_path / "run.trec"
    run.write_text("1 Q0 a 1 2.0 t\n1 Q0 b 2 nan t\n")
    (tmp_path / "qrels.txt").write_text("1 0 b 1\n")
    argv = ["eval", "--run", str(run), "--qrels", str(tmp_path / "qrels.txt")]
    for check in ([], ["--check"]):
        assert main([*argv, *check]) == 2
        err = capsys.readouterr().err
        assert f"{run}:2:" in err and "Traceback" not in err


def _reranked(first_stage: list[float], rerank: list[float]) -> list[Hit]:
    hits = [Hit(f"d{i}", s, i) for i, s in enumerate(first_stage, 1)]
    return apply_scores(hits, rerank)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("method", ["interpolate", "rrf"])
def test_fusion_refuses_non_finite_scores_naming_query_and_document(bad, method):
    with pytest.raises(InputError, match=r"query 'q7', document 'd2': its first-stage score"):
        fuse_with_first_stage(_reranked([3.0, bad, 1.0], [0.2, 0.5, 0.1]), method, qid="q7")
    with pytest.raises(InputError, match=r"document 'd3': its reranker score"):
        fuse_with_first_stage(_reranked([3.0, 2.0, 1.0], [0.2, 0.5, bad]), method)
    fused = fuse_with_first_stage(_reranked([3.0, 2.0, 1.0], [0.2, 0.5, 0.1]), method)
    assert all(math.isfinite(h.score) for h in fused)


def test_a_document_ranked_twice_is_refused_with_its_line_or_skipped_and_counted(tmp_path):
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 a 1 3.0 t\nq1 Q0 b 2 2.0 t\nq2 Q0 a 1 1.0 t\nq1 Q0 a 3 1.0 t\n")
    with pytest.raises(InputError, match=rf"^{run}:4: query 'q1' ranks document 'a' twice$"):
        read_run(run)
    kept = read_run(run, on_error="skip")  # trec_eval's users keep the first, best-ranked line
    assert [h.doc_id for h in kept["q1"]] == ["a", "b"] and [h.rank for h in kept["q1"]] == [1, 2]
    jsonl = tmp_path / "run.jsonl"
    hits = [{"docid": "a", "rank": 1, "score": 2.0}, {"docid": "a", "rank": 2, "score": 1.0}]
    jsonl.write_text(json.dumps({"qid": "q1", "hits": hits}) + "\n")
    with pytest.raises(InputError, match=rf"^{jsonl}:1: query 'q1' ranks document 'a' twice$"):
        read_run(jsonl)


def test_rerank_refuses_a_run_with_a_duplicate_before_loading_a_model(tmp_path, capsys):
    run = tmp_path / "bm25.trec"
    run.write_text("q1 Q0 Aristotle#0 1 2.0 t\nq1 Q0 Aristotle#0 2 1.0 t\n")
    topics = tmp_path / "topics.tsv"
    topics.write_text("q1\tWho taught Alexander?\n")
    out = tmp_path / "out.trec"
    argv = ["rerank", "--run", str(run), "--topics", str(topics), "--corpus", str(topics)]
    assert main([*argv, "--output", str(out), "--model", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert f"{run}:2: query 'q1' ranks document 'Aristotle#0' twice" in err
    assert not out.exists()


@pytest.mark.parametrize("bad_id", ["a b", "a\tb", "a\nb", "a\u00a0b", "a\x1fb"])
def test_corpus_and_topics_ids_with_whitespace_are_refused_with_file_and_line(tmp_path, bad_id):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        json.dumps({"id": "ok", "contents": "fine"})
        + "\n"
        + json.dumps({"id": bad_id, "contents": "text"})
        + "\n"
    )
    with pytest.raises(InputError, match=rf"^{corpus}:2: document id .* contains whitespace"):
        list(read_corpus(corpus))
    topics = tmp_path / "topics.jsonl"
    topics.write_text(json.dumps({"qid": bad_id, "text": "a question"}) + "\n")
    with pytest.raises(InputError, match=rf"^{topics}:1: query id .* contains whitespace"):
        read_topics(topics)


def test_tsv_corpus_id_with_a_space_is_refused_and_index_builds_nothing(tmp_path, capsys):
    corpus = tmp_path / "collection.tsv"
    corpus.write_text("0\tfirst passage\n1 2\tsecond passage\n")
    index = tmp_path / "idx"
    assert main(["index", "bm25", "--corpus", str(corpus), "--index", str(index)]) == 2
    err = capsys.readouterr().err
    assert f"{corpus}:2: document id '1 2' contains whitespace" in err
    assert not index.exists()


@pytest.mark.parametrize("name", ["run.trec", "run.tsv", "run.jsonl"])
def test_run_writers_refuse_what_could_not_be_read_back(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(InputError, match=r"query 'q1' .*document id 'a b' contains whitespace"):
        write_run({"q1": [Hit("ok", 2.0, 1), Hit("a b", 1.0, 2)]}, path)
    with pytest.raises(InputError, match=r"query 'q 1' .*query id 'q 1' contains whitespace"):
        write_run({"q 1": [Hit("ok", 2.0, 1)]}, path)
    with pytest.raises(InputError, match=r"query 'q1' .*document 'b' has the score nan"):
        write_run({"q1": [Hit("a", 2.0, 1), Hit("b", math.nan, 2)]}, path)
    assert not path.exists()
    write_run({"q1": [Hit("a", 2.0, 1), Hit("b", 1.0, 2)]}, path)
    assert read_run_scores(path)["q1"].keys() == {"a", "b"}
