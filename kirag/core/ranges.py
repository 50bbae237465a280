"""The allowed range of every number a user can set, declared once as data.

A `Range` checks a value for the Python API (`Range.check(value, "k")` raises `SettingsError`
naming the parameter) and parses a command-line string (an argparse `type=`: the error names the
flag), with the same words either way. Settings dataclasses attach one to a field with
`setting(default, help, range=COUNT)` (kirag.core.settings), which checks them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kirag.errors import SettingsError


@dataclass(frozen=True, slots=True)
class Range:
    """Allowed values of one number: integer or finite float, between `low` and `high`
    (inclusive unless `low_open`/`high_open`); `optional` lets None through (an unset value)."""

    low: float | None = None
    high: float | None = None
    integer: bool = False
    low_open: bool = False
    high_open: bool = False
    optional: bool = True

    @property
    def __name__(self) -> str:  # argparse names a type by it in its own messages
        return "integer" if self.integer else "number"

    def describe(self) -> str:
        """The range in words: "an integer >= 1", "a number from 0 to 1"."""
        kind = "an integer" if self.integer else "a finite number"
        low = None if self.low is None else _text(self.low)
        high = None if self.high is None else _text(self.high)
        if low is not None and high is not None and not (self.low_open or self.high_open):
            return f"{kind} from {low} to {high}"
        parts = []
        if low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {low}")
        if high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {high}")
        return f"{kind} {' and '.join(parts)}".rstrip()

    def problem(self, value: Any) -> str | None:
        """Why `value` is out of range (None when it is fine)."""
        if value is None:
            return None if self.optional else f"must be {self.describe()} (got nothing)"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be {self.describe()} (got {value!r})"
        if self.integer and not (isinstance(value, int) or float(value).is_integer()):
            return f"must be {self.describe()} (got {value!r})"
        if not math.isfinite(value):
            return f"must be {self.describe()} (got {value!r})"
        too_low = self.low is not None and (
            value <= self.low if self.low_open else value < self.low
        )
        too_high = self.high is not None and (
            value >= self.high if self.high_open else value > self.high
        )
        if too_low or too_high:
            return f"must be {self.describe()} (got {_text(value)})"
        return None

    def check(self, value: Any, name: str) -> Any:
        """`value` unchanged when in range; else SettingsError("NAME must be ... (got ...)")."""
        problem = self.problem(value)
        if problem:
            raise SettingsError(
                f"{name} {problem}", parameters=(name,) if name.isidentifier() else ()
            )
        return int(value) if self.integer and value is not None else value

    def parse(self, text: str) -> int | float:
        """A command-line string as a number in range; ValueError with the reason if not."""
        stripped = text.strip()
        try:
            value: int | float = int(stripped) if self.integer else float(stripped)
        except ValueError:
            got = repr(text) if stripped else "an empty value"
            raise ValueError(f"must be {self.describe()} (got {got})") from None
        problem = self.problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def __call__(self, text: str) -> int | float:
        """argparse's `type=`: argparse prefixes the flag, `argument --k: must be ...`."""
        import argparse

        try:
            return self.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None


def _text(number: float) -> str:
    return str(int(number)) if float(number).is_integer() and abs(number) < 1e15 else str(number)


# The named ranges: one definition per kind of number (flags and parameters share them).
COUNT = Range(1, integer=True)  # k, threads, batch sizes, depths, shard sizes, turns ...
COUNT_OR_ZERO = Range(0, integer=True)  # budgets and limits where 0 means none / all
CUTOFF = Range(1, integer=True)  # a metric's @k
SEED = Range(0, 2**32 - 1, integer=True)  # numpy's seed range
FRACTION = Range(0, 1)  # BM25 b, fusion weights, ratios
OPEN_FRACTION = Range(0, 1, high_open=True)  # a held-out fraction (all of it leaves nothing)
NON_NEGATIVE = Range(0)  # BM25 k1, weight decay, CPUs/GPUs per worker, clipping
POSITIVE = Range(0, low_open=True)  # learning rates, epochs
GRADE = Range(integer=True)  # a relevance grade (negative grades exist in some qrels)
