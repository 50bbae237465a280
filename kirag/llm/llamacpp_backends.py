"""Which llama.cpp CPU backend runs here. kirag's llama-cpp-python wheel is built with
`GGML_BACKEND_DL` + `GGML_CPU_ALL_VARIANTS` (the Makefile): its CPU backend is one shared library
per instruction-set level (libggml-cpu-haswell.so, -skylakex, -icelake, -sapphirerapids, ...),
and ggml loads, at run time, the best one this CPU can execute — AVX-512/VNNI/BF16/AMX where
present, AVX2 elsewhere, never an illegal instruction on another machine. ggml looks for the
libraries beside the executable and in the working directory, not inside the wheel, so kirag
loads them from the wheel's own `llama_cpp/lib` before the first model. A wheel built without
runtime dispatch has one `libggml-cpu.so` and reports itself as such.

`KIRAG_LLAMA_CPU_VARIANT=haswell` (any shipped variant this CPU can execute) loads that one
instead of the best: how `kirag bench rerank --cpu-variants` compares AVX2 with AVX-512/VNNI on
one machine and one build. It is per process, as ggml's backend registry is."""

from __future__ import annotations

import ctypes
import os
import re
import sys
import threading
from pathlib import Path

from kirag.core.runconfig import RUNTIME_HOOKS

SINGLE_BUILD = "single build (no runtime CPU dispatch)"
VARIANT_VARIABLE = "KIRAG_LLAMA_CPU_VARIANT"
_VARIANT = re.compile(r"libggml-cpu(?:-([A-Za-z0-9_.]+))?\.so")
_lock = threading.Lock()
_ready = False
_variant: str | None = None  # the CPU backend ensure_backends registered in this process


def library_folder(llama_cpp) -> Path:
    """The folder of the binding's shared libraries (`llama_cpp/lib` inside the wheel)."""
    return Path(llama_cpp.__file__).resolve().parent / "lib"


def cpu_variants(folder: Path) -> list[str]:
    """The CPU-backend variants a wheel ships (empty for a single-build wheel)."""
    names = {m.group(1) for p in folder.glob("libggml-cpu-*.so") if (m := _VARIANT.match(p.name))}
    return sorted(n for n in names if n)


def ensure_backends(llama_cpp) -> None:
    """Load llama.cpp's backends once per process: from the wheel's library folder when the
    wheel ships them as loadable variants (ggml picks the best the CPU supports, or the one
    KIRAG_LLAMA_CPU_VARIANT names), then
    `llama_backend_init` (which loads nothing more once a backend is registered)."""
    global _ready, _variant
    with _lock:
        if _ready:
            return
        folder = library_folder(llama_cpp)
        chosen = os.environ.get(VARIANT_VARIABLE, "").strip()
        library = chosen_library(folder, chosen) if chosen else None
        if cpu_variants(folder):
            ggml = ctypes.CDLL(str(_loaded_ggml(folder)))
            ggml.ggml_backend_reg_count.restype = ctypes.c_size_t
            if ggml.ggml_backend_reg_count() == 0 and library:
                ggml.ggml_backend_load.argtypes = [ctypes.c_char_p]
                ggml.ggml_backend_load.restype = ctypes.c_void_p
                ggml.ggml_backend_load(str(library).encode())
            elif ggml.ggml_backend_reg_count() == 0:
                ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
                ggml.ggml_backend_load_all_from_path(str(folder).encode())
        llama_cpp.llama_backend_init()
        _variant = loaded_cpu_variant()  # ggml unloaded the variants it scored and did not keep
        _ready = True


def _loaded_ggml(folder: Path) -> Path:
    """The libggml file libllama links (its soname, `libggml.so.0`): a wheel holds copies, not
    links, of libggml.so / .so.0 / .so.0.x, and a backend registered in another copy is one
    llama.cpp never sees ("no backends are loaded")."""
    soname = folder / "libggml.so.0"
    return soname if soname.is_file() else folder / "libggml.so"


def chosen_library(folder: Path, variant: str) -> Path:
    """The library of a variant named by KIRAG_LLAMA_CPU_VARIANT, once checked that the wheel
    ships it and that this CPU can execute it (its own `ggml_backend_score` is 0 otherwise:
    loading it anyway would end in an illegal instruction)."""
    from kirag.errors import SettingsError

    shipped = cpu_variants(folder)
    if variant not in shipped:
        raise SettingsError(
            f"{VARIANT_VARIABLE}={variant}: this llama.cpp wheel ships "
            f"{', '.join(shipped) or 'no CPU variants (a single build)'}"
        )
    path = folder / f"libggml-cpu-{variant}.so"
    if _score(path) == 0:
        raise SettingsError(f"{VARIANT_VARIABLE}={variant}: this CPU cannot execute that variant")
    return path


def _score(path: Path) -> int:
    """A variant's own `ggml_backend_score` (0: this CPU cannot execute it), the library closed
    again after, as ggml's own loader does: one left mapped would be taken for the variant that
    runs."""
    import _ctypes

    library = ctypes.CDLL(str(path))
    try:
        library.ggml_backend_score.restype = ctypes.c_int
        return library.ggml_backend_score()
    finally:
        _ctypes.dlclose(library._handle)


def _runtime_detail() -> dict[str, str]:
    """The run record's "llama_cpp_cpu_variant", when llama.cpp ran in this process."""
    if "llama_cpp" not in sys.modules:
        return {}
    variant = running_cpu_variant()
    return {"llama_cpp_cpu_variant": variant} if variant else {}


RUNTIME_HOOKS.append(_runtime_detail)


def running_cpu_variant() -> str | None:
    """The CPU variant llama.cpp runs in this process: the one ensure_backends registered, else
    (llama.cpp loaded by other code) the one in the memory map."""
    return _variant or loaded_cpu_variant()


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
        "cpu_variant": running_cpu_variant(),
        "cpu_variants_shipped": cpu_variants(folder) or [SINGLE_BUILD],
    }
