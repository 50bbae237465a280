"""What every retriever stored in an index folder shares: the manifest, the document store,
atomic building, query normalisation and pyserini-shaped search / batch_search.

An index folder always holds `manifest.json` (written last), `docs.sqlite` (the passages; an
index nested in a triple index shares its parent's instead) and `kirag-config.json` (the resolved
configuration of the command that built it, when built by the CLI), plus the backend's own files.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kirag import __version__
from kirag.core.atomic import atomic_directory, check_not_inside, write_json
from kirag.core.concurrency import AsyncSearch
from kirag.core.interrupts import checkpoint
from kirag.core.progress import progress
from kirag.core.ranges import COUNT
from kirag.errors import IndexLoadError
from kirag.io.corpus import read_corpus, resolve_corpus_path
from kirag.io.docstore import DocStore
from kirag.io.lines import OnError
from kirag.types import Document, Hit, Query

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
Corpus = str | Path | Iterable[Document]
Queries = Sequence[Query] | Mapping[str, str] | Mapping[str, Query]
Scored = list[tuple[str, float]]


def read_manifest(index_dir: str | Path, kind: str | None = None) -> dict[str, Any]:
    """The manifest of a complete index folder; a clear error for a missing, partial or
    different-kind index."""
    index_dir = Path(index_dir)
    if not index_dir.exists():
        raise IndexLoadError(f"{index_dir}: no such index folder (build it with `kirag index ...`)")
    path = index_dir / MANIFEST
    if not path.is_file():
        raise IndexLoadError(f"{index_dir}: not a complete kirag index (no {MANIFEST}); rebuild it")
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise IndexLoadError(f"{path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise IndexLoadError(f"{path}: unreadable manifest (not a JSON object); rebuild the index")
    if kind is not None and manifest.get("kind") != kind:
        raise IndexLoadError(f"{index_dir}: a {manifest.get('kind')!r} index, expected {kind!r}")
    check_manifest_keys(manifest, index_dir)
    return manifest


# What each kind of index records in its manifest (an edited or damaged manifest lacks some).
MANIFEST_KEYS = {
    "bm25": ("documents", "backend"),
    "dense": ("documents", "encoder", "faiss"),
    "triples": ("encoder", "counts", "extractor"),
}


def check_manifest_keys(manifest: dict[str, Any], index_dir: str | Path) -> None:
    """An IndexLoadError when the manifest lacks what its kind needs (it was edited or damaged)."""
    kind = manifest.get("kind")
    missing = [key for key in MANIFEST_KEYS.get(kind, ()) if key not in manifest]
    if missing:
        raise IndexLoadError(
            f"{Path(index_dir) / MANIFEST}: a {kind!r} manifest without {', '.join(missing)} "
            "(edited or damaged); rebuild the index"
        )


def corpus_documents(corpus: Corpus, on_error: OnError = "raise") -> Iterable[Document]:
    if isinstance(corpus, str | Path):
        return read_corpus(corpus, on_error=on_error)
    return corpus


def build_index_folder(
    corpus: Corpus,
    index_dir: str | Path,
    kind: str,
    build: Callable[[Path, DocStore], dict[str, Any]],
    overwrite: bool = False,
    on_error: OnError = "raise",
) -> Path:
    """Stream the corpus into a DocStore inside a temporary folder, let `build` write the
    backend files there (it returns manifest entries), write the manifest, rename the folder.

    A corpus that is the DocStore of the parent folder (an index nested in a triple index) is
    shared, not stored again: the manifest points at it (`"docstore": "../docs.sqlite"`)."""
    index_dir = Path(index_dir)
    shared_docstore = (
        corpus
        if isinstance(corpus, DocStore)
        and corpus.path.resolve().parent == index_dir.resolve().parent
        else None
    )
    if isinstance(corpus, str | Path):
        check_not_inside(index_dir, resolve_corpus_path(corpus))
    with atomic_directory(index_dir, overwrite=overwrite) as tmp:
        if shared_docstore is not None:
            docstore, location = shared_docstore, f"../{shared_docstore.path.name}"
        else:
            documents = progress(
                corpus_documents(corpus, on_error), desc="reading corpus", unit="doc"
            )
            docstore, location = DocStore.build(tmp / DocStore.FILENAME, documents), None
        if len(docstore) == 0:
            source = f"{corpus}: " if isinstance(corpus, str | Path) else ""
            raise IndexLoadError(f"{source}the corpus holds no documents: nothing to index")
        checkpoint("index:docstore")
        entries = build(tmp, docstore)
        checkpoint("index:built")  # the complete folder, not yet renamed
        manifest = {
            "kind": kind,
            "kirag_version": __version__,
            "documents": len(docstore),
            "corpus_fingerprint": docstore.fingerprint,
            **({"docstore": location} if location else {}),
            **entries,
        }
        if shared_docstore is None:
            docstore.close()
        write_json(tmp / MANIFEST, manifest)
    return index_dir


def write_build_record(
    index_dir: str | Path, built_by: str, corpus: Corpus, settings: Mapping[str, Any]
) -> Path:
    """The run record of a build made through the Python API (kirag-config.json in the index
    folder: its resolved settings, software versions); `kirag index` writes its own over it."""
    from kirag.core.runconfig import RunConfig

    source = str(corpus) if isinstance(corpus, str | Path) else type(corpus).__name__
    return RunConfig(built_by, {"corpus": source, **settings}).write(index_dir)


def docstore_path(index_dir: Path, manifest: Mapping[str, Any]) -> Path:
    """Where an index's passages are: its own docs.sqlite, or the parent folder's one it shares
    (only that: a manifest cannot point a loader anywhere else)."""
    location = manifest.get("docstore")
    if location is None:
        return index_dir / DocStore.FILENAME
    if location != f"../{DocStore.FILENAME}":
        raise IndexLoadError(f"{index_dir}: unknown document store location {location!r}")
    return index_dir.parent / DocStore.FILENAME


def query_pairs(queries: Queries) -> list[tuple[str, str]]:
    """(qid, text) pairs from a list of Query or a {qid: text | Query} mapping."""
    if isinstance(queries, Mapping):
        return [
            (str(qid), q.text if isinstance(q, Query) else str(q)) for qid, q in queries.items()
        ]
    return [(q.id, q.text) for q in queries]


def query_text(query: str | Query) -> str:
    return query.text if isinstance(query, Query) else str(query)


class IndexedRetriever(AsyncSearch, ABC):
    """Base of retrievers loaded from an index folder. Subclasses implement `_search_texts`."""

    kind: str = ""

    def __init__(self, index_dir: str | Path):
        self.path = Path(index_dir)
        self.manifest = read_manifest(self.path, self.kind)
        self.docstore = DocStore(docstore_path(self.path, self.manifest))
        if len(self.docstore) != self.manifest["documents"]:
            raise IndexLoadError(
                f"{self.path}: document store and manifest disagree; rebuild the index"
            )

    @abstractmethod
    def _search_texts(self, texts: Sequence[str], k: int, threads: int = 1) -> list[Scored]:
        """Top-k (doc_id, score) lists for non-empty query texts."""

    def search(self, query: str | Query, k: int = 10, with_documents: bool = False) -> list[Hit]:
        return self._search_many([query_text(query)], k, 1, with_documents)[0]

    def batch_search(
        self, queries: Queries, k: int = 10, threads: int = 1, with_documents: bool = False
    ) -> dict[str, list[Hit]]:
        pairs = query_pairs(queries)
        results = self._search_many([text for _, text in pairs], k, threads, with_documents)
        return {qid: hits for (qid, _), hits in zip(pairs, results, strict=True)}

    def _search_many(
        self, texts: Sequence[str], k: int, threads: int, with_documents: bool
    ) -> list[list[Hit]]:
        COUNT.check(k, "k")
        COUNT.check(threads, "threads")
        k = min(k, len(self.docstore))
        results: list[list[Hit]] = [[] for _ in texts]
        todo = [i for i, text in enumerate(texts) if text.strip()]
        if len(todo) < len(texts):
            log.warning("%d empty queries get no hits", len(texts) - len(todo))
        for start in range(0, len(todo), 1024):
            checkpoint("search:batch")
            chunk = todo[start : start + 1024]
            scored = self._search_texts([texts[i] for i in chunk], k, threads)
            for i, pairs in zip(chunk, scored, strict=True):
                results[i] = [
                    Hit(doc_id, float(score), rank) for rank, (doc_id, score) in enumerate(pairs, 1)
                ]
        if with_documents:
            self.attach_documents([h for hits in results for h in hits])
        return results

    def attach_documents(self, hits: Sequence[Hit]) -> None:
        """Fill `hit.document` from the document store."""
        self.docstore.attach(hits)
