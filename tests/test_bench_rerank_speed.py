"""Issue 31's speed measurements: random-weight GGUFs of a Rank1-shaped architecture
(kirag.bench.random_gguf) load and score in both engines, and `kirag bench rerank` runs its
llama.cpp configurations under named CPU variants (KIRAG_LLAMA_CPU_VARIANT)."""

from __future__ import annotations

import argparse

import pytest

from kirag.bench import random_gguf
from kirag.bench.random_gguf import QwenShape, write_random_gguf

pytestmark = pytest.mark.llamacpp
TINY = QwenShape("qwen2-tiny", hidden=64, layers=2, heads=4, kv_heads=2, feed_forward=128,
                 vocab=49_280)  # fmt: skip
PAIR = ("who wrote animal farm", "George Orwell wrote the novella Animal Farm in 1945.")


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    path = tmp_path_factory.mktemp("random-gguf") / "tiny.gguf"
    write_random_gguf(TINY, path)
    return path


def test_the_file_holds_the_shape_and_a_padded_vocabulary(tiny_gguf):
    gguf = pytest.importorskip("gguf")
    reader = gguf.GGUFReader(tiny_gguf)
    assert sum(int(t.n_elements) for t in reader.tensors) == TINY.parameters
    assert reader.fields["qwen2.block_count"].contents() == TINY.layers
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    assert len(tokens) == TINY.vocab and tokens[-1] == f"<|kirag_unused_{TINY.vocab - 49_153}|>"
    again = tiny_gguf.with_name("again.gguf")
    write_random_gguf(TINY, again)  # seeded: the same bytes
    assert again.read_bytes() == tiny_gguf.read_bytes()


def test_both_engines_read_the_same_architecture(tiny_gguf):
    """llama.cpp and transformers compute the same network from the file: their P(true) of one
    pair agree (the weights are random, so the value itself means nothing)."""
    from kirag.rerank.rank1 import Rank1Reranker

    from kirag.llm.factory import load_engine

    scores = [
        Rank1Reranker(engine=load_engine(str(tiny_gguf), engine), thinking_budget=0)
        .score([PAIR])[0]
        .p_true
        for engine in ("llamacpp", "transformers")
    ]
    assert abs(scores[0] - scores[1]) < 1e-3


def _runnable_variants() -> list[str]:
    import llama_cpp

    from kirag.errors import SettingsError
    from kirag.llm.llamacpp_backends import chosen_library, cpu_variants, library_folder

    folder = library_folder(llama_cpp)
    runnable = []
    for variant in cpu_variants(folder):
        try:
            chosen_library(folder, variant)
            runnable.append(variant)
        except SettingsError:
            pass
    return runnable


def test_the_bench_runs_each_llamacpp_configuration_under_each_named_variant(tmp_path, monkeypatch):
    variants = _runnable_variants()
    if len(variants) < 2:
        pytest.skip("the llama.cpp wheel has no runtime CPU dispatch (make llama-wheel-dispatch)")
    chosen = [variants[0], variants[-1]]  # x64 (any x86-64) and the widest this CPU runs
    from kirag.bench import rerank

    monkeypatch.setenv("KIRAG_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(random_gguf.SHAPES, TINY.name, TINY)
    args = argparse.Namespace(
        model="unused", speed_only=TINY.name, cpu_variants=",".join(chosen), budgets="0",
        questions="1", candidates=2, configs="llamacpp-f32,llamacpp-q8_0", batch_size=2,
        keep_scores=False, remote="", speedup_questions=0,
    )  # fmt: skip
    out = rerank.run(args)
    assert out["parameters"] == TINY.parameters and "speed_only" in out
    assert random_gguf.random_gguf_path(TINY, cache_dir=tmp_path).is_file()
    section = out["budgets"]["0"]
    for name in ("llamacpp-f32", "llamacpp-q8_0"):
        for variant in chosen:
            row = section[f"{name}@{variant}"]
            assert row["cpu_variant"] == variant and row["pairs_per_second"] > 0
            assert not any(k.startswith(("spearman", "top10")) for k in row)  # speed only
            assert row["speedup_vs_llamacpp_f32"] > 0


def test_a_variant_that_is_not_shipped_or_not_executable_is_refused():
    import llama_cpp

    from kirag.errors import SettingsError
    from kirag.llm.llamacpp_backends import chosen_library, cpu_variants, library_folder

    folder = library_folder(llama_cpp)
    with pytest.raises(
        SettingsError, match=r"KIRAG_LLAMA_CPU_VARIANT=pentium: this llama.cpp wheel ships"
    ):
        chosen_library(folder, "pentium")
    unrunnable = sorted(set(cpu_variants(folder)) - set(_runnable_variants()))
    for variant in unrunnable:  # e.g. sapphirerapids (AMX) on a CPU without AMX
        with pytest.raises(SettingsError, match="this CPU cannot execute that variant"):
            chosen_library(folder, variant)
