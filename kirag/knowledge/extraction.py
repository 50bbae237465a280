"""Triple extraction over a corpus: the extractor registry, and a resumable on-disk cache.

The cache (`TripleStore`, SQLite) is keyed by document id, a hash of the document's content and
the extractor's id (which names its model and prompt version). Re-running skips what is done;
each batch is committed as one transaction, so killing the run loses at most the batch in flight
and never leaves a half-written row.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from kirag.errors import KiragError
from kirag.knowledge.triples import Triple
from kirag.progress import progress
from kirag.types import Document


@runtime_checkable
class TripleExtractor(Protocol):
    """Turns documents into triples. `id` must change whenever the output could change (model,
    prompt version, generation settings): it keys the cache."""

    name: str
    id: str

    def extract(self, documents: Sequence[Document]) -> list[list[Triple]]: ...


EXTRACTORS = {
    "spacy": "kirag.knowledge.spacy_extractor:DependencyTripleExtractor",
    "llm": "kirag.knowledge.llm_extractor:LLMTripleExtractor",
    "reference": "kirag.knowledge.reference_extractor:ReferenceTripleExtractor",
}


def make_extractor(name: str, **options) -> TripleExtractor:
    """An extractor by name ("spacy" — dependency parse, no LLM; "llm" — prompted LLM)."""
    from kirag.lazy import import_target

    if name not in EXTRACTORS:
        raise KiragError(f"unknown triple extractor {name!r}; known: {', '.join(EXTRACTORS)}")
    return import_target(EXTRACTORS[name])(**options)


def content_hash(document: Document) -> str:
    return hashlib.sha256(f"{document.title or ''}\n{document.text}".encode()).hexdigest()[:32]


class TripleStore:
    """The extraction cache: one row per (document, extractor) with the triples as JSON."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS extractions (
        doc_id TEXT NOT NULL,
        extractor TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        triples TEXT NOT NULL,
        PRIMARY KEY (doc_id, extractor)
    );
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(self.SCHEMA)

    def done(self, documents: Sequence[Document], extractor_id: str) -> set[str]:
        """Ids of `documents` whose triples are cached for this content and extractor."""
        ids = [d.id for d in documents]
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(
            f"SELECT doc_id, content_hash FROM extractions WHERE extractor = ? AND doc_id IN ({marks})",
            (extractor_id, *ids),
        )
        cached = dict(rows)
        return {d.id for d in documents if cached.get(d.id) == content_hash(d)}

    def put(self, rows: Iterable[tuple[Document, list[Triple]]], extractor_id: str) -> None:
        """Store the triples of several documents in one transaction."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO extractions VALUES (?, ?, ?, ?)",
                [
                    (
                        doc.id,
                        extractor_id,
                        content_hash(doc),
                        json.dumps([t.to_dict() for t in triples], ensure_ascii=False),
                    )
                    for doc, triples in rows
                ],
            )

    def get(self, doc_id: str, extractor_id: str) -> list[Triple] | None:
        row = self._db.execute(
            "SELECT triples FROM extractions WHERE doc_id = ? AND extractor = ?",
            (doc_id, extractor_id),
        ).fetchone()
        return [Triple.from_dict(t) for t in json.loads(row[0])] if row else None

    def dump(self) -> list[tuple[str, str, str, str]]:
        """Every row, sorted: for comparing two stores."""
        return sorted(
            self._db.execute("SELECT doc_id, extractor, content_hash, triples FROM extractions")
        )

    def close(self) -> None:
        self._db.close()


@dataclass
class ExtractionStats:
    documents: int = 0
    extracted: int = 0
    cached: int = 0
    triples: int = 0

    @property
    def triples_per_document(self) -> float:
        return self.triples / self.extracted if self.extracted else 0.0


def extract_corpus(
    documents: Iterable[Document],
    extractor: TripleExtractor,
    store: TripleStore,
    batch_size: int = 16,
    total: int | None = None,
) -> ExtractionStats:
    """Extract triples for every document not already in `store`, batch by batch (resumable)."""
    stats = ExtractionStats()
    bar = progress(total=total, desc=f"extracting triples ({extractor.name})", unit="doc")
    batch: list[Document] = []

    def flush() -> None:
        done = store.done(batch, extractor.id)
        todo = [d for d in batch if d.id not in done]
        stats.cached += len(batch) - len(todo)
        if todo:
            results = extractor.extract(todo)
            store.put(zip(todo, results, strict=True), extractor.id)
            stats.extracted += len(todo)
            stats.triples += sum(len(r) for r in results)
        bar.update(len(batch))
        batch.clear()

    for document in documents:
        stats.documents += 1
        batch.append(document)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    bar.close()
    return stats
