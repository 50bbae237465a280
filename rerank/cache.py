"""A resumable score cache: an append-only JSONL file of scored (query, passage) pairs, flushed
and fsynced after every batch. Entries are keyed by the scorer's configuration fingerprint (model,
engine, precision, prompt, thinking budget...) and a hash of the query and passage text, so a
different model, prompt or budget never reuses another's scores. A line cut short by a crash is
ignored on reading."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kirag.core.settings import fingerprint

log = logging.getLogger(__name__)


def pair_key(config: str, query: str, passage: str) -> str:
    return hashlib.sha256(f"{config}\x1f{query}\x1f{passage}".encode()).hexdigest()[:40]


def config_fingerprint(settings: dict[str, Any]) -> str:
    """The scorer configuration's key (kirag.core.settings.fingerprint: 16 hex of sorted JSON)."""
    return fingerprint(settings)


class ScoreCache:
    """`get(key)` / `put_many([(key, record), ...])` over a JSONL file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._entries: dict[str, dict] = {}
        self.ignored_lines = 0
        if self.path.exists():
            with open(self.path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        record = json.loads(line)
                        self._entries[record["key"]] = record
                    except (json.JSONDecodeError, KeyError, TypeError):
                        self.ignored_lines += 1
            if self.ignored_lines:
                log.warning(
                    "%s: ignored %d unreadable lines (a run stopped while writing)",
                    self.path,
                    self.ignored_lines,
                )

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> dict | None:
        return self._entries.get(key)

    def put_many(self, items: Iterable[tuple[str, dict]]) -> None:
        lines = []
        for key, record in items:
            record = {"key": key, **record}
            self._entries[key] = record
            lines.append(json.dumps(record, ensure_ascii=False))
        if not lines:
            return
        needs_newline = (
            self.path.exists()
            and self.path.stat().st_size > 0
            and not _ends_with_newline(self.path)
        )
        with open(self.path, "a", encoding="utf-8") as fh:
            if needs_newline:
                fh.write("\n")
            fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"
