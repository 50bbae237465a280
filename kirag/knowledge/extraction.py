"""Triple extraction over a corpus: the extractor registry, and a resumable on-disk cache.

The cache (`TripleStore`, SQLite) is keyed by document id, a hash of the document's content and
the extractor's id (which names its model and prompt version). Re-running skips what is done;
each batch is committed as one transaction, so killing the run loses at most the batch in flight
and never leaves a half-written row.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from kirag.core.atomic import WORK_MARK, atomic_write
from kirag.core.cost import CostMeter
from kirag.core.progress import progress
from kirag.errors import KiragError
from kirag.knowledge.triples import Triple
from kirag.scale import Executor, Shard, cut_into_shards
from kirag.types import Document


@runtime_checkable
class TripleExtractor(Protocol):
    """Turns documents into triples. `id` must change whenever the output could change (model,
    prompt version, generation settings): it keys the cache."""

    name: str
    id: str

    def extract(self, documents: Sequence[Document]) -> list[list[Triple]]: ...


# documents per extraction shard (the resume unit when an executor runs the extraction)
DEFAULT_SHARD_SIZE = 512

EXTRACTORS = {
    "spacy": "kirag.knowledge.spacy_extractor:DependencyTripleExtractor",
    "llm": "kirag.knowledge.llm_extractor:LLMTripleExtractor",
    "reference": "kirag.knowledge.reference_extractor:ReferenceTripleExtractor",
}


def make_extractor(name: str, **options) -> TripleExtractor:
    """An extractor by name ("spacy" — dependency parse, no LLM; "llm" — prompted LLM)."""
    from kirag.core.lazy import import_target

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
        self.put_hashed(
            ((doc.id, content_hash(doc), triples) for doc, triples in rows), extractor_id
        )

    def put_hashed(self, rows: Iterable[tuple[str, str, list[Triple]]], extractor_id: str) -> None:
        """Store (doc_id, content hash, triples) rows in one transaction (a shard's output)."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO extractions VALUES (?, ?, ?, ?)",
                [
                    (
                        doc_id,
                        extractor_id,
                        digest,
                        json.dumps([t.to_dict() for t in triples], ensure_ascii=False),
                    )
                    for doc_id, digest, triples in rows
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
    executor: Executor | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    factory: Callable[[], TripleExtractor] | None = None,
) -> ExtractionStats:
    """Extract triples for every document not already in `store`, batch by batch (resumable).

    With an `executor` the corpus is cut into shards of `shard_size` documents, each extracted
    (on a Ray worker, or here) into a shard file under a fixed name, then merged into `store` in
    corpus order (see extract_sharded); `factory` builds the extractor on a worker (default:
    `extractor` itself, pickled)."""
    if executor is not None:
        return extract_sharded(
            documents, extractor, store, executor, batch_size, total, shard_size, factory
        )
    stats = ExtractionStats()
    if total is None and isinstance(documents, Sized):
        total = len(documents)
    bar = progress(total=total, desc=f"extracting triples ({extractor.name})", unit="doc")
    meter = extraction_meter(extractor, total) if total else None
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
        if meter is not None:
            meter.skip(len(batch) - len(todo))
            meter.update(len(todo))
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


def extraction_meter(extractor: TripleExtractor, passages: int) -> CostMeter:
    """The estimate of extracting `passages` passages, said after the first batch."""
    faster = "Ray workers (--workers N, --ray-address)"
    if extractor.name != "spacy":
        faster = "--extractor spacy (no LLM), " + faster
    return CostMeter(f"triple extraction ({extractor.name})", passages, "passage", faster)


class ExtractTask:
    """Extracts one shard of documents into `work_dir/shard_NNNNN.jsonl`: a header line naming
    the shard and the digest of its input, then one line per document (id, content hash,
    triples). Written atomically; a rerun skips a shard whose header matches its input."""

    # said with the estimated time of a long extraction (kirag.core.cost)
    cost_hint = "--extractor spacy (no LLM), more Ray workers (--workers N)"

    def __init__(
        self,
        factory: Callable[[], TripleExtractor],
        extractor_id: str,
        work_dir: Path,
        batch_size: int,
        extractor: TripleExtractor | None = None,
    ):
        self.factory = factory
        self.extractor_id = extractor_id
        self.work_dir = Path(work_dir)
        self.batch_size = max(1, batch_size)
        self.extractor = extractor

    def __getstate__(self) -> dict:
        return {**self.__dict__, "extractor": None}

    def setup(self) -> None:
        if self.extractor is None:
            self.extractor = self.factory()
        if self.extractor.id != self.extractor_id:
            raise KiragError(
                f"a worker's extractor is {self.extractor.id!r}, the driver's "
                f"{self.extractor_id!r}: install the same models (spaCy pipeline, LLM) on every "
                "node"
            )

    def path(self, shard: Shard) -> Path:
        return self.work_dir / f"{shard.name}.jsonl"

    def done(self, shard: Shard, rows: Sequence[Document]) -> bool:
        header = _read_header(self.path(shard))
        return header is not None and header.get("input") == shard_digest(rows)

    def run(self, shard: Shard, rows: Sequence[Document]) -> dict:
        rows = list(rows)
        results: list[list[Triple]] = []
        for start in range(0, len(rows), self.batch_size):
            results += self.extractor.extract(rows[start : start + self.batch_size])
        header = {"shard": shard.index, "documents": len(rows), "input": shard_digest(rows)}
        with atomic_write(self.path(shard)) as fh:
            fh.write(json.dumps(header) + "\n")
            for doc, triples in zip(rows, results, strict=True):
                record = {
                    "id": doc.id,
                    "hash": content_hash(doc),
                    "triples": [t.to_dict() for t in triples],
                }
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        return {"documents": len(rows), "triples": sum(len(r) for r in results)}


def shard_digest(documents: Sequence[Document]) -> str:
    """A digest of a shard's input (ids and contents, in order)."""
    digest = hashlib.sha256()
    for doc in documents:
        digest.update(f"{doc.id}\t{content_hash(doc)}\n".encode())
    return digest.hexdigest()[:32]


def _read_header(path: Path) -> dict | None:
    """The header line of a shard file, or None when there is none (or it is unreadable)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.loads(fh.readline())
    except (OSError, ValueError):
        return None


def read_shard(path: Path) -> Iterator[tuple[str, str, list[Triple]]]:
    """(doc_id, content hash, triples) rows of a finished shard file, in corpus order."""
    with open(path, encoding="utf-8") as fh:
        fh.readline()  # the header
        for line in fh:
            record = json.loads(line)
            yield record["id"], record["hash"], [Triple.from_dict(t) for t in record["triples"]]


def extraction_work_dir(store_path: Path, extractor_id: str, shard_size: int) -> Path:
    """The shard folder of one (cache, extractor, shard size), beside the cache."""
    key = hashlib.sha256(f"{extractor_id}\x1f{shard_size}".encode()).hexdigest()[:16]
    return store_path.parent / f".{store_path.name}{WORK_MARK}{key}"


class _Given:
    """A factory that returns an extractor object as it is (pickled to remote workers)."""

    def __init__(self, extractor: TripleExtractor):
        self.extractor = extractor

    def __call__(self) -> TripleExtractor:
        return self.extractor


def extract_sharded(
    documents: Iterable[Document],
    extractor: TripleExtractor,
    store: TripleStore,
    executor: Executor,
    batch_size: int = 16,
    total: int | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    factory: Callable[[], TripleExtractor] | None = None,
) -> ExtractionStats:
    """Extraction through an executor: the documents of each shard not yet in `store` are
    extracted into a shard file (SQLite WAL does not work on network filesystems: one file per
    shard, under a fixed name); the shard files are merged into `store` in corpus order, the
    same code whichever executor ran them, and removed once merged."""
    stats = ExtractionStats()
    work = extraction_work_dir(store.path, extractor.id, shard_size)

    def pieces() -> Iterator[tuple[Shard, list[Document]]]:
        for shard, docs in cut_into_shards(documents, shard_size):
            stats.documents += len(docs)
            done: set[str] = set()
            for start in range(0, len(docs), 500):
                done |= store.done(docs[start : start + 500], extractor.id)
            todo = [d for d in docs if d.id not in done]
            stats.cached += len(docs) - len(todo)
            if todo:
                yield shard, todo

    task = ExtractTask(
        factory or _Given(extractor),
        extractor.id,
        work,
        batch_size,
        extractor=None if executor.remote else extractor,
    )
    report = executor.run(
        task, pieces(), total=total, desc=f"extracting triples ({extractor.name})", unit="doc"
    )
    for index in sorted(report.computed + report.skipped):
        rows = list(read_shard(work / f"shard_{index:05d}.jsonl"))
        store.put_hashed(rows, extractor.id)
        stats.extracted += len(rows)
        stats.triples += sum(len(triples) for _, _, triples in rows)
    shutil.rmtree(work, ignore_errors=True)
    return stats
