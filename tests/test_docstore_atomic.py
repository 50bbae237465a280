"""The SQLite document store and atomic writes: complete or absent, never half-written."""

from __future__ import annotations

import sqlite3

import pytest

from kirag.core.atomic import atomic_directory, atomic_write, write_json
from kirag.errors import IndexLoadError, InputError
from kirag.io.docstore import DocStore
from kirag.types import Document


def test_docstore_roundtrip_on_real_passages(tmp_path, enwiki_slice_docs):
    store = DocStore.build(tmp_path / "docs.sqlite", enwiki_slice_docs)
    assert len(store) == 314
    alabama = store.get("Alabama#0")
    assert alabama.title == "Alabama" and "Alabama" in alabama.text
    ids = [enwiki_slice_docs[5].id, "missing", enwiki_slice_docs[0].id]
    got = store.get_many(ids)
    assert got[0] == enwiki_slice_docs[5] and got[1] is None and got[2] == enwiki_slice_docs[0]
    assert store.ids_at([2, 0, 2]) == [
        enwiki_slice_docs[2].id,
        enwiki_slice_docs[0].id,
        enwiki_slice_docs[2].id,
    ]
    assert [d.id for d in store] == [d.id for d in enwiki_slice_docs]
    assert "Alabama#0" in store and "nope" not in store
    same = DocStore.build(tmp_path / "again.sqlite", enwiki_slice_docs)
    assert same.fingerprint == store.fingerprint


def test_positions_by_id_follow_python_string_order(tmp_path, enwiki_slice_docs):
    # the bm25s tie-break ranks come from SQLite's id index: its byte order must be the code
    # point order Python sorts by, non-ASCII and mixed case included
    extra = [Document(i, "x") for i in ("Éire", "zeta", "Zeta", "ß", "日本", "a😀", "a~")]
    docs = list(enwiki_slice_docs[:40]) + extra
    store = DocStore.build(tmp_path / "docs.sqlite", docs)
    order = list(store.positions_by_id())
    assert [docs[p].id for p in order] == sorted(d.id for d in docs)


def test_docstore_rejects_duplicates_and_incomplete_files(tmp_path):
    docs = [Document("a", "x"), Document("b", "y"), Document("a", "z")]
    with pytest.raises(InputError, match="duplicate document id 'a'"):
        DocStore.build(tmp_path / "dup.sqlite", docs)
    # a store whose build stopped before the end does not open
    db = sqlite3.connect(tmp_path / "half.sqlite")
    db.executescript(
        "CREATE TABLE docs (pos INTEGER, id TEXT, title TEXT, text TEXT, metadata TEXT);"
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
    )
    db.commit()
    db.close()
    with pytest.raises(IndexLoadError, match="incomplete"):
        DocStore(tmp_path / "half.sqlite")
    (tmp_path / "junk.sqlite").write_text("not sqlite")
    with pytest.raises(IndexLoadError, match="not a kirag document store"):
        DocStore(tmp_path / "junk.sqlite")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write("new partial")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
    write_json(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}\n'


def test_atomic_directory_renames_at_the_end(tmp_path):
    target = tmp_path / "index"
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "part").write_text("x")
        raise RuntimeError("crash midway")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_directory(target) as tmp:
        (tmp / "manifest.json").write_text('{"kind": "bm25"}')
        assert not target.exists()
    assert (target / "manifest.json").exists()
    with pytest.raises(FileExistsError, match="overwrite"), atomic_directory(target):
        pass
    with atomic_directory(target, overwrite=True) as tmp:
        (tmp / "v2").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["v2"]
    assert [p.name for p in tmp_path.iterdir()] == ["index"]
