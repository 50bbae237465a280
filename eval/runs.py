"""Run files: TREC (`qid Q0 docid rank score tag`), MS MARCO (`qid<TAB>pid<TAB>rank`) and JSONL
(one query per line: `{"qid": ..., "hits": [{"docid", "rank", "score"}]}`). Shared by retrieval,
reranking, evaluation and submission."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kirag.core.atomic import atomic_write
from kirag.errors import InputError
from kirag.io.ids import check_id
from kirag.io.lines import (
    OnError,
    ReadReport,
    head_bytes,
    parse_json_object,
    raw_lines,
    read_numbered_records,
)
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


def parse_score(text: str | bytes) -> float:
    """A run score: a finite number (NaN or an infinity cannot be ranked: trec_eval's order and
    every metric would silently depend on it)."""
    try:
        score = float(text)
    except ValueError:
        raise InputError(f"score must be a number: {text!r}") from None
    if not math.isfinite(score):
        raise InputError(f"score must be a finite number, not {score!r}")
    return score


def _hit(qid: str, docid: str, score: float, rank: int, **extra) -> tuple[str, Hit]:
    """A parsed row, its ids checked against the id rule (kirag.io.ids)."""
    return check_id(qid, "query id"), Hit(check_id(docid, "document id"), score, rank, **extra)


def _parse_trec(line: str) -> list[tuple[str, Hit]]:
    parts = line.split()
    if len(parts) != 6:
        raise InputError(f"expected 6 columns (qid Q0 docid rank score tag), found {len(parts)}")
    qid, _, docid, rank, score, _tag = parts
    try:
        rank_number = int(rank)
    except ValueError:
        raise InputError(f"rank must be an integer: {rank!r}") from None
    return [_hit(qid, docid, parse_score(score), rank_number)]


def msmarco_columns(line: str) -> tuple[str, str, int, float | None]:
    """(qid, pid, rank, score or None) of an MS MARCO run line: `qid<TAB>pid<TAB>rank`, an
    optional fourth column the score. Tab-separated only, as msmarco_eval.py reads it (it splits
    on tabs, so a space-separated line is not valid there). Raises ValueError."""
    parts = [p.strip() for p in line.strip().split("\t")]
    if len(parts) == 1 and len(line.split()) in (3, 4):
        raise ValueError(
            "columns separated by spaces: MS MARCO runs are tab-separated "
            "(qid<TAB>pid<TAB>rank), as msmarco_eval.py requires"
        )
    if len(parts) not in (3, 4):
        raise ValueError(
            f"expected 3 tab-separated columns (qid, pid, rank) or 4 (+score), found {len(parts)}"
        )
    if any(not p or " " in p for p in parts):
        raise ValueError("an empty column or one with spaces inside (columns are tab-separated)")
    try:
        rank = int(parts[2])
    except ValueError:
        raise ValueError(f"rank must be an integer: {parts[2]!r}") from None
    score = parse_score(parts[3]) if len(parts) == 4 else None  # an InputError is a ValueError
    return parts[0], parts[1], rank, score


def _parse_msmarco(line: str) -> list[tuple[str, Hit]]:
    try:
        qid, pid, rank, score = msmarco_columns(line)
    except InputError:
        raise
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return [_hit(qid, pid, score if score is not None else -float(rank), rank)]


def _parse_jsonl(line: str) -> list[tuple[str, Hit]]:
    record = parse_json_object(line)
    try:
        qid = str(record["qid"])
        return [
            _hit(
                qid,
                str(h["docid"]),
                parse_score(str(h["score"])),
                int(h["rank"]),
                metadata=h.get("metadata", {}),
            )
            for h in record["hits"]
        ]
    except InputError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"expected {{qid, hits: [{{docid, rank, score}}]}}: {exc!r}") from None


PARSERS = {"trec": _parse_trec, "msmarco": _parse_msmarco, "jsonl": _parse_jsonl}


def read_run(
    path: str | Path,
    format: RunFormat | Literal["auto"] = "auto",
    on_error: OnError = "raise",
    sort: bool = True,
) -> Run:
    """Read a run into {qid: hits sorted by rank} (file order with `sort=False`, for
    validation). Queries keep their first-seen order. Scores must be finite and ids obey the id
    rule; a document ranked twice for one query is an error naming its line, as in
    `read_run_scores` and trec_eval (with `on_error="skip"` the later line is skipped and
    counted)."""
    fmt = format_from_path(path) if format == "auto" else format
    if fmt == "trec" and format == "auto":
        fmt = _sniff(path)
    run: Run = {}
    seen: dict[str, set[str]] = {}
    report = ReadReport(str(path))
    for lineno, rows in read_numbered_records(path, PARSERS[fmt], on_error, report):
        for qid, hit in rows:
            docs = seen.setdefault(qid, set())
            if hit.doc_id in docs:
                error = InputError(
                    f"query {qid!r} ranks document {hit.doc_id!r} twice", path, lineno
                )
                if on_error == "raise":
                    raise error
                report.record_problem(error)
                continue
            docs.add(hit.doc_id)
            run.setdefault(qid, []).append(hit)
    if sort:
        for hits in run.values():
            hits.sort(key=lambda h: h.rank)
    return run


def read_run_scores(
    path: str | Path,
    format: RunFormat | Literal["auto"] = "auto",
    value: Literal["score", "rank"] = "score",
) -> dict[str, dict[str, float]]:
    """A run as {qid: {docid: score}} ({docid: rank} with `value="rank"`): the fast path for
    evaluation (trec_eval's input), with no Hit objects. A document ranked twice for a query is
    an error naming the line."""
    fmt = format_from_path(path) if format == "auto" else format
    if fmt == "trec" and format == "auto":
        fmt = _sniff(path)
    if fmt == "jsonl":
        return {
            qid: {h.doc_id: float(h.rank if value == "rank" else h.score) for h in hits}
            for qid, hits in read_run(path, "jsonl").items()
        }
    score_column = {("trec", "score"): 4, ("trec", "rank"): 3, ("msmarco", "rank"): 2}.get(
        (fmt, value)
    )
    run: dict[str, dict[str, float]] = {}
    trec, by_rank = fmt == "trec", score_column is not None
    for lineno, raw in raw_lines(path):
        parts = raw.split()
        if not parts:
            continue
        try:
            if trec:
                if len(parts) != 6:
                    raise ValueError(
                        f"expected 6 columns (qid Q0 docid rank score tag), found {len(parts)}"
                    )
                qid, docid = parts[0].decode(), parts[2].decode()
                score = parse_score(parts[score_column])
            elif (
                len(parts) == 3
                and 32 not in raw  # no space
                and len(raw) == len(parts[0]) + len(parts[1]) + len(parts[2]) + 3
            ):  # the common MS MARCO line, `qid<TAB>pid<TAB>rank<LF>`, read fast
                qid, docid, rank = parts[0].decode(), parts[1].decode(), int(parts[2])
                score = float(rank) if by_rank else -float(rank)
            else:  # any other MS MARCO line: the full rules and their messages
                qid, docid, rank, given = msmarco_columns(raw.decode())
                score = float(rank) if by_rank else given if given is not None else -float(rank)
        except InputError as exc:
            raise InputError(exc.reason, path, lineno) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(str(exc), path, lineno) from None
        docs = run.get(qid)
        if docs is None:
            docs = run[qid] = {}
        if docid in docs:
            raise InputError(f"query {qid!r} ranks document {docid!r} twice", path, lineno)
        docs[docid] = score
    return run


def _sniff(path: str | Path) -> RunFormat:
    first = head_bytes(path, 4096).split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    if first.startswith("{"):
        return "jsonl"
    return "msmarco" if len(first.split()) in (3, 4) else "trec"


def format_score(score: float) -> str:
    """A score written exactly (shortest round-trip form): rounding to a few decimals can turn
    distinct scores into ties, which trec_eval then reorders by document id."""
    return repr(float(score))


def format_run_lines(
    qid: str, hits: Sequence[Hit], format: RunFormat = "trec", tag: str = DEFAULT_TAG
) -> Iterable[str]:
    """The lines of one query's hits in a run format (no trailing newlines). Refuses ids that
    break the id rule and non-finite scores: such a line could not be read back."""
    check_hits(qid, hits)
    if format == "trec":
        for hit in hits:
            yield f"{qid} Q0 {hit.doc_id} {hit.rank} {format_score(hit.score)} {tag}"
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


def check_hits(qid: str, hits: Sequence[Hit]) -> None:
    """An InputError naming the query and document when an id breaks the id rule
    (kirag.io.ids) or a score is NaN or infinite."""
    try:
        check_id(qid, "query id")
        for hit in hits:
            check_id(hit.doc_id, "document id")
            if not math.isfinite(hit.score):
                raise InputError(f"document {hit.doc_id!r} has the score {hit.score!r}")
    except InputError as exc:
        raise InputError(f"cannot write query {qid!r} to a run: {exc.reason}") from None


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


@dataclass
class RunProblem:
    severity: Literal["error", "warning"]
    qid: str | None
    message: str

    def __str__(self) -> str:
        where = f"query {self.qid!r}: " if self.qid is not None else ""
        return f"{self.severity}: {where}{self.message}"


@dataclass
class RunValidation:
    """The problems found in a run; `ok` when there is no error (warnings allowed)."""

    problems: list[RunProblem] = field(default_factory=list)

    @property
    def errors(self) -> list[RunProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[RunProblem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_if_invalid(self, what: str = "run") -> None:
        if self.errors:
            shown = "; ".join(str(p) for p in self.errors[:5])
            more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
            raise InputError(f"invalid {what}: {shown}{more}")


def validate_run(
    run: Mapping[str, Sequence[Hit]],
    topics: Iterable[str] | None = None,
    max_hits: int | None = None,
    require_all_topics: bool = False,
) -> RunValidation:
    """Check a run (hits in file order): duplicate documents per query, ranks that are not
    1, 2, 3... in order, scores that do not fall as ranks rise (trec_eval would reorder them),
    tied scores (trec_eval breaks ties by document id), queries unknown to the topics, topics
    without results, and more than `max_hits` hits per query."""
    report = RunValidation()
    add = report.problems.append
    known = set(topics) if topics is not None else None
    for qid, hits in run.items():
        if known is not None and qid not in known:
            add(RunProblem("error", qid, "not in the topics (unknown query id)"))
        if max_hits is not None and len(hits) > max_hits:
            add(RunProblem("error", qid, f"{len(hits)} hits, more than the {max_hits} allowed"))
        seen: set[str] = set()
        for hit in hits:
            if hit.doc_id in seen:
                add(RunProblem("error", qid, f"document {hit.doc_id!r} ranked more than once"))
                break
            seen.add(hit.doc_id)
        ranks = [h.rank for h in hits]
        if ranks != list(range(1, len(hits) + 1)):
            add(
                RunProblem(
                    "error",
                    qid,
                    "ranks are not 1, 2, 3, ... in file order (non-monotone or with gaps)",
                )
            )
        scores = [h.score for h in hits]
        if not all(math.isfinite(s) for s in scores):
            add(RunProblem("error", qid, "a score is NaN or infinite"))
            continue
        if any(later > earlier for earlier, later in itertools.pairwise(scores)):
            add(
                RunProblem(
                    "error",
                    qid,
                    "scores rise as ranks rise: trec_eval orders by score and would reorder this ranking",
                )
            )
        ties = len(scores) - len(set(scores))
        if ties:
            add(
                RunProblem(
                    "warning",
                    qid,
                    f"{ties} tied scores: trec_eval breaks ties by document id (descending)",
                )
            )
    if known is not None:
        missing = [q for q in known if q not in run]
        if missing:
            add(
                RunProblem(
                    "error" if require_all_topics else "warning",
                    None,
                    f"{len(missing)} topics have no results (e.g. {missing[0]!r})",
                )
            )
    return report
