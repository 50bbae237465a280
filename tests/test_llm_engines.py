"""LLM engines with the real packaged SmolLM2-135M: greedy decoding, stop strings, final
log-probabilities, next-token log-probs, chat templates, batching and prefix sharing."""

from __future__ import annotations

import math

import pytest

from kirag.errors import KiragError
from kirag.llm.base import cut_at_stop, log_softmax_top
from kirag.llm.factory import choose_engine, load_engine

PROMPT = "Determine if the following passage is relevant to the query. Answer only with 'true' or 'false'.\nQuery: Who wrote Animal Farm?\nPassage: Animal Farm is a novella by George Orwell.\n<think>"
OTHER = PROMPT.replace(
    "Animal Farm is a novella by George Orwell.", "Aristotle was a Greek philosopher."
)


def test_pure_helpers():
    import numpy as np

    assert cut_at_stop("abc</think> true tail", ["</think> true", "</think> false"]) == (
        "abc",
        "</think> true",
    )
    assert cut_at_stop("no stop here", ["</think>"]) == ("no stop here", None)
    logits = np.array([1.0, 2.0, 3.0])
    top = log_softmax_top(logits, 0, k=2)
    assert set(top) == {0, 1, 2}
    assert sum(math.exp(v) for v in top.values()) == pytest.approx(1.0)


@pytest.fixture(scope="module", params=["llamacpp", "transformers"])
def engine(request):
    return request.getfixturevalue(f"{request.param}_engine")


def test_greedy_generation_is_deterministic_and_stops(engine):
    # from an empty cache each time: a prefix kept from an earlier test is evaluated in other
    # batches, which moves llama.cpp's quantized arithmetic (the engine's docstring)
    reset = getattr(engine, "reset", lambda: None)
    reset()
    first = engine.generate_detailed([PROMPT], 12)
    reset()
    second = engine.generate_detailed([PROMPT], 12)
    assert first[0].token_ids == second[0].token_ids and first[0].text
    assert first[0].finish_reason in ("length", "eos")
    # greedy: the token chosen at the last step is the argmax of the final distribution
    final = first[0].final_logprobs
    if first[0].finish_reason == "length":
        assert max(final, key=final.get) == first[0].token_ids[-1]
    stopped = engine.generate_detailed([PROMPT], 40, stop=["\n"])[0]
    if stopped.finish_reason == "stop":
        assert "\n" not in stopped.text and stopped.stop == "\n"


def test_next_token_logprobs_match_the_generation_distribution(engine):
    first_step = engine.generate_detailed([PROMPT], 1)[0].final_logprobs
    candidates = engine.next_token_logprobs([PROMPT], [" true", " false"])[0]
    assert all(v <= 0 for v in candidates.values())
    true_id = engine.token_ids(" true")[0]
    if true_id in first_step:
        assert candidates[" true"] == pytest.approx(first_step[true_id], abs=1e-4)
    with pytest.raises(ValueError, match="one token"):
        engine.next_token_logprobs([PROMPT], [" definitely not one token"])


def test_chat_template_is_the_models(engine):
    text = engine.apply_chat_template([{"role": "user", "content": "Hello"}])
    assert "<|im_start|>user\nHello<|im_end|>" in text and text.rstrip().endswith(
        "<|im_start|>assistant"
    )


def test_transformers_batching_and_prefix_sharing_match_single_prompts(transformers_engine):
    before = transformers_engine.prefix_shared_batches
    batch = transformers_engine.generate_detailed([PROMPT, OTHER], 16)
    assert transformers_engine.prefix_shared_batches == before + 1
    for prompt, batched in zip([PROMPT, OTHER], batch, strict=True):
        single = transformers_engine.generate_detailed([prompt], 16)[0]
        assert single.token_ids == batched.token_ids
        for token in set(single.final_logprobs) & set(batched.final_logprobs):
            assert single.final_logprobs[token] == pytest.approx(
                batched.final_logprobs[token], abs=1e-3
            )


def test_transformers_scoring_with_a_shared_prefix_matches_without(
    transformers_engine, monkeypatch
):
    """The sharing threshold is an engine option (`scoring_min_shared_prefix`): off, then on."""
    pairs = [PROMPT + " </think>", OTHER + " </think>"]
    monkeypatch.setattr(transformers_engine, "scoring_min_shared_prefix", 10**9)
    plain = transformers_engine.next_token_logprobs(pairs, [" true", " false"])
    monkeypatch.setattr(
        transformers_engine, "scoring_min_shared_prefix", transformers_engine.min_shared_prefix
    )
    before = transformers_engine.prefix_shared_batches
    shared = transformers_engine.next_token_logprobs(pairs, [" true", " false"])
    assert transformers_engine.prefix_shared_batches == before + 1
    for a, b in zip(plain, shared, strict=True):
        assert a == pytest.approx(b, abs=1e-4)


def test_llamacpp_reuses_the_shared_prefix(llamacpp_engine):
    llamacpp_engine.generate_detailed([PROMPT], 1)
    hits, evaluated = llamacpp_engine.prefix_hits, llamacpp_engine.evaluated_tokens
    llamacpp_engine.generate_detailed([OTHER], 1)
    assert llamacpp_engine.prefix_hits == hits + 1
    assert llamacpp_engine.evaluated_tokens - evaluated < llamacpp_engine.count_tokens(OTHER) / 2


def test_quantized_q4_and_fp32_agree_roughly(llamacpp_engine, transformers_engine):
    """Same weights (transformers dequantizes the Q4_1 GGUF), different arithmetic."""
    q4 = llamacpp_engine.next_token_logprobs([PROMPT, OTHER], [" true", " false"])
    fp32 = transformers_engine.next_token_logprobs([PROMPT, OTHER], [" true", " false"])
    for a, b in zip(q4, fp32, strict=True):
        assert abs(a[" true"] - b[" true"]) < 1.0


def test_factory_choices_and_errors(llamacpp_engine):
    assert choose_engine("gguf") == "llamacpp"
    assert load_engine("smollm2-135m", "llamacpp") is llamacpp_engine  # loaded once, reused
    with pytest.raises(KiragError, match="known: auto, transformers, llamacpp, vllm"):
        choose_engine("gguf", "onnx")
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(KiragError, match=r"pip install 'kirag\[vllm\]'"):
            load_engine("smollm2-135m", "vllm")


def test_gpu_only_options_say_so_on_a_cpu_machine(smollm2_gguf):
    import torch

    from kirag.llm.transformers_engine import TransformersEngine

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(KiragError, match="no CUDA device"):
        TransformersEngine(str(smollm2_gguf), device="cuda")
    with pytest.raises(KiragError, match="unknown quantization"):
        TransformersEngine(str(smollm2_gguf), quantize="awq")


@pytest.mark.slow
def test_int8_dynamic_quantization_runs_and_is_flagged(smollm2_gguf, caplog):
    from kirag.llm.transformers_engine import TransformersEngine

    engine = TransformersEngine(str(smollm2_gguf), quantize="int8")
    assert "accuracy" in caplog.text
    assert engine.generate_detailed([PROMPT], 4)[0].token_ids
    logprobs = engine.next_token_logprobs([PROMPT], [" true", " false"])[0]
    assert all(math.isfinite(v) for v in logprobs.values())


@pytest.mark.slow
def test_a_small_gguf_is_dequantized_once_into_the_cache_with_the_same_numbers(
    monkeypatch, smollm2_gguf
):
    """The transformers engine loads a small GGUF's weights from gguf_to_hf's folder (what vLLM
    loads too), made once in kirag's cache (the suite's: another test's load may have made it);
    it computes what transformers' own GGUF loader computes, which still loads a file over the
    cache's size limit."""
    from kirag.llm import convert
    from kirag.llm.transformers_engine import TransformersEngine

    cached = TransformersEngine(str(smollm2_gguf))
    made = convert.dequantized_folder(smollm2_gguf)
    assert made is not None and (made / "config.json").exists()
    assert made.parent.name == "hf" and not list(made.glob("*.gguf"))
    assert "quantization_config" not in (made / "config.json").read_text()
    stamp = (made / "config.json").stat().st_mtime_ns
    assert convert.dequantized_folder(smollm2_gguf) == made  # found, not made again
    assert (made / "config.json").stat().st_mtime_ns == stamp
    monkeypatch.setattr(convert, "DEQUANTIZED_CACHE_MAX_BYTES", 0)
    assert convert.dequantized_folder(smollm2_gguf) is None
    direct = TransformersEngine(str(smollm2_gguf))  # transformers' GGUF loader, in memory
    a = cached.next_token_logprobs([PROMPT], [" true", " false"])[0]
    b = direct.next_token_logprobs([PROMPT], [" true", " false"])[0]
    assert a == pytest.approx(b, abs=1e-5)


def test_llamacpp_requantizes_a_gguf_once_into_the_cache(
    tmp_path, monkeypatch, smollm2_gguf, llamacpp_engine
):
    """Q4_1 -> Q8_0 through llama.cpp's quantizer: a real GGUF of the new type, made once,
    scoring close to the original; an unknown type is refused by name."""
    from kirag.llm.convert import requantized_gguf
    from kirag.llm.llamacpp_engine import LlamaCppEngine

    monkeypatch.setenv("KIRAG_CACHE_DIR", str(tmp_path))
    engine = LlamaCppEngine(str(smollm2_gguf), context_length=512, quantize="q8_0")
    made = list((tmp_path / "gguf").glob("*.q8_0.gguf"))
    assert len(made) == 1 and made[0].read_bytes()[:4] == b"GGUF"
    assert engine.model_id.endswith(":q8_0") and engine.quantize == "q8_0"
    assert not list((tmp_path / "gguf").glob(".*"))  # no temporary file left behind
    stamp = made[0].stat().st_mtime_ns
    assert requantized_gguf(smollm2_gguf, "q8_0") == made[0]
    assert made[0].stat().st_mtime_ns == stamp  # reused, not made again
    q8 = engine.next_token_logprobs([PROMPT, OTHER], [" true", " false"])
    q4 = llamacpp_engine.next_token_logprobs([PROMPT, OTHER], [" true", " false"])
    for a, b in zip(q8, q4, strict=True):
        assert abs(a[" true"] - b[" true"]) < 1.0
    engine.close()
    with pytest.raises(KiragError, match="unknown GGUF type 'q3_x'"):
        LlamaCppEngine(str(smollm2_gguf), quantize="q3_x")


def test_common_prefix_and_cache_groups():
    from kirag.llm.base import common_prefix, shared_prefix
    from kirag.llm.llamacpp_engine import fit_groups

    assert common_prefix([[1, 2, 3], [1, 2, 4, 5]]) == 2 and common_prefix([[], [1]]) == 0
    assert shared_prefix([[1, 2, 3], [1, 2, 3, 4]]) == 2 and shared_prefix([[1, 2, 3]]) == 0
    assert fit_groups([3, 3, 3, 3, 3], max_items=2, max_cells=10) == [[0, 1], [2, 3], [4]]
    assert fit_groups([6, 5, 12, 1], max_items=8, max_cells=10) == [[0], [1], [2], [3]]


@pytest.fixture(scope="module")
def f16_gguf(smollm2_gguf, tmp_path_factory):
    """The packaged model in f16: no activation quantization, so batching changes its numbers
    only by rounding (Q4/Q8 kernels quantize activations, which amplifies such changes)."""
    pytest.importorskip("llama_cpp")
    from kirag.llm.convert import requantized_gguf

    return requantized_gguf(smollm2_gguf, "f16", tmp_path_factory.mktemp("gguf"))


def test_llamacpp_sequences_side_by_side_match_one_at_a_time(f16_gguf):
    """Packed prompts, a copied shared prefix and batched decoding give the numbers of one
    prompt at a time from an empty cache (to f16 rounding): no token sees another sequence."""
    from kirag.llm.llamacpp_engine import LlamaCppEngine

    prompts = [PROMPT, OTHER, PROMPT.replace("Animal Farm?", "Nineteen Eighty-Four?")]
    together = LlamaCppEngine(str(f16_gguf), context_length=512)
    alone = LlamaCppEngine(str(f16_gguf), context_length=512, reuse_prefix=False)
    try:
        packed = together.next_token_logprobs(prompts, [" true", " false"])
        single = alone.next_token_logprobs(prompts, [" true", " false"])
        assert together.prefix_hits == 0 and together.evaluated_tokens < alone.evaluated_tokens
        for a, b in zip(packed, single, strict=True):
            assert a[" true"] == pytest.approx(b[" true"], abs=0.02)
        batched = together.generate_detailed(prompts, 10)
        sequential = alone.generate_detailed(prompts, 10)
        assert [g.token_ids for g in batched] == [g.token_ids for g in sequential]
    finally:
        together.close()
        alone.close()


def test_llamacpp_in_full_precision_equals_the_transformers_fp32_engine(
    smollm2_gguf, transformers_engine, tmp_path
):
    """f32 weights (the packaged Q4_1 dequantized exactly), an f32 KV cache and flash attention
    off (its CPU kernel moves log-probs by ~5e-3): llama.cpp's batched sequences compute what
    transformers computes in fp32, up to summation order (measured ~1e-5) — the full-precision
    reference for the quantized GGUF types in `kirag bench rerank`."""
    pytest.importorskip("llama_cpp")
    from kirag.llm.convert import requantized_gguf
    from kirag.llm.llamacpp_engine import LlamaCppEngine

    f32 = requantized_gguf(smollm2_gguf, "f32", tmp_path)
    engine = LlamaCppEngine(str(f32), context_length=512, kv_type="f32", flash_attn=False)
    try:
        prompts = [PROMPT, OTHER]
        ours = engine.next_token_logprobs(prompts, [" true", " false"])
        reference = transformers_engine.next_token_logprobs(prompts, [" true", " false"])
        for a, b in zip(ours, reference, strict=True):
            assert a[" true"] == pytest.approx(b[" true"], abs=1e-4)
            assert a[" false"] == pytest.approx(b[" false"], abs=1e-4)
        ids = [g.token_ids for g in engine.generate_detailed(prompts, 8)]
        assert ids == [g.token_ids for g in transformers_engine.generate_detailed(prompts, 8)]
    finally:
        engine.close()
    with pytest.raises(KiragError, match=r"unknown KV cache type 'q2'.*known: f16, f32"):
        LlamaCppEngine(str(f32), context_length=512, kv_type="q2")
    with pytest.raises(KiragError, match="q8_0 KV cache needs flash_attn=True"):
        LlamaCppEngine(str(f32), context_length=512, kv_type="q8_0", flash_attn=False)


def test_llamacpp_rethink_continues_its_own_sequence(llamacpp_engine):
    """Rank1's forced prompt (prompt + thought + </think>) only evaluates what follows the
    thought: each prompt's sequence stays in the cache after its generation."""
    prompts = [PROMPT, OTHER]
    thoughts = llamacpp_engine.generate_detailed(prompts, 12)
    hits, evaluated = llamacpp_engine.prefix_hits, llamacpp_engine.evaluated_tokens
    forced = [f"{p}{g.text}\n</think>" for p, g in zip(prompts, thoughts, strict=True)]
    llamacpp_engine.next_token_logprobs(forced, [" true"])
    assert llamacpp_engine.prefix_hits == hits + 2
    assert llamacpp_engine.evaluated_tokens - evaluated < 2 * 8


def test_llamacpp_small_cache_splits_groups_and_evicts(smollm2_gguf):
    """More prompts than a 128-cell cache holds at once: groups that fit, the least recently
    used sequences evicted, every prompt answered."""
    from kirag.llm.llamacpp_engine import LlamaCppEngine

    small = LlamaCppEngine(str(smollm2_gguf), context_length=128, kv_cells=128, n_parallel=4)
    prompts = [PROMPT, OTHER, PROMPT + " The", OTHER + " A"]
    try:
        ids = [small._prompt_ids(p) for p in prompts]
        assert len(small._groups(ids, 16)) > 1
        out = small.generate_detailed(prompts, 16)
        assert len(out) == 4 and all(g.token_ids for g in out)
        assert sum(map(len, small._sequences.values())) <= small.kv_cells
        again = small.next_token_logprobs(prompts, [" true"])
        assert len(again) == 4 and all(v[" true"] < 0 for v in again)
    finally:
        small.close()
    with pytest.raises(ValueError, match="at least context_length"):
        LlamaCppEngine(str(smollm2_gguf), context_length=512, kv_cells=256)


def test_llamacpp_interrupted_decode_leaves_an_empty_cache(smollm2_gguf, monkeypatch):
    """A crash in the middle of a batch (here: the second llama_decode raises) must not leave
    sequences whose bookkeeping disagrees with the cache: the next call starts empty and
    scores exactly as a fresh engine does."""
    from kirag.llm.llamacpp_engine import LlamaCppEngine

    engine = LlamaCppEngine(str(smollm2_gguf), context_length=256, n_batch=32)
    prompts = [PROMPT, OTHER]
    try:
        fresh = engine.next_token_logprobs(prompts, [" true"])
        engine.generate_detailed(prompts, 8)
        real, calls = engine._decode_batch, []

        def crash_on_second():
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
            real()

        monkeypatch.setattr(engine, "_decode_batch", crash_on_second)
        with pytest.raises(KeyboardInterrupt):
            engine.next_token_logprobs(["Aristotle taught Alexander. " * 8] * 2, [" true"])
        monkeypatch.setattr(engine, "_decode_batch", real)
        assert engine._sequences == {}
        assert engine.next_token_logprobs(prompts, [" true"]) == fresh
    finally:
        engine.close()
