"""Keep only the named x86 CPU-backend variants in llama.cpp's ggml/src/CMakeLists.txt (the
Makefile's LLAMA_CPU_VARIANTS), so that `make install` builds the runtime-dispatch wheel in a
fraction of the time of all 14: the dropped levels (sse42, sandybridge, ...) fall back at run
time to the best kept one the CPU can execute, down to x64, which runs everywhere.

usage: python select_cpu_variants.py CMAKELISTS VARIANT [VARIANT ...]
Fails, naming it, when a kept variant is not in the file (a llama.cpp update renamed it)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

_X86_VARIANT = re.compile(r"^(\s*)(ggml_add_cpu_backend_variant\((\w+)\b.*)$")
_X86_NAMES = {
    "x64", "sse42", "sandybridge", "ivybridge", "piledriver", "haswell", "skylakex",
    "cannonlake", "cascadelake", "icelake", "cooperlake", "zen4", "alderlake", "sapphirerapids",
}  # fmt: skip


def select(text: str, keep: set[str]) -> tuple[str, list[str]]:
    """The CMake text with the x86 variants outside `keep` commented out, and those dropped."""
    lines, dropped, seen = [], [], set()
    for line in text.splitlines(keepends=True):
        match = _X86_VARIANT.match(line)
        name = match.group(3) if match else None
        if name in _X86_NAMES:
            seen.add(name)
            if name not in keep:
                dropped.append(name)
                line = f"{match.group(1)}# not built by kirag: {match.group(2)}\n"
        lines.append(line)
    missing = sorted(keep - seen)
    if missing:
        raise SystemExit(f"{sys.argv[0]}: no x86 variant named {', '.join(missing)} in the file")
    return "".join(lines), dropped


def main() -> None:
    path, keep = Path(sys.argv[1]), set(sys.argv[2:])
    text, dropped = select(path.read_text(encoding="utf-8"), keep)
    path.write_text(text, encoding="utf-8")
    print(f"llama.cpp CPU variants built: {' '.join(sorted(keep))}; not built: {' '.join(dropped)}")


if __name__ == "__main__":
    main()
