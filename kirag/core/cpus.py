"""The CPUs this process may run on: its affinity mask (taskset, a container's cpuset, a test
worker's share), not the machine's count. Threads beyond them only wait on each other — and
llama.cpp's threads spin at barriers, so oversubscribing them costs several times their work."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """How many CPUs this process may run on (at least 1)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
