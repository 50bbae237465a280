"""Line-by-line reading of text files (gzip transparently) with an error policy.

Every reader in kirag.io is built on `read_records`: a malformed line raises an InputError that
names the file and line, or, with `on_error="skip"`, is counted in a ReadReport and skipped.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, TypeVar

from kirag.errors import InputError

log = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]
T = TypeVar("T")

GZIP_MAGIC = b"\x1f\x8b"
MAX_PROBLEMS_KEPT = 20


@dataclass
class ReadReport:
    """What a reader did: records read, lines skipped and the first problems seen."""

    path: str
    read: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

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
    """Open a file for binary reading, decompressing gzip whatever the file is called."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path)
    if path.is_dir():
        raise InputError("is a folder, expected a file", path)
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == GZIP_MAGIC:
        return gzip.open(path, "rb")
    return open(path, "rb")


# what a truncated or corrupt gzip stream raises while it is read
DECOMPRESSION_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def _unreadable(path: str | Path, lineno: int, exc: Exception) -> InputError:
    return InputError(
        f"compressed data is truncated or corrupt ({type(exc).__name__}); re-download or "
        "re-compress the file",
        path,
        lineno,
    )


def raw_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, raw bytes) of a file (gzip transparently); a truncated or corrupt
    gzip stream is an InputError naming the line where reading stopped."""
    with open_binary(path) as fh:
        lineno = 0
        try:
            for lineno, raw in enumerate(fh, 1):  # lineno is read after the loop
                yield lineno, raw
        except DECOMPRESSION_ERRORS as exc:
            raise _unreadable(path, lineno + 1, exc) from None


def head_bytes(path: str | Path, size: int) -> bytes:
    """The first `size` bytes of a file (decompressed), for format sniffing."""
    with open_binary(path) as fh:
        try:
            return fh.read(size)
        except DECOMPRESSION_ERRORS as exc:
            raise _unreadable(path, 1, exc) from None


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
                    f"re-encode the file as {encoding} or pass the right encoding",
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
            if on_error == "raise":
                raise located from None
            report.record_problem(located)
            continue
        if record is not None:
            report.read += 1
            yield lineno, record
    if owns_report and report.skipped:
        log.warning(report.summary())
