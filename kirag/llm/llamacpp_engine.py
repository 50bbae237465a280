"""The llama.cpp engine (the `llamacpp` extra): GGUF models, quantized (Q4/Q5/Q8), the fast CPU
path. Greedy decoding reads the last position's logits with `llama_get_logits_ith(ctx, -1)`
(llama-cpp-python keeps `scores` empty unless logits_all=True). Consecutive prompts reuse the
KV cache of their longest common prefix, so prompts sharing an instruction + query prefix only
evaluate their passage. llama.cpp's arithmetic depends slightly on how a prompt is split into
evaluation batches (P(true) moves by ~1e-3), so `reuse_prefix=False` trades that speed for
bit-identical results whatever was evaluated before."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kirag.llm.base import (
    Generation,
    chat_prompt_fallback,
    cut_at_stop,
    log_softmax_top,
    single_token_id,
)
from kirag.optional import require

log = logging.getLogger(__name__)


class LlamaCppEngine:
    """llama-cpp-python on a GGUF file."""

    name = "llamacpp"

    def __init__(
        self,
        model_path: str,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        seed: int = 42,
        reuse_prefix: bool = True,
        quantize: str | None = None,
        model_id: str | None = None,
    ):
        llama_cpp = require("llama_cpp", "llamacpp", "the llama.cpp engine")
        if quantize:
            # another GGUF weight type (e.g. q4_0: llama.cpp's fastest CPU prompt kernels),
            # requantized once into kirag's cache
            from kirag.llm.convert import requantized_gguf

            model_path = str(requantized_gguf(model_path, quantize))
            model_id = f"{model_id or Path(model_path).name}:{quantize.lower()}"
        self._llama_cpp = llama_cpp
        # llama-cpp-python decodes on half the cores by default; all of them decode 1.6x faster
        # here (SmolLM2-135M on 2 cores: 91 vs 58 tokens/s)
        n_threads = n_threads or os.cpu_count() or 1
        self.llm = llama_cpp.Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_batch=n_batch,
            seed=seed,
            logits_all=False,
            verbose=False,
        )
        self.model_id = model_id or str(model_path)
        self.quantize = quantize.lower() if quantize else None
        self.context_length = n_ctx
        self.n_vocab = self.llm.n_vocab()
        self.eos = self.llm.token_eos()
        self.reuse_prefix = reuse_prefix
        self.prefix_hits = 0
        self.evaluated_tokens = 0
        self._template = None
        metadata = getattr(self.llm, "metadata", {}) or {}
        if "tokenizer.chat_template" in metadata:
            self._template = metadata["tokenizer.chat_template"]

    def close(self) -> None:
        """Free the model now (idempotent)."""
        self.llm.close()

    # ------------------------------------------------------------------ tokens

    def token_ids(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def count_tokens(self, text: str) -> int:
        return len(self.token_ids(text))

    def truncate(self, text: str, max_tokens: int) -> str:
        ids = self.token_ids(text)
        if len(ids) <= max_tokens:
            return text
        return self.llm.detokenize(ids[:max_tokens]).decode("utf-8", "ignore")

    def _prompt_ids(self, prompt: str) -> list[int]:
        return self.llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)

    def apply_chat_template(self, messages: Sequence[dict[str, str]]) -> str:
        if not self._template:
            return chat_prompt_fallback(messages)
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        template = environment.from_string(self._template)
        return template.render(
            messages=list(messages), add_generation_prompt=True, bos_token="", eos_token=""
        )

    # ------------------------------------------------------------------ evaluation

    def _feed(self, tokens: list[int]) -> None:
        """Make the context hold exactly `tokens`, reusing the cached common prefix."""
        llm = self.llm
        cached = list(llm.input_ids[: llm.n_tokens])
        prefix = 0
        for a, b in zip(cached, tokens, strict=False):
            if a != b:
                break
            prefix += 1
        if prefix == len(tokens):
            prefix -= 1  # re-evaluate one token so the logits belong to this prompt
        if self.reuse_prefix and prefix > 0 and llm._ctx.kv_cache_seq_rm(-1, prefix, -1):
            llm.n_tokens = prefix
            self.prefix_hits += 1
        else:
            llm.reset()
            prefix = 0
        self.evaluated_tokens += len(tokens) - prefix
        llm.eval(tokens[prefix:])

    def _last_logits(self) -> np.ndarray:
        pointer = self._llama_cpp.llama_get_logits_ith(self.llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy()

    def _check_fits(self, prompt_ids: list[int], max_tokens: int) -> None:
        if len(prompt_ids) + max_tokens > self.context_length:
            raise ValueError(
                f"prompt of {len(prompt_ids)} tokens + {max_tokens} new tokens exceeds the context of {self.context_length}"
            )

    def _generate_one(self, prompt: str, max_tokens: int, stop: Sequence[str]) -> Generation:
        prompt_ids = self._prompt_ids(prompt)
        self._check_fits(prompt_ids, 0)  # llama.cpp itself only reports "no memory slot"
        max_tokens = max(0, min(max_tokens, self.context_length - len(prompt_ids)))
        self._feed(prompt_ids)
        generated: list[int] = []
        final: dict[int, float] = {}
        finish, found, text = "length", None, ""
        for _ in range(max_tokens):
            logits = self._last_logits()
            token = int(np.argmax(logits))
            final = log_softmax_top(logits, token)
            if token == self.eos:
                finish = "eos"
                break
            generated.append(token)
            text = self.llm.detokenize(generated).decode("utf-8", "ignore")
            if stop:
                cut, found = cut_at_stop(text, stop, max(0, len(text) - max(map(len, stop)) - 8))
                if found is not None:
                    text, finish = cut, "stop"
                    break
            self.llm.eval([token])
        return Generation(text, generated, final, finish, found, len(prompt_ids))

    def generate_detailed(
        self, prompts: Sequence[str], max_tokens: int, stop: Sequence[str] | None = None
    ) -> list[Generation]:
        return [self._generate_one(p, max_tokens, list(stop or ())) for p in prompts]

    def generate(
        self, prompts: Sequence[str], max_tokens: int, stop: Sequence[str] | None = None
    ) -> list[str]:
        return [g.text for g in self.generate_detailed(prompts, max_tokens, stop)]

    def next_token_logprobs(
        self, prompts: Sequence[str], candidates: Sequence[str]
    ) -> list[dict[str, float]]:
        ids = {c: single_token_id(self, c) for c in candidates}
        out = []
        for prompt in prompts:
            self._feed(self._prompt_ids(prompt))
            logits = self._last_logits().astype(np.float64)
            peak = logits.max()
            log_total = peak + np.log(np.exp(logits - peak).sum())
            out.append({c: float(logits[i] - log_total) for c, i in ids.items()})
        return out
