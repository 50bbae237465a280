"""Nothing lost, nothing silently wrong: concurrent and killed builds, --overwrite, and OS errors
as one line naming the user's path (issue 15, items 1, 2, 6, 7). Real processes, real files."""

from __future__ import annotations

import gzip
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kirag.cli import main
from kirag.core.atomic import TMP_MARK, BuildLockedError, atomic_directory, build_lock, lock_path
from kirag.errors import InputError

SAMPLE = "enwiki-sample"  # 4,996 passages: a build long enough to pause or kill mid-way


def kirag_process(*args: str, fsize: int | None = None, **kw) -> subprocess.Popen:
    """`kirag ARGS` as a real process (optionally with a file-size limit: a full disk)."""

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    env = {**os.environ, "KIRAG_PROGRESS": "0"}
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "kirag"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=limit,
        **kw,
    )


def run_kirag(*args: str, fsize: int | None = None, cwd=None) -> tuple[int, str]:
    proc = kirag_process(*args, fsize=fsize, cwd=cwd)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TMP_MARK in p.name)


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)


def assert_one_line_error(rc: int, err: str, *names: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert "Traceback" not in err, err
    assert lines and lines[-1].startswith("kirag ") and ": error: " in lines[-1], err
    for name in names:
        assert name in lines[-1], (name, lines[-1])
    assert TMP_MARK not in lines[-1], lines[-1]  # the user's path, never kirag's temporary
    return lines[-1]


# --- item 1: builds of one target exclude each other ------------------------------------------


def test_a_second_build_of_the_same_index_fails_at_once_and_the_first_completes(tmp_path):
    target = tmp_path / "idx"
    first = kirag_process("index", "bm25", "--corpus", SAMPLE, "--index", str(target))
    try:
        wait_for(lambda: temporaries(tmp_path))  # the first build is under way...
        os.kill(first.pid, signal.SIGSTOP)  # ...and paused mid-way
        started = time.monotonic()
        rc, err = run_kirag(
            "index",
            "bm25",
            "--corpus",
            str(Path(__file__).parent / "data" / "enwiki-slice.jsonl"),
            "--index",
            str(target),
        )
        line = assert_one_line_error(rc, err, str(target), "another kirag build")
        assert time.monotonic() - started < 30, "the second build must fail at once"
        assert temporaries(tmp_path), f"the second build deleted the first one's work: {line}"
        assert not target.exists()
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    from kirag.retrieval.bm25 import BM25Retriever

    assert len(BM25Retriever(target).docstore) == 4996
    assert temporaries(tmp_path) == [] and not lock_path(target).exists()


def test_a_killed_build_leaves_nothing_that_loads_and_the_next_build_cleans_up(tmp_path):
    target = tmp_path / "idx"
    first = kirag_process("index", "bm25", "--corpus", SAMPLE, "--index", str(target))
    wait_for(lambda: temporaries(tmp_path))
    first.kill()  # SIGKILL: no clean-up code runs
    first.communicate()
    assert temporaries(tmp_path) and not target.exists()
    rc, err = run_kirag(
        "index", "bm25", "--corpus", str(Path(__file__).parent / "data" / "enwiki-slice.jsonl"),
        "--index", str(target),
    )  # fmt: skip
    assert rc == 0, err
    assert temporaries(tmp_path) == []  # the dead build's folder is gone, the lock is free
    assert json.loads((target / "manifest.json").read_text())["documents"] == 314


def test_the_lock_is_held_across_processes_and_reentrant_within_one(tmp_path):
    target = tmp_path / "idx"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from kirag.core.atomic import build_lock\n"
            f"with build_lock({str(target)!r}):\n print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        stale = tmp_path / f".idx{TMP_MARK}live"
        stale.mkdir()
        with pytest.raises(BuildLockedError, match="another kirag build"), atomic_directory(target):
            pass
        assert stale.is_dir(), "a live build's temporary folder must survive"
    finally:
        holder.kill()
        holder.wait()
    with build_lock(target), atomic_directory(target) as tmp:  # nested in one process
        (tmp / "manifest.json").write_text('{"kind": "bm25"}')
    assert not stale.exists() and target.is_dir()


# --- item 2: --overwrite replaces only a kirag index, never the input -------------------------


def test_overwrite_refuses_a_folder_that_is_not_a_kirag_index(tmp_path, enwiki_slice, capsys):
    notes = tmp_path / "proj"
    notes.mkdir()
    (notes / "notes.txt").write_text("my notes")
    code = main(
        ["index", "bm25", "--corpus", str(enwiki_slice), "--index", str(notes), "--overwrite"]
    )
    assert code == 2
    assert "is not a kirag index" in capsys.readouterr().err
    assert (notes / "notes.txt").read_text() == "my notes"


def test_overwrite_refuses_a_target_that_holds_the_corpus(tmp_path, enwiki_slice, capsys):
    proj = tmp_path / "proj"
    proj.mkdir()
    corpus = proj / "corpus.jsonl"
    shutil.copy(enwiki_slice, corpus)
    (proj / "notes.txt").write_text("my notes")
    for target in (proj, tmp_path):
        code = main(
            ["index", "bm25", "--corpus", str(corpus), "--index", str(target), "--overwrite"]
        )
        assert code == 2
        assert "overlap" in capsys.readouterr().err
    assert sorted(p.name for p in proj.iterdir()) == ["corpus.jsonl", "notes.txt"]


def test_overwrite_replaces_a_kirag_index(tmp_path, enwiki_slice, capsys):
    target = tmp_path / "idx"
    argv = ["index", "bm25", "--corpus", str(enwiki_slice), "--index", str(target)]
    assert main(argv) == 0
    (target / "manifest.json").write_text(
        (target / "manifest.json").read_text().replace('"kind": "bm25"', '"kind": "mine"')
    )
    assert main([*argv, "--overwrite"]) == 2  # a manifest of an unknown kind is not kirag's
    assert "not a kirag index" in capsys.readouterr().err
    shutil.rmtree(target)
    assert main(argv) == 0
    assert main([*argv, "--overwrite"]) == 0
    assert json.loads((target / "manifest.json").read_text())["kind"] == "bm25"


@pytest.mark.parametrize("name", [".", ".."])
def test_index_dot_is_refused_before_any_work(tmp_path, enwiki_slice, capsys, monkeypatch, name):
    work = tmp_path / "here"
    work.mkdir()
    monkeypatch.chdir(work)
    code = main(["index", "bm25", "--corpus", str(enwiki_slice), "--index", name, "--overwrite"])
    assert code == 2
    assert "names no folder of its own" in capsys.readouterr().err
    assert list(work.iterdir()) == []


# --- item 6: one-line errors instead of tracebacks ---------------------------------------------


@pytest.mark.parametrize("skip", [False, True])
def test_a_truncated_gzip_corpus_is_one_line_naming_the_file(tmp_path, skip, capsys):
    from kirag.io.corpus import bundled_corpus_path

    truncated = tmp_path / "corpus.jsonl.gz"
    truncated.write_bytes(bundled_corpus_path(SAMPLE).read_bytes()[:3000])
    argv = ["index", "bm25", "--corpus", str(truncated), "--index", str(tmp_path / "idx")]
    code = main(argv + (["--skip-bad-lines"] if skip else []))
    err = capsys.readouterr().err
    assert code == 2
    assert f"{truncated}:" in err and "truncated or corrupt" in err
    assert not (tmp_path / "idx").exists() and temporaries(tmp_path) == []


def test_a_corrupt_gzip_stream_names_file_and_line(tmp_path):
    from kirag.io.corpus import read_corpus

    path = tmp_path / "c.jsonl.gz"
    lines = "".join(
        json.dumps({"id": str(i), "contents": f"passage {i * 7919}"}) + "\n" for i in range(5000)
    )
    data = gzip.compress(lines.encode())
    path.write_bytes(data[:-8] + bytes(8))  # a wrong CRC: the stream does not check out
    with pytest.raises(InputError, match=r"c\.jsonl\.gz:\d+: gzip file is truncated"):
        list(read_corpus(path))


def test_an_edited_manifest_kind_is_one_line(tmp_path, enwiki_slice, capsys):
    target = tmp_path / "idx"
    assert main(["index", "bm25", "--corpus", str(enwiki_slice), "--index", str(target)]) == 0
    manifest = target / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"kind": "bm25"', '"kind": "dense"'))
    assert main(["search", "--index", str(target), "--query", "Animal Farm"]) == 2
    err = capsys.readouterr().err
    assert "manifest without encoder" in err and str(manifest) in err


def test_a_failed_shard_write_leaves_no_stray_temporary(tmp_path):
    from kirag.retrieval.dense import Encoder, encode_to_shards

    work = tmp_path / "encode"
    (work / "shard_00000.npy").mkdir(parents=True)  # the rename onto it fails
    with pytest.raises(OSError):
        encode_to_shards(Encoder("minilm", device="cpu"), ["a text", "another"], work, 2)
    assert sorted(p.name for p in work.iterdir()) == ["shard_00000.npy"]


# --- one OS error per CLI command becomes one line naming the user's path -----------------------


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, enwiki_slice) -> Path:
    target = tmp_path_factory.mktemp("os") / "idx"
    assert main(["index", "bm25", "--corpus", str(enwiki_slice), "--index", str(target)]) == 0
    return target


@pytest.fixture
def afile(tmp_path) -> Path:
    """A file standing where an output needs a folder."""
    path = tmp_path / "afile"
    path.write_text("not a folder")
    return path


@pytest.fixture
def unwritable(tmp_path) -> Path:
    """A folder this process cannot write to (as root, chmod does not stop writes: /sys does)."""
    if os.geteuid() != 0:
        folder = tmp_path / "readonly"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    folder = Path("/sys")
    try:
        (folder / "kirag-probe").touch()
    except OSError:
        yield folder
        return
    pytest.skip("no unwritable folder available to root here")


def topics(tmp_path: Path, stopwords_only: bool = False) -> Path:
    """Two real questions; with `stopwords_only` a third made of stopwords."""
    path = tmp_path / "topics.tsv"
    text = "q1\tWho wrote Animal Farm?\nq3\thistory of the city in the war\n"
    path.write_text(text + ("q2\tthe of and\n" if stopwords_only else ""))
    return path


def run_file(tmp_path: Path, small_index: Path, stopwords_only: bool = False) -> Path:
    out = tmp_path / "run.trec"
    assert main(["search", "--index", str(small_index), "--topics",
                 str(topics(tmp_path, stopwords_only)), "--output", str(out)]) == 0  # fmt: skip
    return out


def test_index_os_errors(tmp_path, afile, unwritable, enwiki_slice, capsys):
    corpus = str(enwiki_slice)
    assert main(["index", "bm25", "--corpus", corpus, "--index", str(afile / "idx")]) == 2
    assert_one_line_error(2, capsys.readouterr().err, str(afile), "a file stands where")
    assert main(["index", "bm25", "--corpus", corpus, "--index", str(unwritable / "idx")]) == 2
    assert_one_line_error(2, capsys.readouterr().err, str(unwritable))


def test_index_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, enwiki_slice):
    target = tmp_path / "idx"
    rc, err = run_kirag(
        "index", "bm25", "--corpus", str(enwiki_slice), "--index", str(target), fsize=64_000
    )
    assert_one_line_error(rc, err, str(target))
    assert not target.exists() and temporaries(tmp_path) == []


def test_search_os_errors(tmp_path, afile, unwritable, small_index, capsys):
    for out, name in ((afile / "run.trec", str(afile)), (unwritable / "run.trec", str(unwritable))):
        argv = ["search", "--index", str(small_index), "--topics", str(topics(tmp_path))]
        assert main([*argv, "--output", str(out)]) == 2
        assert_one_line_error(2, capsys.readouterr().err, name)
    rc, err = run_kirag(
        "search", "--index", str(small_index), "--topics", str(topics(tmp_path)), "--k", "300",
        "--output", str(tmp_path / "big.trec"), fsize=4_000,
    )  # fmt: skip
    assert_one_line_error(rc, err, str(tmp_path / "big.trec"))
    assert not (tmp_path / "big.trec").exists() and temporaries(tmp_path) == []


def test_search_warns_about_queries_without_hits(tmp_path, small_index, capsys):
    out = run_file(tmp_path, small_index, stopwords_only=True)
    err = capsys.readouterr().err
    assert "1 of 3 queries got no hits (e.g. q2)" in err and "stopwords" in err
    config = json.loads(Path(f"{out}.config.json").read_text())
    assert config["results"]["queries_without_hits"] == 1


def test_rerank_os_error_before_the_model_loads(tmp_path, afile, small_index, capsys):
    run = run_file(tmp_path, small_index)
    started = time.monotonic()
    code = main(["rerank", "--run", str(run), "--topics", str(topics(tmp_path)), "--index",
                 str(small_index), "--output", str(afile / "rr.trec")])  # fmt: skip
    assert code == 2
    assert_one_line_error(2, capsys.readouterr().err, str(afile))
    assert time.monotonic() - started < 5  # no model was loaded


def test_answer_os_error_before_the_index_loads(tmp_path, afile, capsys):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "1", "question": "Who?", "answers": ["x"]}\n')
    code = main(["answer", "--index", str(tmp_path / "missing"), "--questions", str(questions),
                 "--answers", str(afile / "answers.jsonl")])  # fmt: skip
    assert code == 2
    assert_one_line_error(2, capsys.readouterr().err, str(afile))


def test_eval_os_errors(tmp_path, afile, unwritable, small_index, data_dir, capsys):
    run = run_file(tmp_path, small_index)
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q1 0 doc-does-not-matter 1\n")
    for out, name in ((afile / "r.json", str(afile)), (unwritable / "r.json", str(unwritable))):
        code = main(["eval", "--run", str(run), "--qrels", str(qrels), "--output", str(out)])
        assert code == 2
        assert_one_line_error(2, capsys.readouterr().err, name)


def test_submit_os_error(tmp_path, afile, small_index, capsys):
    run = run_file(tmp_path, small_index)
    code = main(["submit", "trec", "--run", str(run), "--topics", str(topics(tmp_path)),
                 "--tag", "kirag1", "--output", str(afile / "sub.trec")])  # fmt: skip
    assert code == 2
    assert_one_line_error(2, capsys.readouterr().err, str(afile))


def test_bench_os_error_before_the_benchmark_runs(tmp_path, afile, capsys):
    started = time.monotonic()
    assert main(["bench", "eval", "--output", str(afile / "bench.json")]) == 2
    assert_one_line_error(2, capsys.readouterr().err, str(afile))
    assert time.monotonic() - started < 5


def test_debug_logging_keeps_the_traceback_for_developers(tmp_path, afile, enwiki_slice):
    rc, err = run_kirag("--log-level", "DEBUG", "index", "bm25", "--corpus", str(enwiki_slice),
                        "--index", str(afile / "idx"))  # fmt: skip
    assert (
        rc == 2 and "Traceback" in err and err.rstrip().splitlines()[-1].startswith("kirag index")
    )


# --- item 7: what was skipped is recorded; a bad corpus fails before a model loads --------------


def test_skipped_lines_are_recorded_in_the_run_config(tmp_path, enwiki_slice, capsys):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(enwiki_slice.read_text() + '{"id": "broken"\n{"id": "x"}\n')
    target = tmp_path / "idx"
    argv = ["index", "bm25", "--corpus", str(corpus), "--index", str(target), "--skip-bad-lines"]
    assert main(argv) == 0
    skipped = json.loads((target / "kirag-config.json").read_text())["results"]["skipped_lines"]
    assert skipped[str(corpus)]["skipped"] == 2 and skipped[str(corpus)]["read"] == 314
    assert skipped[str(corpus)]["first_problems"][0].startswith(f"{corpus}:315:")


def test_a_dense_build_reads_the_corpus_before_loading_the_encoder(tmp_path):
    from kirag.retrieval.dense import DenseRetriever

    corpus = tmp_path / "bad.jsonl"
    corpus.write_text('{"id": "1", "contents": "fine"}\n{"id": "2"\n')
    not_a_model = tmp_path / "not-a-model"  # an existing path that no library can load
    not_a_model.mkdir()
    with pytest.raises(InputError, match=r"bad\.jsonl:2: malformed JSON"):
        DenseRetriever.build(corpus, tmp_path / "idx", model=str(not_a_model))


def test_a_failed_overwrite_keeps_the_old_index(tmp_path, enwiki_slice, capsys):
    target = tmp_path / "idx"
    assert main(["index", "bm25", "--corpus", str(enwiki_slice), "--index", str(target)]) == 0
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert (
        main(["index", "bm25", "--corpus", str(empty), "--index", str(target), "--overwrite"]) == 2
    )
    assert "no documents" in capsys.readouterr().err
    assert json.loads((target / "manifest.json").read_text())["documents"] == 314
    assert temporaries(tmp_path) == []


def test_an_index_set_aside_by_a_killed_overwrite_is_put_back(tmp_path, enwiki_slice):
    target = tmp_path / "idx"
    assert main(["index", "bm25", "--corpus", str(enwiki_slice), "--index", str(target)]) == 0
    os.replace(target, tmp_path / f".idx{TMP_MARK}old")  # killed between the two renames
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert (
        main(["index", "bm25", "--corpus", str(empty), "--index", str(target), "--overwrite"]) == 2
    )
    assert json.loads((target / "manifest.json").read_text())["documents"] == 314


def test_a_faiss_write_on_a_full_disk_is_an_os_error_naming_the_index(tmp_path):
    script = (
        "import resource, numpy as np\n"
        "from kirag.retrieval.faiss_index import build_faiss_index, save_faiss_index\n"
        "index = build_faiss_index(np.random.rand(5000, 8).astype('float32'), 'flat')\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (10000, 10000))\n"
        "try:\n"
        f"    save_faiss_index(index, {str(tmp_path / 'index.faiss')!r})\n"
        "except OSError as exc:\n"
        "    print(exc.filename, '|', exc.strerror)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.startswith(f"{tmp_path / 'index.faiss'} | FAISS could not write"), out
    assert "File too large" in out.stdout
    assert list(tmp_path.iterdir()) == []  # no partial file left


def test_an_index_inside_a_corpus_folder_is_refused(tmp_path, enwiki_slice, capsys):
    folder = tmp_path / "collection"
    folder.mkdir()
    shutil.copy(enwiki_slice, folder / "part1.jsonl")
    code = main(["index", "bm25", "--corpus", str(folder), "--index", str(folder / "idx")])
    assert code == 2
    assert "overlap" in capsys.readouterr().err
    assert [p.name for p in folder.iterdir()] == ["part1.jsonl"]
