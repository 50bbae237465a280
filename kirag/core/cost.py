"""What long model work will cost, said once it has started.

Defaults meant for a GPU (Rank1's 8192-token thinking budget) or for a cluster can take hours on
a laptop with no sign of it. A `CostMeter` measures the work's own rate on its first items
(thinking tokens per second for Rank1, passages per second for extraction and encoding), and
once, after the first items, prints one line on stderr: how long the rest will take at that
rate and which settings make it faster. It is quiet when progress bars are off
(`KIRAG_PROGRESS=0`, the CLI's `--quiet`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from kirag.core.progress import progress_enabled


def format_duration(seconds: float) -> str:
    """'40 s', '12 min', '3 h 05 min': a duration as a person reads it."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


@dataclass(frozen=True)
class Estimate:
    """The rest of a job at the rate measured so far: `done` of `total` items in `elapsed_s`,
    at `rate` units per second; `remaining_s` for the other items' `remaining_units`."""

    done: int
    total: int
    elapsed_s: float
    rate: float
    remaining_s: float


def estimate(
    done: int, total: int, elapsed_s: float, units_done: float, remaining_units: float
) -> Estimate:
    """The time the remaining units take at the rate of the units done so far."""
    rate = units_done / elapsed_s if elapsed_s > 0 else 0.0
    remaining = remaining_units / rate if rate > 0 else float("inf")
    return Estimate(done, total, elapsed_s, rate, remaining)


class CostMeter:
    """Counts finished items of a job of `total` items and, once, after at least `after` items,
    prints the estimated time of the rest with `faster` (the settings that shorten it).

    `per_item` is the work one remaining item costs, in the units counted by `update` (Rank1:
    the thinking budget, in tokens; None: an item is a unit). `unit` names the unit."""

    def __init__(
        self,
        what: str,
        total: int,
        item: str,
        faster: str,
        unit: str | None = None,
        per_item: float | None = None,
        after: int = 1,
        clock: Callable[[], float] = time.monotonic,
        write: Callable[[str], None] | None = None,
    ):
        self.what = what
        self.total = total
        self.item = item
        self.faster = faster
        self.unit = unit or item
        self.per_item = per_item
        self.after = max(1, after)
        self.clock = clock
        self.write = write or say
        self.started = clock()
        self.done = 0
        self.units = 0.0
        self.said: str | None = None

    def update(self, items: int, units: float | None = None) -> None:
        """`items` more finished, costing `units` (default: one per item)."""
        self.done += items
        self.units += items if units is None else units
        if self.said is None and self.done >= self.after and self.done < self.total:
            self.said = self.line()
            if progress_enabled():
                self.write(self.said)

    def line(self) -> str:
        """The one line: rate so far, time for the rest, what makes it faster."""
        left = self.total - self.done
        per_item = self.per_item if self.per_item is not None else self.units / self.done
        found = estimate(
            self.done, self.total, self.clock() - self.started, self.units, left * per_item
        )
        rest = _duration(found.remaining_s)
        if self.per_item is not None:  # an upper bound; the mean so far says what is likely
            seen = self.units / self.done
            likely = estimate(found.done, found.total, found.elapsed_s, self.units, left * seen)
            rest = (
                f"up to {rest} at {self.per_item:g} {self.unit}s per {self.item} (about "
                f"{_duration(likely.remaining_s)} at the {seen:.0f} per {self.item} seen so far)"
            )
        else:
            rest = f"about {rest}"
        return (
            f"kirag: {self.what}: {found.done} of {found.total} {self.item}s in "
            f"{format_duration(found.elapsed_s)} ({found.rate:.1f} {self.unit}s/s); the other "
            f"{left}: {rest}. Faster: {self.faster}"
        )

    def skip(self, items: int) -> None:
        """`items` of the job need no work (cached): they leave the estimate."""
        self.total -= items


def _duration(seconds: float) -> str:
    return format_duration(seconds) if seconds != float("inf") else "unknown (no rate yet)"


def say(line: str) -> None:
    """One line on stderr, above any progress bar rather than through it."""
    from tqdm.auto import tqdm

    tqdm.write(line, file=sys.stderr)
