"""Shards of work: contiguous ranges of corpus positions (or of query groups), the protocol of a
task that computes one shard, and the cutting of a stream of rows into shards."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from kirag.errors import SettingsError


@dataclass(frozen=True, slots=True)
class Shard:
    """Rows `start` (inclusive) to `stop` (exclusive) of a corpus or a list of query groups."""

    index: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def name(self) -> str:
        """The fixed stem of this shard's output files: `shard_00007`."""
        return f"shard_{self.index:05d}"


def plan_shards(total: int, size: int) -> list[Shard]:
    """Contiguous shards of `size` rows covering 0..total (the last one may be shorter)."""
    if size < 1:
        raise SettingsError(f"the shard size must be >= 1 (got {size})")
    if total < 0:
        raise SettingsError(f"the number of rows must be >= 0 (got {total})")
    return [
        Shard(i, start, min(start + size, total)) for i, start in enumerate(range(0, total, size))
    ]


@runtime_checkable
class ShardTask(Protocol):
    """One kind of sharded work. The object is light (settings and paths) so that it can be sent
    to workers; `setup` loads the heavy part (a model) once per worker, before its first shard."""

    def setup(self) -> None:
        """Load what every shard needs (the model), once per worker."""
        ...

    def done(self, shard: Shard, rows: Sequence[Any]) -> bool:
        """True when the shard's output exists and is complete for these rows (checked by the
        driver, so a rerun skips it)."""
        ...

    def run(self, shard: Shard, rows: Sequence[Any]) -> Any:
        """Compute the shard and write its output under its fixed name (temp + rename); return a
        small summary (counts), which comes back to the driver."""
        ...


@dataclass
class ShardReport:
    """What an executor did: the shards it computed and those it found finished."""

    computed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    results: dict[int, Any] = field(default_factory=dict)


def cut_into_shards(rows: Iterable[Any], size: int) -> Iterator[tuple[Shard, list[Any]]]:
    """Stream `rows` as consecutive (Shard, rows) pieces of `size` rows (one shard in memory at a
    time); the shards are those of plan_shards(len(rows), size)."""
    if size < 1:
        raise SettingsError(f"the shard size must be >= 1 (got {size})")
    buffer: list[Any] = []
    index = start = 0
    for row in rows:
        buffer.append(row)
        if len(buffer) == size:
            yield Shard(index, start, start + size), buffer
            index, start, buffer = index + 1, start + size, []
    if buffer:
        yield Shard(index, start, start + len(buffer)), buffer


def pending(
    task: ShardTask,
    pieces: Iterable[tuple[Shard, list[Any]]],
    report: ShardReport,
    on_skip: Callable[[Shard], None] | None = None,
) -> Iterator[tuple[Shard, list[Any]]]:
    """The pieces whose output is not complete yet; finished ones are recorded as skipped."""
    for shard, rows in pieces:
        if task.done(shard, rows):
            report.skipped.append(shard.index)
            if on_skip is not None:
                on_skip(shard)
        else:
            yield shard, rows
