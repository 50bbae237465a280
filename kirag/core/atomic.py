"""Atomic writes: a crash never leaves a half-written file or index folder at the final path.

Files are written to a temporary sibling and renamed; folders are built in a temporary sibling
folder and renamed at the end, so a loader either finds the complete thing or nothing. Builds of
one folder exclude each other through a lock file beside it (`.NAME.kirag-lock`, flock): a
second build fails at once instead of deleting the first one's work.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from kirag.core.interrupts import deferred_interrupts
from kirag.errors import KiragError, OutputExistsError

TMP_MARK = ".kirag-tmp-"
LOCK_SUFFIX = ".kirag-lock"
WORK_MARK = ".encode-"  # resumable work folders beside a target: `.NAME.encode-KEY`
SQLITE_FULL_MARKERS = ("disk is full", "disk i/o error")

# Lock files this process holds, with their open descriptors and nesting depth: a build that
# holds a target's lock may enter atomic_directory for the same target again (flock would
# otherwise refuse a second descriptor of the same process).
_HELD: dict[Path, list] = {}


class BuildLockedError(KiragError):
    """Another process is building the same output folder."""


def lock_path(path: str | Path) -> Path:
    """The lock file of a build target: `.NAME.kirag-lock` beside it."""
    path = Path(path)
    return path.parent / f".{path.name}{LOCK_SUFFIX}"


@contextlib.contextmanager
def build_lock(path: str | Path) -> Iterator[Path]:
    """Hold the exclusive build lock of `path` (re-entrant within this process); a build by
    another process fails at once with a BuildLockedError naming the target."""
    shown = Path(path)  # as the user spelled it, for messages
    path = shown.absolute()
    lock = lock_path(path)
    held = _HELD.get(lock)
    if held is not None:
        held[1] += 1
        try:
            yield lock
        finally:
            held[1] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(lock, shown)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _HELD[lock] = [fd, 1]
    try:
        # an index set aside by a build killed between the two renames of an overwrite
        # (`.NAME.kirag-tmp-old`, no `NAME`) is put back before anything else looks at `path`
        old = _set_aside(path)
        if old.is_dir() and not path.exists():
            os.replace(old, path)
        yield lock
    finally:
        del _HELD[lock]
        lock.unlink(missing_ok=True)  # while still locked: a waiter re-checks the inode
        os.close(fd)


def _acquire(lock: Path, target: Path) -> int:
    """An open, flock-ed descriptor of `lock`. A lock file unlinked by its previous holder
    between our open and our flock is opened again, so two holders never coexist."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BuildLockedError(
                f"{target}: another kirag build of this folder is running (it holds "
                f"{lock_path(target)}); "
                "wait for it to finish or stop it"
            ) from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _set_aside(path: Path) -> Path:
    """Where the index being replaced waits between the two renames of an overwrite."""
    return path.with_name(f".{path.name}{TMP_MARK}old")


def remove_stale_temporaries(path: Path) -> None:
    """Remove temporary folders of earlier builds of `path`. Only call with `path`'s build lock
    held: every build holds it for its whole life, so any temporary left is a dead build's."""
    for stale in path.parent.glob(f".{path.name}{TMP_MARK}*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to `path`; on a clean exit fsync it and rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}{TMP_MARK}", dir=path.parent)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a normal file gets the usual mode
    try:
        binary = "b" in mode
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        _raise_naming(exc, path)


def write_json(path: str | Path, data: Any, indent: int = 2) -> Path:
    """Write JSON atomically (sorted keys are not forced: the caller's order is kept)."""
    with atomic_write(path) as fh:
        json.dump(data, fh, indent=indent, ensure_ascii=False, default=str)
        fh.write("\n")
    return Path(path)


@contextlib.contextmanager
def atomic_directory(
    path: str | Path,
    overwrite: bool = False,
    check_replace: Callable[[Path], None] | None = None,
) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on a clean exit it replaces `path`.

    The build lock of `path` is held throughout (a concurrent build of the same target fails at
    once). With `overwrite=False` an existing `path` is an error before any work starts; with
    `overwrite=True` only what `check_replace` accepts is replaced (default: a kirag index
    folder, see check_overwritable). Temporary folders of earlier, dead builds of the same
    target are removed.
    """
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise KiragError(
            f"{str(path)!r} names no folder of its own (it would replace the current or a parent "
            "folder); give a new folder, e.g. indexes/NAME"
        )
    with build_lock(path):
        if path.exists():
            if not overwrite:
                raise OutputExistsError(
                    f"{path} already exists; pass overwrite=True", parameters=("overwrite",)
                )
            (check_replace or check_overwritable)(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}{TMP_MARK}", dir=path.parent))
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            yield tmp
            if path.exists():
                old = _set_aside(path)
                shutil.rmtree(old, ignore_errors=True)
                with deferred_interrupts():  # Ctrl-C waits for both renames, never half of them
                    os.replace(path, old)
                    os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            _raise_naming(exc, path)


def _raise_naming(exc: BaseException, path: Path) -> None:
    """Re-raise `exc`; a nameless OS error or a SQLite error while writing `path` names it."""
    named = as_write_error(exc, path)
    if named is exc:
        raise exc
    for note in getattr(exc, "__notes__", ()):  # what the library added (resumable work...)
        named.add_note(note)
    raise named from exc


# What a folder must hold for --overwrite to replace it: a manifest.json of one of these kinds.
OVERWRITABLE_KINDS = ("bm25", "dense", "triples")


def check_overwritable(path: Path) -> None:
    """Refuse to replace anything but a kirag index folder (a manifest.json of a known kind)."""
    if not path.is_dir():
        raise OutputExistsError(f"{path} exists and is not a folder; refusing to replace it")
    manifest = path / "manifest.json"
    kind = None
    if manifest.is_file():
        try:
            kind = json.loads(manifest.read_text("utf-8")).get("kind")
        except (ValueError, AttributeError, OSError):
            kind = None
    if kind not in OVERWRITABLE_KINDS:
        raise OutputExistsError(
            f"{path} is not a kirag index (no manifest.json of kind {', '.join(OVERWRITABLE_KINDS)}); "
            "overwrite=True only replaces kirag indexes: choose another folder or remove it "
            "yourself",
            parameters=("overwrite",),
        )


def check_not_inside(output: str | Path, source: str | Path, what: str = "the corpus") -> None:
    """Refuse an output folder that contains `source`, or that lies inside `source`: replacing
    it would delete the input, or the build would read its own output."""
    out = Path(output).resolve()
    src = Path(source).resolve()
    if out == src or out in src.parents or src in out.parents:
        raise KiragError(
            f"{output}: the output folder and {what} ({source}) overlap; "
            "choose an output folder outside the input"
        )


def user_path(path: str | Path) -> Path:
    """The path the user asked for, given a path that may lie inside (or be) one of kirag's
    temporary siblings `.NAME.kirag-tmp-XXXX`, lock files `.NAME.kirag-lock` or resumable work
    folders `.NAME.encode-KEY`."""
    path = Path(path)
    parts = list(path.parts)
    for i, part in enumerate(parts):
        for mark in (TMP_MARK, LOCK_SUFFIX, WORK_MARK):
            if part.startswith(".") and mark in part:
                name = part[1 : part.index(mark)]
                return Path(*parts[:i], name) if i else Path(name)
    return path


def as_write_error(exc: BaseException, path: str | Path) -> BaseException:
    """An OSError without a file name, or a SQLite error, raised while writing `path`, as an
    OSError naming `path` (the error as it was otherwise)."""
    if isinstance(exc, sqlite3.Error):
        reason = str(exc)
        code = errno.ENOSPC if any(m in reason.lower() for m in SQLITE_FULL_MARKERS) else errno.EIO
        return OSError(code, f"SQLite: {reason}", str(path))
    if isinstance(exc, OSError) and not exc.filename:
        if exc.errno:
            return OSError(exc.errno, exc.strerror or str(exc), str(path))
        # e.g. numpy's "N requested and M written": a short write, no errno
        return OSError(errno.EIO, f"write failed ({exc})", str(path))
    return exc
