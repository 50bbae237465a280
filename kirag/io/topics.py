"""Topic (query) readers: TSV `qid<TAB>text`, JSONL (incl. BEIR queries.jsonl) and TREC `<top>`."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Literal

from kirag.errors import InputError
from kirag.io.ids import check_id
from kirag.io.lines import OnError, ReadReport, iter_lines, parse_json_object, read_numbered_records
from kirag.types import Query

log = logging.getLogger(__name__)

TopicsFormat = Literal["auto", "tsv", "jsonl", "trec"]

QID_FIELDS = ("id", "_id", "qid", "query_id")
QTEXT_FIELDS = ("text", "query", "question", "title", "contents")


def _query(raw_id: Any, text: Any, metadata: dict[str, Any] | None = None) -> Query:
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
        raise InputError("query id must be a string or an integer")
    qid = check_id(str(raw_id).strip(), "query id")
    if not isinstance(text, str):
        raise InputError(f"query {qid!r}: text must be a string")
    if not text.strip():
        raise InputError(f"query {qid!r} has an empty text")
    return Query(qid, text.strip(), metadata=metadata or {})


def parse_tsv_topic(line: str) -> Query:
    parts = line.split("\t")
    if len(parts) != 2:
        raise InputError(f"expected 2 tab-separated columns (qid, text), found {len(parts)}")
    return _query(parts[0], parts[1])


def parse_json_topic(line: str) -> Query:
    record = parse_json_object(line)
    id_name = next((f for f in QID_FIELDS if f in record), None)
    text_name = next((f for f in QTEXT_FIELDS if f in record), None)
    if id_name is None:
        raise InputError(f"no query id field (expected one of {', '.join(QID_FIELDS)})")
    if text_name is None:
        raise InputError(f"no query text field (expected one of {', '.join(QTEXT_FIELDS)})")
    metadata = {k: v for k, v in record.items() if k not in (id_name, text_name)}
    query = _query(record[id_name], record[text_name], metadata)
    if isinstance(metadata.get("instruction"), str):
        query.instruction = metadata.pop("instruction")
    return query


_TREC_TAG = re.compile(r"<(num|title)>\s*(?:Number:)?\s*(.*)", re.IGNORECASE)


def read_trec_topics(path: str | Path, encoding: str = "utf-8") -> list[Query]:
    """Classic TREC topic files: `<top> <num> Number: 301 <title> ... </top>` (title as query)."""
    return [query for _, query in _numbered_trec_topics(path, encoding)]


def _numbered_trec_topics(path: str | Path, encoding: str) -> list[tuple[int, Query]]:
    """The topics of a TREC file, each with the line of its `<top>`."""
    queries: list[tuple[int, Query]] = []
    qid: str | None = None
    start = 0
    for lineno, text in iter_lines(path, encoding):
        if isinstance(text, InputError):
            raise text
        stripped = text.strip()
        if stripped.lower() == "<top>":
            qid, start = None, lineno
            continue
        match = _TREC_TAG.match(stripped)
        if match and match.group(1).lower() == "num":
            qid, start = match.group(2).strip(), start or lineno  # no <top>: the <num> line
        elif match and match.group(1).lower() == "title":
            if qid is None:
                raise InputError("<title> before <num> in topic", path, lineno)
            try:
                queries.append((start, _query(qid, match.group(2))))
            except InputError as exc:
                raise InputError(exc.reason, path, start) from None
    return queries


def detect_topics_format(path: Path) -> Literal["tsv", "jsonl", "trec"]:
    from kirag.io.lines import head_bytes

    head = head_bytes(path, 256).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{"):
        return "jsonl"
    if head.lower().startswith(b"<top>"):
        return "trec"
    return "tsv"


def read_topics(
    path: str | Path,
    format: TopicsFormat = "auto",
    on_error: OnError = "raise",
    encoding: str = "utf-8",
) -> dict[str, Query]:
    """Read topics into an ordered {qid: Query}. Duplicate qids and empty texts are errors (or
    skipped lines with `on_error="skip"`)."""
    path = Path(path)
    if path.is_dir() and (path / "queries.jsonl").exists():
        path = path / "queries.jsonl"  # a BEIR folder
    fmt = detect_topics_format(path) if format == "auto" else format
    if fmt == "trec":
        out: dict[str, Query] = {}
        for lineno, query in _numbered_trec_topics(path, encoding):
            if query.id in out:
                raise InputError(f"duplicate query id {query.id!r}", path, lineno)
            out[query.id] = query
        if not out:
            raise InputError("no topics (no <top> with <num> and <title>)", path, 1)
        return out
    parse_line = parse_json_topic if fmt == "jsonl" else parse_tsv_topic
    queries: dict[str, Query] = {}
    first_line: dict[str, int] = {}
    report = ReadReport(str(path))

    def parse(line: str) -> Query:
        query = parse_line(line)
        if not first_line and _is_header(query):
            raise InputError(f"a header line ({query.id}<TAB>{query.text}), not a topic: remove it")
        if query.id in queries:
            raise InputError(
                f"duplicate query id {query.id!r} (first on line {first_line[query.id]})"
            )
        return query

    for lineno, query in read_numbered_records(path, parse, on_error, report, encoding):
        queries[query.id] = query
        first_line[query.id] = lineno
    if report.skipped:
        log.warning(report.summary())
    if not queries:
        what = "no readable topic (every line was skipped)" if report.skipped else "no topics"
        raise InputError(f"{what}: a topics file needs at least one query", path, 1)
    return queries


HEADER_IDS = {"qid", "query_id", "query-id", "id", "_id", "queryid"}
HEADER_TEXTS = {"query", "text", "question", "title", "query_text", "contents"}


def _is_header(query: Query) -> bool:
    """A TSV's column names read as if they were a topic (qid<TAB>query)."""
    return query.id.lower() in HEADER_IDS and query.text.lower() in HEADER_TEXTS
