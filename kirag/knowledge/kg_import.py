"""Importing the KG corpora KiRAG's authors publish: the reference's triple cache
(knowledge_graph/kg_generator.py, `save_cached_kg_triples`), a pickle of plain data

    {doc_id: {"id": doc_id, "title": str, "sentences": [str] (or "text": str),
              "ranked_examplars_indices": [int], "triples": [{"text": "<h; r; t>", "sentence": int}]}}

read through an unpickler that refuses every global, so no code in the file can run: a pickle
that names any class or function (the only way a pickle executes code) is refused before
anything is built. The triples become kirag Triples of the corpus's documents exactly as the
cache writes them (text, sentence index; nothing parsed away, normalised or merged, as the
reference's pool reads them), served by an
extractor whose id names the file's content (`imported:<sha256 prefix>`), so the resumable
extraction cache and the triple index are built exactly as for extracted triples.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kirag.errors import InputError
from kirag.knowledge.triples import Triple, raw_triple, raw_triple_texts
from kirag.types import Document

log = logging.getLogger(__name__)


class GlobalRefused(pickle.UnpicklingError):
    """The pickle names a global (a class or function): it could run code, so it is refused."""


class PlainDataUnpickler(pickle.Unpickler):
    """Loads only plain data (dicts, lists, tuples, sets, strings, bytes, numbers, booleans,
    None): every global lookup, and every persistent id, raises before anything is called."""

    def find_class(self, module: str, name: str):
        raise GlobalRefused(f"{module}.{name}")

    def persistent_load(self, pid):
        raise GlobalRefused(f"persistent id {pid!r}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_plain_pickle(path: str | Path) -> Any:
    """The plain data in a pickle file; a pickle naming any global is refused (InputError) and
    nothing in it runs."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file (expected the reference's cached KG pickle)", path)
    with open(path, "rb") as fh:
        try:
            return PlainDataUnpickler(fh).load()
        except GlobalRefused as exc:
            raise InputError(
                f"refused: the pickle names the global {exc} (it could run code); a KiRAG KG "
                "cache holds only plain dicts, lists, strings and numbers, so nothing was loaded "
                "or run",
                path,
            ) from None
        except Exception as exc:  # any malformed pickle is bad input
            raise InputError(f"not a readable pickle ({type(exc).__name__}: {exc})", path) from None


def _title_key(title: str) -> str:
    """Titles compared as the reference writes them: its DPR reader strips one punctuation mark
    at either end and un-doubles quotes."""
    title = title.strip().replace('""', '"')
    return title.strip(string.punctuation + " ").casefold()


@dataclass
class ImportStats:
    """What the import found (recorded in the index's configuration)."""

    documents_in_file: int = 0
    documents_imported: int = 0
    triples: int = 0
    unparsed_triples: int = 0
    duplicate_triples: int = 0
    unparsed_examples: list[str] = field(default_factory=list)

    @property
    def documents_not_in_corpus(self) -> int:
        return self.documents_in_file - self.documents_imported


def check_kg_cache(data: Any, path: Path) -> dict[str, dict]:
    """The cache as {doc id: entry}, every entry checked for the reference's fields."""
    if not isinstance(data, dict):
        raise InputError(
            f"expected a dict of documents (the reference's KG cache), got {type(data).__name__}",
            path,
        )
    checked = {}
    for key, entry in data.items():
        where = f"document {key!r}"
        if not isinstance(entry, dict) or not isinstance(entry.get("triples"), list):
            raise InputError(f"{where}: expected a dict with a 'triples' list", path)
        for item in entry["triples"]:
            if not (
                isinstance(item, dict)
                and isinstance(item.get("text"), str)
                and isinstance(item.get("sentence", 0), int)
            ):
                raise InputError(
                    f"{where}: a triple must be {{'text': '<h; r; t>', 'sentence': int}}, got "
                    f"{item!r:.80}",
                    path,
                )
        sentences = entry.get("sentences")
        if sentences is not None and not (
            isinstance(sentences, list) and all(isinstance(s, str) for s in sentences)
        ):
            raise InputError(f"{where}: 'sentences' must be a list of strings", path)
        checked[str(entry.get("id", key))] = entry
    return checked


class ImportedTripleExtractor:
    """Serves the triples of a reference KG cache as a triple extractor: the file is loaded and
    checked when this is made (a hostile or malformed file fails before any work), each corpus
    document gets the cache's triples for its id (none when absent)."""

    name = "imported"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.cache = check_kg_cache(load_plain_pickle(self.path), self.path)
        self.id = f"imported:{file_sha256(self.path)[:16]}"
        self.stats = ImportStats(documents_in_file=len(self.cache))

    def extract(self, documents: Sequence[Document]) -> list[list[Triple]]:
        return [self._triples(document) for document in documents]

    def _triples(self, document: Document) -> list[Triple]:
        entry = self.cache.get(document.id)
        if entry is None:
            return []
        title = entry.get("title")
        if isinstance(title, str) and _title_key(title) != _title_key(document.title or ""):
            raise InputError(
                f"the cache's document {document.id!r} is titled {title!r} but the corpus's "
                f"{document.title!r}: the cache was built over another corpus (for the "
                "reference's datasets, prepare the corpus with `kirag data prepare`)",
                self.path,
            )
        sentences = entry.get("sentences") or document.metadata.get("sentences") or []
        triples, seen = [], set()
        for item in entry["triples"]:
            text = item["text"]
            if not raw_triple_texts(text):  # kept all the same: the reference uses it as is
                self.stats.unparsed_triples += 1
                if len(self.stats.unparsed_examples) < 5:
                    self.stats.unparsed_examples.append(text[:200])
            index = int(item.get("sentence", -1))
            sentence = sentences[index].strip() if 0 <= index < len(sentences) else ""
            if (text, index) in seen:  # kept too: one pool entry in the reference, as here
                self.stats.duplicate_triples += 1
            seen.add((text, index))
            triples.append(raw_triple(text, document, index, sentence, self.id))
        self.stats.documents_imported += 1
        self.stats.triples += len(triples)
        return triples
