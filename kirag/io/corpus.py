"""Streaming corpus readers: pyserini JsonCollection, BEIR corpus.jsonl and MS MARCO TSV.

A corpus is never loaded whole: `read_corpus` returns an iterable that reads the file(s) each
time it is iterated. Gzip is handled whatever the file is called.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from kirag.errors import InputError
from kirag.io.ids import check_id
from kirag.io.lines import OnError, ReadReport, parse_json_object, read_records
from kirag.types import Document

log = logging.getLogger(__name__)

CorpusFormat = Literal["auto", "jsonl", "tsv"]

ID_FIELDS = ("id", "_id", "docid", "doc_id", "pid")
TEXT_FIELDS = ("contents", "text", "passage", "body")
TITLE_FIELDS = ("title",)
TSV_HEADER_NAMES = {"id", "_id", "docid", "doc_id", "pid", "text", "passage", "contents", "title"}
CORPUS_SUFFIXES = (".jsonl", ".json", ".tsv", ".txt")

# Corpora shipped inside the package, addressable by name from the CLI and the API.
BUNDLED_CORPORA = {"enwiki-sample": "enwiki_sample.jsonl.gz"}


def bundled_corpus_path(name: str) -> Path:
    """Path of a corpus shipped with kirag (e.g. "enwiki-sample": 4,996 real Wikipedia passages)."""
    if name not in BUNDLED_CORPORA:
        raise InputError(f"unknown bundled corpus {name!r}; known: {', '.join(BUNDLED_CORPORA)}")
    return Path(str(resources.files("kirag.data").joinpath(BUNDLED_CORPORA[name])))


def resolve_corpus_path(path_or_name: str | Path) -> Path:
    """A file or folder path as given, or the path of a bundled corpus named like "enwiki-sample"."""
    path = Path(path_or_name)
    if not path.exists() and str(path_or_name) in BUNDLED_CORPORA:
        return bundled_corpus_path(str(path_or_name))
    return path


def _first_field(record: dict[str, Any], names: Iterable[str]) -> tuple[str | None, Any]:
    for name in names:
        if name in record:
            return name, record[name]
    return None, None


def _as_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(f"document id must be a string or an integer, got {type(value).__name__}")
    return check_id(str(value).strip(), "document id")


def _as_text(value: Any, field_name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"field {field_name!r} must be a string, got {type(value).__name__}")
    return value


def _checked(doc: Document) -> Document:
    if not doc.text.strip() and not (doc.title or "").strip():
        raise InputError(f"document {doc.id!r} has an empty text and no title")
    return doc


def parse_json_document(line: str) -> Document:
    """One JSONL line (pyserini `id`/`contents` or BEIR `_id`/`title`/`text`) as a Document."""
    record = parse_json_object(line)
    id_name, raw_id = _first_field(record, ID_FIELDS)
    if id_name is None:
        raise InputError(f"no id field (expected one of {', '.join(ID_FIELDS)})")
    text_name, raw_text = _first_field(record, TEXT_FIELDS)
    if text_name is None:
        raise InputError(f"no text field (expected one of {', '.join(TEXT_FIELDS)})")
    title_name, raw_title = _first_field(record, TITLE_FIELDS)
    used = {id_name, text_name, title_name}
    metadata = {key: value for key, value in record.items() if key not in used}
    if isinstance(metadata.get("metadata"), dict) and len(metadata) == 1:
        metadata = metadata["metadata"]
    # an empty title stays "" (not None): Rank1 reads "{title} {text}" whenever the field exists
    title = None if raw_title is None else _as_text(raw_title, "title")
    doc = Document(_as_id(raw_id), _as_text(raw_text, text_name), title, metadata)
    return _checked(doc)


class _TsvParser:
    """MS MARCO style `id<TAB>text`; a first line made of column names sets the columns."""

    def __init__(self) -> None:
        self.columns: list[str] | None = None

    def __call__(self, line: str) -> Document | None:
        parts = line.split("\t")
        if self.columns is None:
            names = [p.strip().lower() for p in parts]
            if len(names) >= 2 and all(n in TSV_HEADER_NAMES for n in names):
                self.columns = names
                return None
            self.columns = ["id", "text"]
        if len(parts) != len(self.columns):
            raise InputError(
                f"expected {len(self.columns)} tab-separated columns "
                f"({', '.join(self.columns)}), found {len(parts)}"
            )
        row = dict(zip(self.columns, parts, strict=True))
        _, raw_id = _first_field(row, ID_FIELDS)
        _, text = _first_field(row, TEXT_FIELDS)
        title = row["title"].strip() if "title" in row else None
        return _checked(Document(_as_id(raw_id), text or "", title))


def detect_format(path: Path) -> Literal["jsonl", "tsv"]:
    """Guess a corpus file's format from its name, else from its first character."""
    name = path.name.lower().removesuffix(".gz").removesuffix(".bz2")
    if name.endswith((".jsonl", ".json")):
        return "jsonl"
    if name.endswith((".tsv", ".txt")):
        return "tsv"
    from kirag.io.lines import head_bytes

    head = head_bytes(path, 64).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if head.startswith(b"{") else "tsv"


def corpus_files(path: Path) -> list[Path]:
    """The files of a corpus: the file itself, a BEIR folder's corpus.jsonl, or every corpus file
    of a pyserini JsonCollection folder (sorted, so the order is stable)."""
    if path.is_file():
        return [path]
    if not path.exists():
        raise InputError("no such corpus file or folder", path)
    for name in ("corpus.jsonl", "corpus.jsonl.gz", "corpus.jsonl.bz2"):
        if (path / name).is_file():
            return [path / name]
    files = sorted(
        p
        for p in path.iterdir()
        if p.is_file()
        and p.name.lower().removesuffix(".gz").removesuffix(".bz2").endswith(CORPUS_SUFFIXES)
    )
    if not files:
        raise InputError(
            "folder holds no corpus files (.jsonl, .tsv, optionally .gz or .bz2)", path
        )
    return files


class CorpusReader:
    """An iterable over the Documents of a corpus, re-reading the files at each iteration.

    Duplicate ids across the whole corpus are errors (they are tracked in a set of ids, the only
    per-document state kept). `report` tells, after an iteration, how many lines were skipped.
    """

    def __init__(
        self,
        path: str | Path,
        format: CorpusFormat = "auto",
        on_error: OnError = "raise",
        encoding: str = "utf-8",
        check_duplicates: bool = True,
    ):
        self.path = resolve_corpus_path(path)
        self.format = format
        self.on_error = on_error
        self.encoding = encoding
        self.check_duplicates = check_duplicates
        self.files = corpus_files(self.path)
        self.report = ReadReport(str(self.path))

    def __iter__(self) -> Iterator[Document]:
        self.report = ReadReport(str(self.path))
        seen: set[str] = set()
        for file in self.files:
            fmt = detect_format(file) if self.format == "auto" else self.format
            parser = parse_json_document if fmt == "jsonl" else _TsvParser()

            def parse(line: str, parser=parser) -> Document | None:
                doc = parser(line)
                if doc is not None and self.check_duplicates:
                    if doc.id in seen:
                        raise InputError(f"duplicate document id {doc.id!r}")
                    seen.add(doc.id)
                return doc

            yield from read_records(file, parse, self.on_error, self.report, self.encoding)
        if self.report.skipped:
            log.warning(self.report.summary())


def read_corpus(
    path: str | Path,
    format: CorpusFormat = "auto",
    on_error: OnError = "raise",
    encoding: str = "utf-8",
) -> CorpusReader:
    """Stream the Documents of a corpus file or folder (see CorpusReader)."""
    return CorpusReader(path, format=format, on_error=on_error, encoding=encoding)
