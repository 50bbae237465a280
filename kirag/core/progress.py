"""Progress bars for long work (indexing, encoding, extraction, reranking).

One switch turns them off everywhere: `KIRAG_PROGRESS=0` or `set_progress(False)` (the CLI's
`--quiet`). Bars go to stderr so they never mix with results on stdout.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_enabled: bool | None = None


def set_progress(enabled: bool) -> None:
    global _enabled
    _enabled = enabled


def progress_enabled() -> bool:
    if _enabled is not None:
        return _enabled
    return os.environ.get("KIRAG_PROGRESS", "1") not in ("0", "false", "no")


def progress(
    iterable: Iterable[T] | None = None,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
) -> tqdm | Iterator[T]:
    """A tqdm bar (or a silent pass-through when progress is off)."""
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        disable=not progress_enabled(),
        dynamic_ncols=True,
        mininterval=0.5,
    )
