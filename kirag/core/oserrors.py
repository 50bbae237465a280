"""OS and SQLite errors as one line for the user: the user's own path (never kirag's temporary
sibling) and what to change."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from kirag.core.atomic import SQLITE_FULL_MARKERS, user_path

# errno -> what the user can do about it
HINTS = {
    errno.EACCES: "no permission to write there: choose a folder you can write to, or fix its permissions",
    errno.EPERM: "no permission to write there: choose a folder you can write to, or fix its permissions",
    errno.EROFS: "a read-only file system: choose a writable folder",
    errno.ENOSPC: "the disk is full: free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is exhausted: free some space or write elsewhere",
    errno.EFBIG: "the file grew past the size this system allows (disk full or a file-size limit): free space or write elsewhere",
    errno.EEXIST: "a file stands where a folder is needed: choose another path",
    errno.ENOTDIR: "a file stands where a folder is needed: choose another path",
    errno.EISDIR: "a folder stands where a file is needed: choose another path",
    errno.ENOENT: "no such file or folder: check the path",
    errno.EIO: "the disk may be full or failing: free some space or write elsewhere",
    errno.ENAMETOOLONG: "the name is too long for this file system: choose a shorter path",
}


def os_error_message(exc: OSError) -> str:
    """One line for an OSError: the user's path, the system's reason and what to change."""
    reason = exc.strerror or str(exc)
    hint = HINTS.get(exc.errno or 0, "")
    where = user_path(exc.filename) if exc.filename else None
    text = f"{where}: {reason}" if where is not None else reason
    if exc.filename2:
        text += f" (and {user_path(exc.filename2)})"
    return f"{text}; {hint}" if hint else text


def sqlite_error_message(exc: sqlite3.Error, path: str | Path | None = None) -> str:
    """One line for a SQLite error, naming `path` when known."""
    reason = str(exc)
    where = f"{user_path(path)}: " if path is not None else ""
    if any(marker in reason.lower() for marker in SQLITE_FULL_MARKERS):
        return f"{where}SQLite could not write ({reason}); {HINTS[errno.ENOSPC]}"
    return f"{where}SQLite error ({reason})"
