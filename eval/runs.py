"""Run files: TREC (`qid Q0 docid rank score tag`), MS MARCO (`qid<TAB>pid<TAB>rank`) and JSONL
(one query per line: `{"qid": ..., "hits": [{"docid", "rank", "score"}]}`). Shared by retrieval,
reranking, evaluation and submission."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from kirag.atomic import atomic_write
from kirag.errors import InputError
from kirag.io.lines import OnError, ReadReport, open_binary, read_records
from kirag.types import Hit

RunFormat = Literal["trec", "msmarco", "jsonl"]
Run = dict[str, list[Hit]]

DEFAULT_TAG = "kirag"


def format_from_path(path: str | Path) -> RunFormat:
    """Guess a run format from the file name: .tsv -> msmarco, .jsonl -> jsonl, else trec."""
    name = Path(path).name.lower().removesuffix(".gz").removesuffix(".bz2")
    if name.endswith((".tsv", ".msmarco")):
        return "msmarco"
    if name.endswith((".jsonl", ".json")):
        return "jsonl"
    return "trec"


def _parse_trec(line: str) -> list[tuple[str, Hit]]:
    parts = line.split()
    if len(parts) != 6:
        raise InputError(f"expected 6 columns (qid Q0 docid rank score tag), found {len(parts)}")
    qid, _, docid, rank, score, _tag = parts
    try:
        return [(qid, Hit(docid, float(score), int(rank)))]
    except ValueError:
        raise InputError(
            f"rank must be an integer and score a number: {rank!r} {score!r}"
        ) from None


def _parse_msmarco(line: str) -> list[tuple[str, Hit]]:
    parts = line.split("\t") if "\t" in line else line.split()
    if len(parts) not in (3, 4):
        raise InputError(f"expected 3 columns (qid, pid, rank) or 4 (+score), found {len(parts)}")
    try:
        rank = int(parts[2])
        score = float(parts[3]) if len(parts) == 4 else -float(rank)
    except ValueError:
        raise InputError(f"rank must be an integer: {parts[2]!r}") from None
    return [(parts[0], Hit(parts[1], score, rank))]


def _parse_jsonl(line: str) -> list[tuple[str, Hit]]:
    try:
        record = json.loads(line)
        qid = str(record["qid"])
        return [
            (
                qid,
                Hit(
                    str(h["docid"]),
                    float(h["score"]),
                    int(h["rank"]),
                    metadata=h.get("metadata", {}),
                ),
            )
            for h in record["hits"]
        ]
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON ({exc.msg} at column {exc.colno})") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"expected {{qid, hits: [{{docid, rank, score}}]}}: {exc!r}") from None


PARSERS = {"trec": _parse_trec, "msmarco": _parse_msmarco, "jsonl": _parse_jsonl}


def read_run(
    path: str | Path, format: RunFormat | Literal["auto"] = "auto", on_error: OnError = "raise"
) -> Run:
    """Read a run into {qid: hits sorted by rank}. Queries keep their first-seen order."""
    fmt = format_from_path(path) if format == "auto" else format
    if fmt == "trec" and format == "auto":
        fmt = _sniff(path)
    run: Run = {}
    report = ReadReport(str(path))
    for rows in read_records(path, PARSERS[fmt], on_error, report):
        for qid, hit in rows:
            run.setdefault(qid, []).append(hit)
    for hits in run.values():
        hits.sort(key=lambda h: h.rank)
    return run


def _sniff(path: str | Path) -> RunFormat:
    with open_binary(path) as fh:
        first = fh.readline().decode("utf-8", "replace").strip()
    if first.startswith("{"):
        return "jsonl"
    return "msmarco" if len(first.split()) in (3, 4) else "trec"


def format_run_lines(
    qid: str, hits: Sequence[Hit], format: RunFormat = "trec", tag: str = DEFAULT_TAG
) -> Iterable[str]:
    """The lines of one query's hits in a run format (no trailing newlines)."""
    if format == "trec":
        for hit in hits:
            yield f"{qid} Q0 {hit.doc_id} {hit.rank} {hit.score:.6f} {tag}"
    elif format == "msmarco":
        for hit in hits:
            yield f"{qid}\t{hit.doc_id}\t{hit.rank}"
    elif format == "jsonl":
        record = {
            "qid": qid,
            "hits": [
                {"docid": h.doc_id, "rank": h.rank, "score": h.score}
                | ({"metadata": h.metadata} if h.metadata else {})
                for h in hits
            ],
        }
        yield json.dumps(record, ensure_ascii=False, default=str)
    else:
        raise ValueError(f"unknown run format {format!r}; known: trec, msmarco, jsonl")


def write_run(
    run: Mapping[str, Sequence[Hit]],
    path: str | Path,
    format: RunFormat | Literal["auto"] = "auto",
    tag: str = DEFAULT_TAG,
) -> Path:
    """Write a run atomically. TREC run tags may not contain whitespace."""
    fmt = format_from_path(path) if format == "auto" else format
    if fmt == "trec" and (not tag or any(c.isspace() for c in tag)):
        raise InputError(f"run tag {tag!r} must be non-empty and contain no whitespace")
    with atomic_write(path) as fh:
        for qid, hits in run.items():
            for line in format_run_lines(qid, hits, fmt, tag):
                fh.write(line + "\n")
    return Path(path)
