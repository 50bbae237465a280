"""Which llama.cpp CPU backend runs here. kirag's llama-cpp-python wheel is built with
`GGML_BACKEND_DL` + `GGML_CPU_ALL_VARIANTS` (the Makefile): its CPU backend is one shared library
per instruction-set level (libggml-cpu-haswell.so, -skylakex, -icelake, -sapphirerapids, ...),
and ggml loads, at run time, the best one this CPU can execute — AVX-512/VNNI/BF16/AMX where
present, AVX2 elsewhere, never an illegal instruction on another machine. ggml looks for the
libraries beside the executable and in the working directory, not inside the wheel, so kirag
loads them from the wheel's own `llama_cpp/lib` before the first model. A wheel built without
runtime dispatch has one `libggml-cpu.so` and reports itself as such."""

from __future__ import annotations

import ctypes
import re
import sys
import threading
from pathlib import Path

from kirag.core.runconfig import RUNTIME_HOOKS

SINGLE_BUILD = "single build (no runtime CPU dispatch)"
_VARIANT = re.compile(r"libggml-cpu(?:-([A-Za-z0-9_.]+))?\.so")
_lock = threading.Lock()
_ready = False


def library_folder(llama_cpp) -> Path:
    """The folder of the binding's shared libraries (`llama_cpp/lib` inside the wheel)."""
    return Path(llama_cpp.__file__).resolve().parent / "lib"


def cpu_variants(folder: Path) -> list[str]:
    """The CPU-backend variants a wheel ships (empty for a single-build wheel)."""
    names = {m.group(1) for p in folder.glob("libggml-cpu-*.so") if (m := _VARIANT.match(p.name))}
    return sorted(n for n in names if n)


def ensure_backends(llama_cpp) -> None:
    """Load llama.cpp's backends once per process: from the wheel's library folder when the
    wheel ships them as loadable variants (ggml picks the best the CPU supports), then
    `llama_backend_init` (which loads nothing more once a backend is registered)."""
    global _ready
    with _lock:
        if _ready:
            return
        folder = library_folder(llama_cpp)
        if cpu_variants(folder):
            ggml = ctypes.CDLL(str(folder / "libggml.so"))
            ggml.ggml_backend_reg_count.restype = ctypes.c_size_t
            if ggml.ggml_backend_reg_count() == 0:
                ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
                ggml.ggml_backend_load_all_from_path(str(folder).encode())
        llama_cpp.llama_backend_init()
        _ready = True


def _runtime_detail() -> dict[str, str]:
    """The run record's "llama_cpp_cpu_variant", when llama.cpp ran in this process."""
    if "llama_cpp" not in sys.modules:
        return {}
    variant = loaded_cpu_variant()
    return {"llama_cpp_cpu_variant": variant} if variant else {}


RUNTIME_HOOKS.append(_runtime_detail)


def loaded_cpu_variant(maps: str | Path = "/proc/self/maps") -> str | None:
    """The CPU-backend library this process has loaded: a variant name (`icelake`, `haswell`,
    ...), SINGLE_BUILD for a wheel without runtime dispatch, None when llama.cpp has not loaded
    one (or the platform has no /proc)."""
    try:
        text = Path(maps).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        match = _VARIANT.search(line)
        if match:
            return match.group(1) or SINGLE_BUILD
    return None


def describe(llama_cpp=None) -> dict:
    """What `kirag doctor` and run configs say about llama.cpp here: the variants the wheel
    ships and the one loaded (loading the backends if needed)."""
    if llama_cpp is None:
        from kirag.core.optional import require

        llama_cpp = require("llama_cpp", "llamacpp", "the llama.cpp engine")
    ensure_backends(llama_cpp)
    folder = library_folder(llama_cpp)
    return {
        "cpu_variant": loaded_cpu_variant(),
        "cpu_variants_shipped": cpu_variants(folder) or [SINGLE_BUILD],
    }
