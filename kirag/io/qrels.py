"""Relevance judgments: TREC qrels (`qid iter docid grade`) and BEIR qrels TSV
(`query-id<TAB>corpus-id<TAB>score` with a header)."""

from __future__ import annotations

import logging
from pathlib import Path

from kirag.errors import InputError
from kirag.io.lines import OnError, ReadReport, read_numbered_records

log = logging.getLogger(__name__)

Qrels = dict[str, dict[str, int]]

_HEADER_WORDS = {"query", "corpus", "score", "qid", "docid", "relevance"}


class _QrelsParser:
    """Parses one line into (qid, docid, grade); a BEIR header line is recognised and skipped."""

    def __init__(self) -> None:
        self.first = True

    def __call__(self, line: str) -> tuple[str, str, int] | None:
        parts = line.split()
        first, self.first = self.first, False
        if (
            first
            and parts
            and not _is_int(parts[-1])
            and _HEADER_WORDS & set(line.lower().replace("-", " ").split())
        ):
            return None  # header such as "query-id corpus-id score"
        if len(parts) == 4:
            qid, _, docid, grade = parts
        elif len(parts) == 3:
            qid, docid, grade = parts
        else:
            raise InputError(
                f"expected 4 columns (qid iter docid grade) or 3 (qid docid grade), found {len(parts)}"
            )
        if not _is_int(grade):
            raise InputError(f"relevance grade must be an integer, got {grade!r}")
        return qid, docid, int(grade)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def read_qrels(path: str | Path, on_error: OnError = "raise", encoding: str = "utf-8") -> Qrels:
    """Read judgments into {qid: {docid: grade}}. A (qid, docid) pair judged twice is an error
    naming both lines; with `on_error="skip"` the later line is skipped and counted."""
    path = Path(path)
    qrels: Qrels = {}
    first_line: dict[tuple[str, str], int] = {}
    report = ReadReport(str(path))
    parser = _QrelsParser()

    def parse(line: str) -> tuple[str, str, int] | None:
        row = parser(line)
        if row is not None:
            qid, docid, grade = row
            if docid in qrels.get(qid, {}):
                raise InputError(
                    f"duplicate judgment for query {qid!r}, document {docid!r} "
                    f"(first on line {first_line[(qid, docid)]}, grade {qrels[qid][docid]}; "
                    f"here grade {grade})"
                )
        return row

    for lineno, (qid, docid, grade) in read_numbered_records(
        path, parse, on_error, report, encoding
    ):
        qrels.setdefault(qid, {})[docid] = grade
        first_line[(qid, docid)] = lineno
    if report.skipped:
        log.warning(report.summary())
    return qrels
