"""Admission control: at most `limit` requests of a kind inside (running or waiting); the next
one is refused at once (the app answers 503 with Retry-After) instead of growing a queue."""

from __future__ import annotations

import threading


class Full(Exception):
    """The gate is full: come back later."""

    def __init__(self, name: str, limit: int):
        super().__init__(f"the {name} queue is full ({limit} requests inside); retry later")
        self.name = name
        self.limit = limit


class Gate:
    """A counter with a limit, usable as a context manager."""

    def __init__(self, name: str, limit: int):
        if limit < 1:
            raise ValueError(f"{name} queue limit must be >= 1")
        self.name = name
        self.limit = limit
        self.inside = 0
        self.refused = 0
        self._lock = threading.Lock()

    def __enter__(self) -> Gate:
        with self._lock:
            if self.inside >= self.limit:
                self.refused += 1
                raise Full(self.name, self.limit)
            self.inside += 1
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self.inside -= 1
