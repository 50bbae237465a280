"""Async entry points of the public classes (`asearch`, `arerank`, `aanswer`): the blocking call
runs in a worker thread, off the event loop. Calls that run a model (an LLM engine, a
cross-encoder) hold the process-wide model lock, so no two threads are ever inside one engine:
llama.cpp contexts and KV caches are not thread-safe, and a process holds one copy of each model.
Index-only searches (BM25, dense, hybrid) run concurrently."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# one lock for every model call of the process (re-entrant: a KiRAG call reranks inside)
MODEL_LOCK = threading.RLock()


async def off_loop(function: Callable[..., T], *args, uses_model: bool = True, **kwargs) -> T:
    """`function(*args, **kwargs)` in a worker thread; with `uses_model`, under MODEL_LOCK."""

    def call() -> T:
        with MODEL_LOCK if uses_model else contextlib.nullcontext():
            return function(*args, **kwargs)

    return await asyncio.to_thread(call)


class AsyncSearch:
    """`asearch` / `abatch_search` for a retriever with `search` / `batch_search`. Retrievers whose
    search runs an LLM (KiRAG's chains) set `runs_model = True`."""

    runs_model: bool = False

    async def asearch(self, query, k: int = 10, **options):
        """`search` off the event loop."""
        return await off_loop(self.search, query, k, uses_model=self.runs_model, **options)

    async def abatch_search(self, queries, k: int = 10, **options):
        """`batch_search` off the event loop."""
        return await off_loop(self.batch_search, queries, k, uses_model=self.runs_model, **options)
