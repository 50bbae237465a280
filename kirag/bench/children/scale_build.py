"""One `kirag index ...` command run in this (child) process, timed, with its peak RSS and the
size of what it wrote: what `kirag bench scale` measures build by build."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from kirag.bench.harness import print_json
from kirag.bench.memory import peak_rss_mb


def folder_mb(path: Path) -> float:
    """Bytes under `path` in MB."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def main(argv: list[str]) -> None:
    """argv: the index folder, then the `kirag index` arguments (it must be one of them)."""
    from kirag.cli import main as kirag

    index, command = Path(argv[0]), argv[1:]
    start = time.perf_counter()
    code = kirag(["-q", "index", *command])
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"kirag index {' '.join(command)} exited with {code}")
    files = {p.name: p.stat().st_size / 2**20 for p in sorted(index.iterdir()) if p.is_file()}
    print_json(
        {
            "seconds": seconds,
            "peak_rss_mb": peak_rss_mb(),
            "index_mb": folder_mb(index),
            "files_mb": {name: round(mb, 3) for name, mb in files.items()},
        }
    )


if __name__ == "__main__":
    main(sys.argv[1:])
