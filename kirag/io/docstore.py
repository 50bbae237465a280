"""A document store on SQLite: random access to passages by id or by position, without holding
the corpus in memory. Every index folder keeps one, so hits can carry their text and rerankers
and KiRAG can read passages by id."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from kirag.errors import IndexLoadError, InputError
from kirag.types import Document, Hit

SCHEMA = """
CREATE TABLE docs (
    pos INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    title TEXT,
    text TEXT NOT NULL,
    metadata TEXT
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
BATCH = 5000
SQLITE_MAX_VARS = 900


class DocStore:
    """Documents numbered 0..n-1 in corpus order (the position is what FAISS and bm25s return)."""

    FILENAME = "docs.sqlite"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise IndexLoadError(f"{self.path}: document store missing")
        self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        try:
            meta = dict(self._db.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as exc:
            raise IndexLoadError(f"{self.path}: not a kirag document store ({exc})") from None
        if meta.get("complete") != "1":
            raise IndexLoadError(f"{self.path}: document store is incomplete (interrupted build)")
        self.fingerprint = meta["fingerprint"]
        self._len = int(meta["count"])
        self._ids: np.ndarray | None = None

    @classmethod
    def build(cls, path: str | Path, documents: Iterable[Document]) -> DocStore:
        """Write `documents` in order. Duplicate ids are an InputError. The store is marked
        complete only at the end, so an interrupted build never opens."""
        path = Path(path)
        if path.exists():
            path.unlink()
        db = sqlite3.connect(path)
        db.executescript(SCHEMA)
        digest = hashlib.sha256()
        count = 0
        rows: list[tuple] = []
        try:
            for doc in documents:
                rows.append((count, doc.id, doc.title, doc.text, _dump_meta(doc.metadata)))
                digest.update(f"{doc.id}\t{doc.title or ''}\t{doc.text}\n".encode())
                count += 1
                if len(rows) >= BATCH:
                    _insert(db, rows)
                    rows = []
            _insert(db, rows)
            meta = {"fingerprint": digest.hexdigest(), "count": str(count), "complete": "1"}
            db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            db.commit()
        finally:
            db.close()
        return cls(path)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[Document]:
        cursor = self._db.execute("SELECT id, title, text, metadata FROM docs ORDER BY pos")
        for row in cursor:
            yield _document(row)

    def __contains__(self, doc_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM docs WHERE id = ?", (doc_id,)).fetchone() is not None

    def get(self, doc_id: str) -> Document | None:
        row = self._db.execute(
            "SELECT id, title, text, metadata FROM docs WHERE id = ?", (doc_id,)
        ).fetchone()
        return _document(row) if row else None

    def get_many(self, doc_ids: Sequence[str]) -> list[Document | None]:
        """Documents for `doc_ids` in the same order; None where an id is unknown."""
        found: dict[str, Document] = {}
        for chunk in _chunks(list(dict.fromkeys(doc_ids))):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, title, text, metadata FROM docs WHERE id IN ({marks})"
            for row in self._db.execute(sql, chunk):
                found[row[0]] = _document(row)
        return [found.get(doc_id) for doc_id in doc_ids]

    def attach(self, hits: Sequence[Hit]) -> list[Hit]:
        """Fill `hit.document` of the hits that have none; returns the hits whose id is unknown."""
        need = [h for h in hits if h.document is None]
        for hit, doc in zip(need, self.get_many([h.doc_id for h in need]), strict=True):
            hit.document = doc
        return [h for h in need if h.document is None]

    def ids_at(self, positions: Sequence[int]) -> list[str]:
        """Document ids at corpus positions (as returned by a vector or BM25 index)."""
        found: dict[int, str] = {}
        for chunk in _chunks([int(p) for p in set(positions)]):
            marks = ",".join("?" * len(chunk))
            found.update(
                self._db.execute(f"SELECT pos, id FROM docs WHERE pos IN ({marks})", chunk)
            )
        return [found[int(p)] for p in positions]

    def positions_by_id(self) -> Iterator[int]:
        """Every position, in the order of the documents' ids (code-point order, as Python sorts
        strings), streamed from the id index: no list of ids in memory."""
        for (position,) in self._db.execute("SELECT pos FROM docs ORDER BY id"):
            yield position

    def titles(self) -> list[tuple[str, str | None]]:
        """(id, title) of every document, in corpus order."""
        return list(self._db.execute("SELECT id, title FROM docs ORDER BY pos"))

    def all_ids(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT id FROM docs ORDER BY pos")]

    def close(self) -> None:
        self._db.close()


def _insert(db: sqlite3.Connection, rows: list[tuple]) -> None:
    try:
        db.executemany("INSERT INTO docs VALUES (?, ?, ?, ?, ?)", rows)
    except sqlite3.IntegrityError:
        seen: set[str] = set()
        for row in rows:
            if (
                row[1] in seen
                or db.execute("SELECT 1 FROM docs WHERE id = ?", (row[1],)).fetchone()
            ):
                raise InputError(f"duplicate document id {row[1]!r} in corpus") from None
            seen.add(row[1])
        raise


def _dump_meta(metadata: dict) -> str | None:
    return json.dumps(metadata, ensure_ascii=False, default=str) if metadata else None


def _document(row: tuple) -> Document:
    doc_id, title, text, metadata = row
    return Document(doc_id, text, title, json.loads(metadata) if metadata else {})


def _chunks(items: list, size: int = SQLITE_MAX_VARS) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
