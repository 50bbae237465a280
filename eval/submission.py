"""Leaderboard submissions: writers that produce exactly the files each target expects and
refuse invalid input, and validators that check existing files against the same rules.

Targets: MS MARCO passage ranking (submissions/yyyymmdd-name/{dev,eval}.txt.bz2 and
submissions/yyyymmdd-name-metadata.json), TREC-style runs (TREC DL, BEIR), HotpotQA and
2WikiMultiHopQA prediction JSON, MuSiQue prediction JSONL.
"""

from __future__ import annotations

import bz2
import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kirag.eval.runs import check_hits, format_score, read_run, validate_run

from kirag.core.atomic import atomic_write
from kirag.errors import InputError
from kirag.types import Hit

MSMARCO_TYPES = ("full ranking", "reranking")
MSMARCO_DEPTH = 10  # what MRR@10 reads; the leaderboard's sanity check prefers 1000
MSMARCO_MAX_DEPTH = 1000  # msmarco_eval.py cannot read rank 1001
METADATA_FIELDS = ("team", "model_description", "type", "paper", "code", "embargo_until")
SUBMISSION_ID = re.compile(r"^\d{8}-[a-z0-9][a-z0-9-]*$")
TREC_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,19}$")


# ---------------------------------------------------------------- MS MARCO passage ranking


@dataclass
class MSMarcoMetadata:
    """The leaderboard's metadata JSON. `embargo_until` ("yyyy/mm/dd", at most nine months after
    the submission date) makes an anonymous submission; empty otherwise."""

    team: str
    model_description: str
    type: str
    paper: str = ""
    code: str = ""
    embargo_until: str = ""

    def validate(self, submitted: dt.date | None = None) -> None:
        if not self.team.strip():
            raise InputError("metadata: team must not be empty")
        if not self.model_description.strip():
            raise InputError("metadata: model_description must not be empty")
        if self.type not in MSMARCO_TYPES:
            raise InputError(f"metadata: type must be one of {MSMARCO_TYPES}, not {self.type!r}")
        for name in ("paper", "code"):
            value = getattr(self, name)
            if value and not value.startswith(("http://", "https://")):
                raise InputError(f"metadata: {name} must be a URL or empty, not {value!r}")
        if self.embargo_until:
            try:
                until = dt.datetime.strptime(self.embargo_until, "%Y/%m/%d").date()
            except ValueError:
                raise InputError(
                    f"metadata: embargo_until must be yyyy/mm/dd, not {self.embargo_until!r}"
                ) from None
            start = submitted or dt.date.today()
            months = (until.year - start.year) * 12 + until.month - start.month
            if until < start or months > 9 or (months == 9 and until.day > start.day):
                raise InputError(
                    f"metadata: embargo_until {self.embargo_until} must fall within nine months "
                    f"of the submission date {start:%Y/%m/%d}"
                )

    def to_dict(self) -> dict[str, str]:
        data = {
            "team": self.team,
            "model_description": self.model_description,
            "paper": self.paper,
            "code": self.code,
            "type": self.type,
        }
        return data | ({"embargo_until": self.embargo_until} if self.embargo_until else {})


def submission_id(name: str, date: dt.date | None = None) -> str:
    """yyyymmdd-name, the leaderboard's permanent id (lower case letters, digits, dashes)."""
    date = date or dt.date.today()
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    sid = f"{date:%Y%m%d}-{slug}"
    if not SUBMISSION_ID.match(sid):
        raise InputError(f"submission name {name!r} gives an invalid id {sid!r}")
    return sid


def _msmarco_lines(
    run: Mapping[str, Sequence[Hit]], queries: Iterable[str], what: str, depth: int
) -> list[str]:
    queries = list(queries)
    validation = validate_run(
        {q: sorted(h, key=lambda x: x.rank) for q, h in run.items()},
        topics=queries,
        require_all_topics=True,
    )
    validation.raise_if_invalid(f"{what} run")
    lines = []
    for qid in queries:
        hits = sorted(run[qid], key=lambda h: h.rank)[:depth]
        if not hits:
            raise InputError(f"{what} run: query {qid!r} has no results")
        for rank, hit in enumerate(hits, 1):
            if not (qid.isdigit() and hit.doc_id.isdigit()):
                raise InputError(
                    f"{what} run: query {qid!r}, passage {hit.doc_id!r}: MS MARCO ids are "
                    "integers (the official evaluation reads them as such)"
                )
            lines.append(f"{qid}\t{hit.doc_id}\t{rank}")
    return lines


def write_msmarco_submission(
    root: str | Path,
    name: str,
    dev_run: Mapping[str, Sequence[Hit]],
    eval_run: Mapping[str, Sequence[Hit]],
    dev_queries: Iterable[str],
    eval_queries: Iterable[str],
    metadata: MSMarcoMetadata,
    date: dt.date | None = None,
    depth: int = MSMARCO_DEPTH,
) -> Path:
    """Write submissions/yyyymmdd-name/{dev,eval}.txt.bz2 (the top `depth` passages of every
    query, `qid<TAB>pid<TAB>rank`) and submissions/yyyymmdd-name-metadata.json under `root`.
    Everything is checked before anything is written. Returns the submission folder."""
    if not 1 <= depth <= MSMARCO_MAX_DEPTH:
        raise InputError(f"depth must be 1..{MSMARCO_MAX_DEPTH}, not {depth}")
    date = date or dt.date.today()
    metadata.validate(date)
    sid = submission_id(name, date)
    files = {
        "dev.txt.bz2": _msmarco_lines(dev_run, dev_queries, "dev", depth),
        "eval.txt.bz2": _msmarco_lines(eval_run, eval_queries, "eval", depth),
    }
    folder = Path(root) / "submissions" / sid
    for filename, lines in files.items():
        with atomic_write(folder / filename, "wb") as fh:
            fh.write(bz2.compress(("\n".join(lines) + "\n").encode("utf-8")))
    with atomic_write(folder.parent / f"{sid}-metadata.json") as fh:
        json.dump(metadata.to_dict(), fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    return folder


def _read_msmarco_submission_run(path: Path, problems: list[str]) -> dict[str, list[Hit]] | None:
    """A bz2 `qid<TAB>pid<TAB>rank` file, read as strictly as msmarco_eval.py reads it."""
    try:
        text = bz2.decompress(path.read_bytes()).decode("utf-8")
    except (OSError, ValueError) as exc:
        problems.append(f"{path}: not a bz2-compressed UTF-8 text file ({exc})")
        return None
    run: dict[str, list[Hit]] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.strip().split("\t")
        if len(parts) != 3 or not all(p.strip().lstrip("-").isdigit() for p in parts):
            problems.append(
                f"{path}:{lineno}: expected qid<TAB>pid<TAB>rank with integer fields, got {line!r}"
            )
            return None
        rank = int(parts[2])
        if not 1 <= rank <= MSMARCO_MAX_DEPTH:
            problems.append(f"{path}:{lineno}: rank {rank} outside 1..{MSMARCO_MAX_DEPTH}")
            return None
        run.setdefault(parts[0].strip(), []).append(Hit(parts[1].strip(), -float(rank), rank))
    if not run:
        problems.append(f"{path}: no lines")
        return None
    return run


def validate_msmarco_submission(
    folder: str | Path,
    dev_queries: Iterable[str] | None = None,
    eval_queries: Iterable[str] | None = None,
) -> list[str]:
    """Problems of an existing MS MARCO submission folder (empty list: valid): the folder name,
    both runs (format, integer ids, ranks 1..n, no passage twice, every query when the queries
    are given) and the metadata JSON."""
    folder = Path(folder)
    problems: list[str] = []
    submitted = None
    if not SUBMISSION_ID.match(folder.name):
        problems.append(f"folder name {folder.name!r} is not of the form yyyymmdd-name")
    else:
        try:
            submitted = dt.datetime.strptime(folder.name[:8], "%Y%m%d").date()
        except ValueError:
            problems.append(f"folder name {folder.name!r} does not start with a real date")
    for filename, queries in (("dev.txt.bz2", dev_queries), ("eval.txt.bz2", eval_queries)):
        path = folder / filename
        if not path.exists():
            problems.append(f"{path} is missing")
            continue
        run = _read_msmarco_submission_run(path, problems)
        if run is None:
            continue
        report = validate_run(
            run,
            topics=queries,
            max_hits=MSMARCO_MAX_DEPTH,
            require_all_topics=queries is not None,
        )
        problems += [f"{path}: {p}" for p in report.errors]
    meta_path = folder.parent / f"{folder.name}-metadata.json"
    if not meta_path.exists():
        problems.append(f"{meta_path} is missing")
        return problems
    try:
        data = json.loads(meta_path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return [*problems, f"{meta_path}: not valid JSON ({exc})"]
    if not isinstance(data, dict):
        return [*problems, f"{meta_path}: expected a JSON object"]
    missing = [k for k in ("team", "model_description", "paper", "code", "type") if k not in data]
    extra = sorted(set(data) - set(METADATA_FIELDS))
    wrong = [k for k in METADATA_FIELDS if k in data and not isinstance(data[k], str)]
    if missing:
        problems.append(f"{meta_path}: missing fields {missing} (paper and code may be empty)")
    if extra:
        problems.append(f"{meta_path}: unexpected fields {extra}")
    if wrong:
        problems.append(f"{meta_path}: fields {wrong} must be strings")
    if not (missing or wrong):
        try:
            MSMarcoMetadata(**{k: data.get(k, "") for k in METADATA_FIELDS}).validate(submitted)
        except InputError as exc:
            problems.append(f"{meta_path}: {exc}")
    return problems


# ---------------------------------------------------------------- TREC-style runs


def check_trec_tag(tag: str) -> None:
    if not TREC_TAG.match(tag):
        raise InputError(
            f"run tag {tag!r}: 1-20 characters, letters, digits, '_', '.', '-', starting with a letter or digit"
        )


def write_trec_submission(
    run: Mapping[str, Sequence[Hit]],
    path: str | Path,
    tag: str,
    topics: Iterable[str],
    k: int = 1000,
) -> Path:
    """A six-column TREC run for TREC DL / BEIR: every topic present, at most `k` documents per
    topic, ranks 1..n with non-increasing scores, one run tag."""
    check_trec_tag(tag)
    topics = list(topics)
    ordered = {q: sorted(run.get(q, []), key=lambda h: h.rank)[:k] for q in topics}
    for q, hits in ordered.items():
        ordered[q] = [Hit(h.doc_id, h.score, i, h.document) for i, h in enumerate(hits, 1)]
    validate_run(ordered, topics=topics, max_hits=k, require_all_topics=True).raise_if_invalid(
        "TREC run"
    )
    empty = [q for q, hits in ordered.items() if not hits]
    if empty:
        raise InputError(f"TREC run: {len(empty)} topics have no documents (e.g. {empty[0]!r})")
    unknown = set(run) - set(topics)
    if unknown:
        raise InputError(
            f"TREC run: {len(unknown)} queries are not topics (e.g. {sorted(unknown)[0]!r})"
        )
    for qid in topics:
        check_hits(qid, ordered[qid])
    path = Path(path)
    with atomic_write(path) as fh:
        for qid in topics:
            for hit in ordered[qid]:
                fh.write(f"{qid} Q0 {hit.doc_id} {hit.rank} {format_score(hit.score)} {tag}\n")
    return path


def validate_trec_submission(
    path: str | Path, topics: Iterable[str] | None = None, k: int = 1000
) -> list[str]:
    path = Path(path)
    problems = []
    tags = set()
    try:
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                parts = line.split()
                if len(parts) != 6:
                    problems.append(f"{path}:{lineno}: expected 6 columns, found {len(parts)}")
                elif parts[1] != "Q0":
                    problems.append(f"{path}:{lineno}: second column must be Q0")
                else:
                    tags.add(parts[5])
        run = read_run(path, format="trec", sort=False)
    except (InputError, UnicodeDecodeError) as exc:
        return [*problems, str(exc)]
    if len(tags) > 1:
        problems.append(f"{path}: several run tags {sorted(tags)}; a run has one")
    for tag in tags:
        try:
            check_trec_tag(tag)
        except InputError as exc:
            problems.append(f"{path}: {exc}")
    report = validate_run(run, topics=topics, max_hits=k, require_all_topics=topics is not None)
    return problems + [f"{path}: {p}" for p in report.errors]


# ---------------------------------------------------------------- multi-hop QA predictions


@dataclass
class QAPrediction:
    """One question's prediction: the answer and, where the dataset asks for them, supporting
    facts ((title, sentence index) pairs), supporting paragraph indices (MuSiQue), evidence
    triples (2Wiki), and answerability (MuSiQue). None: a prediction file read back has no
    entry for the question in that part's map (the official scripts score each map on its own,
    a missing entry scoring 0); a file written needs every part."""

    id: str
    answer: str | None
    supporting_facts: list[tuple[str, int]] | None = field(default_factory=list)
    supporting_doc_ids: list[str] = field(default_factory=list)
    support_idxs: list[int] = field(default_factory=list)
    evidence: list[list[str]] | None = field(default_factory=list)
    answerable: bool = True


QA_TARGETS = ("hotpotqa", "2wikimultihopqa", "musique")


def _check_ids(
    predictions: Sequence[QAPrediction],
    question_ids: Iterable[str] | None,
    target: str = "hotpotqa",
) -> None:
    """HotpotQA / 2Wiki: one prediction per question (a JSON map). MuSiQue: its script pairs
    prediction and question lines by position, so the ids must be the dataset's, in its order
    (MuSiQue-Full repeats each id for its unanswerable version)."""
    ids = [p.id for p in predictions]
    if target == "musique":
        counts = Counter(ids)
        if any(c > 2 for c in counts.values()):
            raise InputError("predictions: a question id appears more than twice")
        if question_ids is not None:
            expected = list(question_ids)
            if ids != expected:
                first = next(
                    (i for i, (a, b) in enumerate(zip(ids, expected, strict=False)) if a != b),
                    min(len(ids), len(expected)),
                )
                raise InputError(
                    f"predictions: MuSiQue predictions must follow the dataset line by line; "
                    f"{len(ids)} predictions for {len(expected)} questions, first difference "
                    f"at line {first + 1}"
                )
    else:
        if len(ids) != len(set(ids)):
            raise InputError("predictions: a question id appears twice")
        if question_ids is not None:
            expected = set(question_ids)
            missing, unknown = expected - set(ids), set(ids) - expected
            if missing:
                raise InputError(
                    f"predictions: {len(missing)} questions have no prediction "
                    f"(e.g. {sorted(missing)[0]!r})"
                )
            if unknown:
                raise InputError(
                    f"predictions: {len(unknown)} predictions for unknown questions "
                    f"(e.g. {sorted(unknown)[0]!r})"
                )
    parts = {"answer": "answer", "supporting_facts": "sp", "evidence": "evidence"}
    needed = {
        "musique": ["answer"],
        "2wikimultihopqa": list(parts),
    }.get(target, ["answer", "supporting_facts"])
    for name in needed:
        lacking = [p.id for p in predictions if getattr(p, name) is None]
        if lacking:
            raise InputError(
                f'predictions: {len(lacking)} questions have no "{parts[name]}" entry '
                f"(e.g. {lacking[0]!r})"
            )
    for p in predictions:
        if not isinstance(p.answer, str):
            raise InputError(f"prediction {p.id!r}: answer must be a string")
        for fact in p.supporting_facts or []:
            if len(fact) != 2 or not isinstance(fact[0], str) or not isinstance(fact[1], int):
                raise InputError(
                    f"prediction {p.id!r}: supporting facts are [title, sentence index] pairs"
                )
        for triple in p.evidence or []:
            if len(triple) != 3 or not all(isinstance(x, str) for x in triple):
                raise InputError(
                    f"prediction {p.id!r}: evidence items are [subject, relation, object]"
                )
        if not all(isinstance(i, int) and i >= 0 for i in p.support_idxs):
            raise InputError(f"prediction {p.id!r}: support indices are integers >= 0")


def write_qa_predictions(
    target: str,
    predictions: Sequence[QAPrediction],
    path: str | Path,
    question_ids: Iterable[str] | None = None,
) -> Path:
    """Write predictions in the official format of `target` (hotpotqa, 2wikimultihopqa,
    musique) after checking them; with `question_ids`, every question must be answered once."""
    if target not in QA_TARGETS:
        raise InputError(f"unknown QA target {target!r}; known: {', '.join(QA_TARGETS)}")
    _check_ids(predictions, question_ids, target)
    path = Path(path)
    with atomic_write(path) as fh:
        if target == "musique":
            for p in predictions:
                record = {
                    "id": p.id,
                    "predicted_answer": p.answer,
                    "predicted_support_idxs": [int(i) for i in p.support_idxs],
                    "predicted_answerable": bool(p.answerable),
                }
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            data: dict = {
                "answer": {p.id: p.answer for p in predictions},
                "sp": {p.id: [list(f) for f in p.supporting_facts] for p in predictions},
            }
            if target == "2wikimultihopqa":
                data["evidence"] = {p.id: [list(e) for e in p.evidence] for p in predictions}
            json.dump(data, fh, ensure_ascii=False, indent=1)
            fh.write("\n")
    return path


def read_qa_predictions(target: str, path: str | Path) -> list[QAPrediction]:
    """Read an official prediction file back (what `validate` and `kirag eval` use)."""
    path = Path(path)
    try:
        if target == "musique":
            out = []
            for lineno, line in enumerate(path.read_text("utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                    idxs = r["predicted_support_idxs"]
                    if (
                        not isinstance(r["predicted_answer"], str)
                        or not isinstance(r["predicted_answerable"], bool)
                        or not isinstance(idxs, list)
                        or not all(type(i) is int for i in idxs)
                    ):
                        raise TypeError("wrong field types")
                    out.append(
                        QAPrediction(
                            str(r["id"]),
                            r["predicted_answer"],
                            support_idxs=list(idxs),
                            answerable=r["predicted_answerable"],
                        )
                    )
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise InputError(f"not a MuSiQue prediction ({exc!r})", path, lineno) from None
            if not out:
                raise InputError("no predictions in the file", path)
            return out
        data = json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON ({exc.msg})", path, exc.lineno) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})", path) from None
    keys = ["answer", "sp", *(["evidence"] if target == "2wikimultihopqa" else [])]
    if not isinstance(data, dict) or not all(isinstance(data.get(k), dict) for k in keys):
        raise InputError(
            "expected a JSON object with the maps "
            + ", ".join(f'"{k}"' for k in keys)
            + " (id -> answer, id -> [[title, sentence index], ...]"
            + (", id -> [[subject, relation, object], ...])" if len(keys) == 3 else ")"),
            path,
        )
    maps = {k: data[k] for k in keys}
    out = []
    for qid in dict.fromkeys(qid for m in maps.values() for qid in m):
        has = {k: qid in m for k, m in maps.items()}  # absent: None; null is malformed
        answer, facts = maps["answer"].get(qid), maps["sp"].get(qid)
        evidence = maps["evidence"].get(qid) if "evidence" in maps else []
        if has["answer"] and not isinstance(answer, str):
            raise InputError(f"prediction {qid!r}: answer must be a string, not {answer!r}", path)
        if has["sp"] and not (
            isinstance(facts, list)
            and all(
                isinstance(f, list) and len(f) == 2 and isinstance(f[0], str) and type(f[1]) is int
                for f in facts
            )
        ):
            raise InputError(
                f"prediction {qid!r}: sp must be a list of [title, sentence index] pairs", path
            )
        if has.get("evidence") and not (
            isinstance(evidence, list)
            and all(
                isinstance(e, list) and len(e) == 3 and all(isinstance(x, str) for x in e)
                for e in evidence
            )
        ):
            raise InputError(
                f"prediction {qid!r}: evidence must be a list of [subject, relation, object]",
                path,
            )
        facts = [tuple(f) for f in facts] if facts is not None else None
        out.append(QAPrediction(qid, answer, facts, evidence=evidence))
    return out


def validate_qa_predictions(
    target: str, path: str | Path, question_ids: Iterable[str] | None = None
) -> list[str]:
    try:
        _check_ids(read_qa_predictions(target, path), question_ids, target)
    except (InputError, ValueError, TypeError) as exc:
        return [str(exc)]
    return []
