"""Peak memory of this process, as the benchmarks report it."""

from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB. Read from VmHWM in /proc, the high-water mark
    of the process's own memory: Linux carries ru_maxrss over from the parent across fork + exec,
    so a benchmark's child process would report its parent's peak. ru_maxrss off Linux."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
