"""The executor seam without Ray: shard planning, cutting a stream, serial resume after a failure
at shard k (only the missing shards are computed again), and a killed `kirag index dense` that
resumes from its finished shards."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from failing_shards import FailAt, Injected
from kirag.retrieval.dense import Encoder, EncodeTask, encode_to_shards, encoder_settings

from kirag.errors import SettingsError
from kirag.scale import SerialExecutor, Shard, cut_into_shards, plan_shards


def test_plan_and_cut_agree():
    assert plan_shards(10, 4) == [Shard(0, 0, 4), Shard(1, 4, 8), Shard(2, 8, 10)]
    assert plan_shards(0, 4) == []
    pieces = list(cut_into_shards(iter(range(10)), 4))
    assert [s for s, _ in pieces] == plan_shards(10, 4)
    assert [rows for _, rows in pieces] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert plan_shards(10, 4)[2].name == "shard_00002"
    with pytest.raises(SettingsError, match="shard size"):
        plan_shards(10, 0)


@pytest.fixture(scope="module")
def encoder(minilm):
    return Encoder("minilm")


def test_serial_failure_at_shard_k_recomputes_only_the_missing_shards(
    encoder, enwiki_slice_docs, tmp_path
):
    texts = [d.contents for d in enwiki_slice_docs[:60]]
    work = tmp_path / "work"
    task = EncodeTask(encoder_settings(encoder), work, encoder=encoder)
    with pytest.raises(Injected):
        SerialExecutor().run(FailAt(task, 3), cut_into_shards(texts, 10))
    assert sorted(p.name for p in work.glob("*.npy")) == [f"shard_{i:05d}.npy" for i in range(3)]
    assert not [p for p in work.iterdir() if not p.name.endswith(".npy")]  # no temporaries

    report = SerialExecutor().run(task, cut_into_shards(texts, 10))
    assert report.skipped == [0, 1, 2]
    assert report.computed == [3, 4, 5]  # only the missing shards

    fresh = encode_to_shards(encoder, texts, tmp_path / "fresh", len(texts), shard_size=10)
    resumed = np.concatenate([np.load(work / p.name) for p in fresh])
    assert np.array_equal(resumed, np.concatenate([np.load(p) for p in fresh]))


CLI = [sys.executable, "-c", "import sys; from kirag.cli import main; sys.exit(main())"]


def _inodes(folder_glob: str, root: Path) -> dict[str, int]:
    found = {}
    for path in root.glob(folder_glob):
        with contextlib.suppress(FileNotFoundError):  # removed between glob and stat
            found[path.name] = path.stat().st_ino
    return found


def test_a_killed_dense_build_resumes_from_its_finished_shards(
    encoder, enwiki_slice, enwiki_slice_docs, tmp_path
):
    """`kirag index dense` killed (SIGKILL) once some shards are written; the rerun keeps them
    (never rewrites one), encodes the rest and gives the vectors of an uninterrupted build."""
    env = {**os.environ, "KIRAG_PROGRESS": "0"}
    corpus = tmp_path / "corpus.jsonl"  # the first 96 passages: 12 shards of 8
    corpus.write_text("".join(enwiki_slice.read_text("utf-8").splitlines(True)[:96]), "utf-8")
    shards_glob = ".dense.encode-*/shard_*.npy"

    def command(name: str) -> list[str]:
        return [*CLI, "index", "dense", "--corpus", str(corpus), "--index",
                str(tmp_path / name), "--shard-size", "8"]  # fmt: skip

    child = subprocess.Popen(command("dense"), env=env, stdout=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and child.poll() is None:
        if len(_inodes(shards_glob, tmp_path)) >= 3:
            break
        time.sleep(0.02)
    assert child.poll() is None, "the build finished before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    kept = _inodes(shards_glob, tmp_path)
    assert 3 <= len(kept) < 12 and not (tmp_path / "dense").exists()

    rerun = subprocess.Popen(command("dense"), env=env, stdout=subprocess.DEVNULL)
    rewritten = set()
    while rerun.poll() is None:  # watch the kept shards while the rerun works
        now = _inodes(shards_glob, tmp_path)
        rewritten |= {name for name, inode in now.items() if kept.get(name, inode) != inode}
        time.sleep(0.02)
    assert rerun.returncode == 0
    assert not rewritten  # the finished shards were reused, not encoded again
    assert not list(tmp_path.glob(".dense.encode-*"))  # the work folder is gone once merged

    resumed = np.load(tmp_path / "dense" / "embeddings.npy")
    uninterrupted = encoder.encode_passages([d.contents for d in enwiki_slice_docs[:96]])
    assert resumed.shape == (96, 384)
    assert np.abs(resumed - uninterrupted).max() <= 1e-6


class CountingExtractor:
    """The spaCy extractor, counting the documents it extracts and failing at call `fail_at`."""

    def __init__(self, inner, fail_at: int | None = None):
        self.inner, self.fail_at = inner, fail_at
        self.name, self.id = inner.name, inner.id
        self.calls = self.documents = 0

    def extract(self, documents):
        self.calls += 1
        if self.calls == self.fail_at:
            raise Injected("injected failure in the third shard")
        self.documents += len(documents)
        return self.inner.extract(documents)


def test_sharded_extraction_resumes_only_the_missing_shards(enwiki_slice_docs, tmp_path):
    from kirag.knowledge.extraction import TripleStore, extract_corpus, make_extractor

    docs = enwiki_slice_docs[:50]
    spacy = make_extractor("spacy")
    store = TripleStore(tmp_path / "cache.sqlite")
    crashing = CountingExtractor(spacy, fail_at=3)  # one call per shard (batch = shard)
    with pytest.raises(Injected):
        extract_corpus(docs, crashing, store, 10, executor=SerialExecutor(), shard_size=10)
    work = next(tmp_path.glob(".cache.sqlite.encode-*"))
    assert sorted(p.name for p in work.iterdir()) == ["shard_00000.jsonl", "shard_00001.jsonl"]
    assert store.dump() == []  # merged only once every shard is done

    counting = CountingExtractor(spacy)
    stats = extract_corpus(docs, counting, store, 10, executor=SerialExecutor(), shard_size=10)
    assert counting.documents == 30  # shards 2-4 only; 0 and 1 were kept
    assert stats.extracted == 50 and not work.exists()
    reference = TripleStore(tmp_path / "reference.sqlite")
    extract_corpus(docs, spacy, reference, 10)  # the default in-process path
    assert store.dump() == reference.dump()
