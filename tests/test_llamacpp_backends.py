"""Which llama.cpp CPU backend a process loaded (kirag.llm.llamacpp_backends): read from the
process's memory map, as the engine, `kirag doctor` and every run config report it."""

from __future__ import annotations

import pytest

from kirag.core.runconfig import runtime_details
from kirag.llm.llamacpp_backends import SINGLE_BUILD, cpu_variants, loaded_cpu_variant

MAP_LINE = "7f1c2a000000-7f1c2a100000 r-xp 00000000 08:01 123 {}\n"


@pytest.mark.parametrize(
    "library, expected",
    [
        ("/site-packages/llama_cpp/lib/libggml-cpu-icelake.so", "icelake"),
        ("/site-packages/llama_cpp/lib/libggml-cpu-sapphirerapids.so", "sapphirerapids"),
        ("/site-packages/llama_cpp/lib/libggml-cpu.so.0.25.3", SINGLE_BUILD),
        ("/site-packages/llama_cpp/lib/libggml-base.so.0", None),
    ],
)
def test_the_loaded_variant_is_read_from_the_memory_map(tmp_path, library, expected):
    maps = tmp_path / "maps"
    maps.write_text(MAP_LINE.format("/usr/lib/libc.so.6") + MAP_LINE.format(library))
    assert loaded_cpu_variant(maps) == expected
    assert loaded_cpu_variant(tmp_path / "absent") is None


def test_shipped_variants_are_listed_from_the_library_folder(tmp_path):
    for name in ("libggml-cpu-haswell.so", "libggml-cpu-icelake.so", "libggml-base.so"):
        (tmp_path / name).write_bytes(b"")
    assert cpu_variants(tmp_path) == ["haswell", "icelake"]


@pytest.mark.llamacpp
def test_the_engine_and_run_configs_name_the_variant_that_ran(llamacpp_engine):
    assert llamacpp_engine.cpu_variant  # this process loaded a CPU backend
    assert runtime_details() == {"llama_cpp_cpu_variant": llamacpp_engine.cpu_variant}


@pytest.mark.llamacpp
def test_checking_other_variants_leaves_the_one_that_runs_named(llamacpp_engine):
    """KIRAG_LLAMA_CPU_VARIANT's check loads a variant to ask its score: it is closed again, so
    the memory map and the run record still name only the backend that runs (CI once read a
    scored variant as the loaded one)."""
    import contextlib

    import llama_cpp

    from kirag.errors import SettingsError
    from kirag.llm.llamacpp_backends import chosen_library, library_folder

    folder = library_folder(llama_cpp)
    variants = cpu_variants(folder)
    if not variants:
        pytest.skip("the llama.cpp wheel has no runtime CPU dispatch (make llama-wheel-dispatch)")
    for variant in variants:
        with contextlib.suppress(SettingsError):  # one this CPU cannot execute
            chosen_library(folder, variant)
    assert loaded_cpu_variant() == llamacpp_engine.cpu_variant
    assert runtime_details() == {"llama_cpp_cpu_variant": llamacpp_engine.cpu_variant}
