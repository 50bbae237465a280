"""Line-by-line reading of text files (gzip and bz2 transparently) with an error policy.

Every reader in kirag.io is built on `read_records`: a malformed line raises an InputError that
names the file and line, or, with `on_error="skip"`, is counted in a ReadReport and skipped.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import json
import logging
import zlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, TypeVar

from kirag.core.runconfig import RESULT_HOOKS
from kirag.errors import InputError

log = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]
T = TypeVar("T")

GZIP_MAGIC = b"\x1f\x8b"
BZ2_MAGIC = b"BZh"  # then the block size, a digit 1-9
MAX_PROBLEMS_KEPT = 20


# The ReadReports made while `collect_reports()` is active (the CLI records their skipped-line
# counts in each run's configuration).
_COLLECTED: ContextVar[list[ReadReport] | None] = ContextVar("kirag_read_reports", default=None)


@contextlib.contextmanager
def collect_reports() -> Iterator[list[ReadReport]]:
    """Collect every ReadReport made inside the block (e.g. to record skipped lines)."""
    reports: list[ReadReport] = []
    token = _COLLECTED.set(reports)
    try:
        yield reports
    finally:
        _COLLECTED.reset(token)


def skipped_lines() -> dict[str, dict]:
    """Per input file, the lines skipped so far in the active `collect_reports()` block (the last
    read of a file counts: a corpus read twice is not counted twice)."""
    latest: dict[str, ReadReport] = {}
    for report in _COLLECTED.get() or []:
        latest[report.path] = report
    return {
        path: {"skipped": r.skipped, "read": r.read, "first_problems": r.problems[:3]}
        for path, r in latest.items()
        if r.skipped
    }


def _skipped_lines_result() -> dict[str, dict]:
    """The run record's "skipped_lines" (--skip-bad-lines: what was left out is part of the run)."""
    skipped = skipped_lines()
    return {"skipped_lines": skipped} if skipped else {}


RESULT_HOOKS.append(_skipped_lines_result)


@dataclass
class ReadReport:
    """What a reader did: records read, lines skipped and the first problems seen."""

    path: str
    read: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        collected = _COLLECTED.get()
        if collected is not None:
            collected.append(self)

    def record_problem(self, error: InputError) -> None:
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(str(error))

    def summary(self) -> str:
        text = f"{self.path}: read {self.read} records"
        if self.skipped:
            text += f", skipped {self.skipped} bad lines (first: {self.problems[0]})"
        return text


def open_binary(path: str | Path) -> IO[bytes]:
    """Open a file for binary reading, decompressing gzip or bz2 whatever the file is called
    (recognised by their magic bytes). This is where every kirag input file is opened: corpora,
    topics, qrels, runs and QA datasets."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path)
    if path.is_dir():
        raise InputError("is a folder, expected a file", path)
    with open(path, "rb") as probe:
        magic = probe.read(4)
    if magic[:2] == GZIP_MAGIC:
        return io.BufferedReader(_Decompressed(gzip.open(path, "rb"), path, "gzip"))
    if magic[:3] == BZ2_MAGIC and magic[3:4].isdigit() and magic[3:4] != b"0":
        return io.BufferedReader(_Decompressed(bz2.open(path, "rb"), path, "bz2"))
    return open(path, "rb")


class _Decompressed(io.RawIOBase):
    """A compressed file's bytes, with a corrupt or truncated stream reported as an InputError
    naming the file (gzip and bz2 raise OSError or EOFError part-way through a read)."""

    def __init__(self, stream: IO[bytes], path: Path, kind: str) -> None:
        self._stream, self._path, self._kind = stream, path, kind

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            return self._stream.readinto(buffer)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(
                f"{self._kind} file is truncated or corrupt ({exc})", self._path
            ) from None

    def close(self) -> None:
        self._stream.close()
        super().close()


def raw_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, raw bytes) of a file (gzip and bz2 transparently); a truncated or
    corrupt compressed stream names the first line that cannot be read (no policy can skip past
    it)."""
    with open_binary(path) as fh:
        lineno = 0
        try:
            for lineno, raw in enumerate(fh, 1):  # lineno is read after the loop
                yield lineno, raw
        except InputError as exc:
            raise InputError(
                f"{exc.reason}; lines from here on cannot be read: download or compress it again",
                path,
                lineno + 1,
            ) from None


def head_bytes(path: str | Path, size: int) -> bytes:
    """The first `size` bytes of a file (decompressed), for format sniffing."""
    with open_binary(path) as fh:
        try:
            return fh.read(size)
        except InputError as exc:  # a corrupt compressed file: reading stopped in line 1
            raise InputError(exc.reason, path, 1) from None


def iter_lines(path: str | Path, encoding: str = "utf-8") -> Iterator[tuple[int, str | InputError]]:
    """Yield (line number, text) for each line; a line that does not decode yields an InputError
    in place of its text so the caller's policy decides. Line endings and a BOM are removed."""
    for lineno, raw in raw_lines(path):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            bad = raw[exc.start : exc.start + 1].hex()
            yield (
                lineno,
                InputError(
                    f"not valid {encoding} (byte 0x{bad} at column {exc.start + 1}); "
                    f"re-encode the file as {encoding} (e.g. iconv -f latin1 -t {encoding})",
                    path,
                    lineno,
                ),
            )
            continue
        if lineno == 1 and text.startswith("\ufeff"):
            text = text[1:]
        yield lineno, text.rstrip("\r\n")


def read_records(
    path: str | Path,
    parse: Callable[[str], T | None],
    on_error: OnError = "raise",
    report: ReadReport | None = None,
    encoding: str = "utf-8",
) -> Iterator[T]:
    """`read_numbered_records` without the line numbers."""
    for _, record in read_numbered_records(path, parse, on_error, report, encoding):
        yield record


def read_numbered_records(
    path: str | Path,
    parse: Callable[[str], T | None],
    on_error: OnError = "raise",
    report: ReadReport | None = None,
    encoding: str = "utf-8",
    skip_blank: bool = True,
) -> Iterator[tuple[int, T]]:
    """Parse each line of `path` with `parse` (which raises InputError without a location, or
    returns None to ignore the line, e.g. a header) and apply the error policy. Skipped lines are
    logged at the end unless the caller passed its own `report` (and logs it itself)."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    owns_report = report is None
    report = report if report is not None else ReadReport(str(path))
    for lineno, text in iter_lines(path, encoding):
        try:
            if isinstance(text, InputError):
                raise text
            if skip_blank and not text.strip():
                continue
            record = parse(text)
        except InputError as exc:
            located = exc if exc.line is not None else InputError(exc.reason, path, lineno)
            if isinstance(text, str) and "\r" in text:  # one "line" holding CR-ended lines
                located = InputError(f"{located.reason}; {CR_HINT}", path, located.line)
            if on_error == "raise":
                raise located from None
            report.record_problem(located)
            continue
        if record is not None:
            report.read += 1
            yield lineno, record
    if owns_report and report.skipped:
        log.warning(report.summary())


CR_HINT = (
    "the file's lines end in a carriage return only (CR, old Mac style): convert them to "
    "newlines, e.g. tr '\\r' '\\n' < FILE > FIXED"
)
PRETTY_JSON_HINT = (
    "this looks like one pretty-printed JSON document: kirag reads JSONL, one JSON object per "
    "line (e.g. jq -c '.[]' FILE > FILE.jsonl)"
)


def parse_json_object(line: str) -> dict:
    """One JSONL line as a JSON object; malformed JSON or another JSON value is an InputError
    (the reader adds the file and line)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        hint = f"; {PRETTY_JSON_HINT}" if line.strip() in ("{", "[", "[{", "},", "}") else ""
        raise InputError(f"malformed JSON ({exc.msg} at column {exc.colno}){hint}") from None
    if not isinstance(record, dict):
        raise InputError(f"expected a JSON object, got {type(record).__name__}")
    return record
