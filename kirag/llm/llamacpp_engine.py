"""The llama.cpp engine (the `llamacpp` extra): GGUF models, quantized (Q4/Q5/Q8), the fast CPU
path. Several prompts run side by side as sequences of one unified KV cache, like a small
vLLM: their prompt tokens are packed into shared evaluation batches, greedy decoding advances
every sequence by one token per `llama_decode`, and a prompt reuses the cached tokens of its
longest common prefix — with a sequence kept from an earlier call (Rank1's "rethink" prompt
continues its own thought) or with the other prompts of its batch (a shared instruction + query
is evaluated once and copied). llama.cpp's quantized kernels quantize activations, so how tokens
are batched moves the numbers (Q4_1 SmolLM2, 48 Rank1 pairs with P(true) 0.02-0.13: median 0.004,
max 0.025 from one prompt at a time; f16: ~3e-4), so `reuse_prefix=False`
evaluates one prompt at a time from an empty cache: bit-identical results whatever ran before."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kirag.core.cpus import usable_cpus
from kirag.core.optional import require
from kirag.errors import ContextError, KiragError
from kirag.llm.base import (
    EngineTokens,
    Generation,
    chat_prompt_fallback,
    common_prefix,
    cut_at_stop,
    log_softmax_top,
    shared_prefix,
    single_token_id,
)
from kirag.llm.llamacpp_backends import ensure_backends, running_cpu_variant

log = logging.getLogger(__name__)

KV_TYPES = ("f16", "f32", "bf16", "q8_0")


def fit_groups(sizes: Sequence[int], max_items: int, max_cells: int) -> list[list[int]]:
    """Consecutive indices grouped so that a group has at most `max_items` members whose sizes
    sum to at most `max_cells` (a member bigger than that gets a group of its own)."""
    groups: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index, size in enumerate(sizes):
        if current and (len(current) == max_items or used + size > max_cells):
            groups.append(current)
            current, used = [], 0
        current.append(index)
        used += size
    if current:
        groups.append(current)
    return groups


@dataclass(slots=True)
class _Decoding:
    """One prompt's greedy continuation while its group decodes."""

    seq: int
    limit: int
    generated: list[int] = field(default_factory=list)
    final: dict[int, float] = field(default_factory=dict)
    finish: str = "length"
    stop: str | None = None
    text: str = ""


def _kv_cache_type(llama_cpp, kv_type: str, flash_attn: bool) -> int:
    """The GGML type of a KV cache type name, refused with a clear error before any loading."""
    kv_ggml_type = getattr(llama_cpp, f"GGML_TYPE_{kv_type.upper()}", None)
    if kv_type.lower() not in KV_TYPES or kv_ggml_type is None:
        raise KiragError(
            f"unknown KV cache type {kv_type!r} for the llama.cpp engine; known: "
            f"{', '.join(KV_TYPES)}"
        )
    if kv_type.lower() == "q8_0" and not flash_attn:
        raise KiragError("a q8_0 KV cache needs flash_attn=True in llama.cpp")
    return kv_ggml_type


def _context_params(
    llama_cpp,
    kv_cells: int,
    n_batch: int,
    n_parallel: int,
    n_threads: int | None,
    flash_attn: bool,
    kv_ggml_type: int,
):
    """llama.cpp context parameters: one unified KV cache of `kv_cells` shared by `n_parallel`
    sequences."""
    # llama-cpp-python decodes on half the cores by default; on every CPU it may use it decodes
    # 1.6x faster here (SmolLM2-135M on 2 cores: 91 vs 58 tokens/s)
    n_threads = n_threads or usable_cpus()
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = kv_cells
    params.n_batch = params.n_ubatch = n_batch
    params.n_seq_max = n_parallel
    params.kv_unified = True  # sequences share the cells (and a copied prefix)
    params.n_threads = params.n_threads_batch = n_threads
    # flash attention skips the cells of other sequences (masked); without it every token
    # attends over the whole shared cache: 248 vs 168 prompt tokens/s packing 16 prompts
    params.flash_attn_type = (
        llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        if flash_attn
        else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    )
    # the KV cache's precision (f16: llama.cpp's default; f32: full precision)
    params.type_k = params.type_v = kv_ggml_type
    return params


class LlamaCppEngine(EngineTokens):
    """llama-cpp-python on a GGUF file; `n_parallel` prompts share one KV cache of `kv_cells`
    tokens (default: twice `context_length`, the most one prompt and its generation may take)."""

    name = "llamacpp"

    def __init__(
        self,
        model_path: str,
        context_length: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        seed: int = 42,
        reuse_prefix: bool = True,
        n_parallel: int = 8,
        kv_cells: int | None = None,
        flash_attn: bool = True,
        kv_type: str = "f16",
        quantize: str | None = None,
        model_id: str | None = None,
    ):
        llama_cpp = require("llama_cpp", "llamacpp", "the llama.cpp engine")
        from llama_cpp import _internals
        from llama_cpp._logger import set_verbose

        self.reuse_prefix = reuse_prefix
        # one prompt at a time without reuse: the batching of tokens changes the arithmetic
        self.n_parallel = max(1, n_parallel) if reuse_prefix else 1
        self.kv_cells = kv_cells or (2 * context_length if self.n_parallel > 1 else context_length)
        self.flash_attn = flash_attn
        kv_ggml_type = _kv_cache_type(llama_cpp, kv_type, flash_attn)
        if self.kv_cells < context_length:
            raise ValueError(
                f"kv_cells ({self.kv_cells}) must hold at least context_length ({context_length})"
            )
        if quantize:
            # another GGUF weight type (e.g. q4_0: llama.cpp's fastest CPU prompt kernels),
            # requantized once into kirag's cache
            from kirag.llm.convert import requantized_gguf

            model_path = str(requantized_gguf(model_path, quantize))
            model_id = f"{model_id or Path(model_path).name}:{quantize.lower()}"
        if not Path(model_path).is_file():
            raise FileNotFoundError(f"no GGUF file at {model_path}")
        self._llama_cpp = llama_cpp
        set_verbose(False)
        ensure_backends(llama_cpp)  # the CPU variant this machine runs best (see the module)
        self.cpu_variant = running_cpu_variant()
        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = 0
        self._model = _internals.LlamaModel(
            path_model=str(model_path), params=model_params, verbose=False
        )
        params = _context_params(
            llama_cpp, self.kv_cells, n_batch, self.n_parallel, n_threads, flash_attn, kv_ggml_type
        )
        self._ctx = _internals.LlamaContext(model=self._model, params=params, verbose=False)
        self._memory = llama_cpp.llama_get_memory(self._ctx.ctx)
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self.n_batch = n_batch
        self.seed = seed
        self.model_id = model_id or str(model_path)
        self.quantize = quantize.lower() if quantize else None
        self.kv_type = kv_type.lower()
        self.context_length = context_length
        metadata = self._model.metadata()
        weights = self.quantize or f"gguf file type {metadata.get('general.file_type', '?')}"
        # a `kirag quantize` output says its format and calibration in its own metadata
        self.quantization = metadata.get("kirag.quantization")
        if self.quantization:
            weights = f"{weights} ({self.quantization})"
        # what a cached score depends on besides the model: weights and KV cache precision
        self.precision = f"{weights}, kv {self.kv_type}"
        self.n_vocab = self._model.n_vocab()
        self.eos = self._model.token_eos()
        self.prefix_hits = 0
        self.evaluated_tokens = 0
        self._sequences: dict[int, list[int]] = {}  # sequence id -> tokens held in the cache
        self._last_use: dict[int, int] = {}
        self._group: set[int] = set()  # the sequences of the prompts being evaluated now
        self._clock = 0
        self._template = self._model.metadata().get("tokenizer.chat_template")

    def close(self) -> None:
        """Free the context and the model now (idempotent)."""
        if self._batch is not None:
            self._llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        self._ctx.close()
        self._model.close()

    # ------------------------------------------------------------------ tokens

    def token_ids(self, text: str) -> list[int]:
        return self._model.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self._model.detokenize(list(ids)).decode("utf-8", "ignore")

    def _prompt_ids(self, prompt: str) -> list[int]:
        return self._model.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)

    def apply_chat_template(self, messages: Sequence[dict[str, str]]) -> str:
        if not self._template:
            return chat_prompt_fallback(messages)
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        template = environment.from_string(self._template)
        return template.render(
            messages=list(messages), add_generation_prompt=True, bos_token="", eos_token=""
        )

    # ------------------------------------------------------------------ the KV cache

    def reset(self) -> None:
        """Empty the KV cache and forget every kept sequence: the next call computes exactly
        what it would as the first call of a fresh engine (kept prefixes were evaluated in
        other batches, whose packing moves the quantized arithmetic)."""
        self._llama_cpp.llama_memory_clear(self._memory, True)
        self._sequences.clear()
        self._last_use.clear()
        self._group = set()
        self._clock = 0

    def _drop(self, seq: int, keep: int = 0) -> None:
        """Forget sequence `seq` from position `keep` on."""
        self._llama_cpp.llama_memory_seq_rm(self._memory, seq, keep, -1)
        self._sequences[seq] = self._sequences.get(seq, [])[:keep]

    def _make_room(self, needed: int) -> None:
        """Evict the least recently used sequences outside the current group until `needed`
        more cells fit (a shared prefix counted once per sequence: on the safe side)."""
        idle = sorted((s for s in self._sequences if s not in self._group), key=self._last_use.get)
        while idle and sum(map(len, self._sequences.values())) + needed > self.kv_cells:
            seq = idle.pop(0)
            self._drop(seq)
            del self._sequences[seq]

    def _claim(self, prompts: list[list[int]], reserve: int) -> tuple[list[int], list[int]]:
        """A sequence for each prompt and how many of its tokens it already holds: the kept
        sequences with the longest common prefixes first, then free or least recently used ones."""
        if not self.reuse_prefix:
            self._llama_cpp.llama_memory_clear(self._memory, True)
            self._sequences.clear()
        matches = sorted(
            (
                (common_prefix([tokens, prompt]), j, seq)
                for j, prompt in enumerate(prompts)
                for seq, tokens in self._sequences.items()
            ),
            reverse=True,
        )
        seqs: list[int | None] = [None] * len(prompts)
        kept = [0] * len(prompts)
        for length, j, seq in matches:
            if length and seqs[j] is None and seq not in seqs:
                seqs[j], kept[j] = seq, min(length, len(prompts[j]) - 1)
        for j in range(len(prompts)):
            if seqs[j] is None:
                unused = [s for s in range(self.n_parallel) if s not in seqs]
                free = [s for s in unused if s not in self._sequences]
                seqs[j] = free[0] if free else min(unused, key=self._last_use.get)
        self._clock += 1
        self._group = set(seqs)  # type: ignore[arg-type]
        for seq, keep in zip(seqs, kept, strict=True):
            self._drop(seq, keep)
            self._last_use[seq] = self._clock
            self.prefix_hits += keep > 0
        needed = sum(len(p) - k for p, k in zip(prompts, kept, strict=True)) + reserve
        self._make_room(needed)
        return seqs, kept  # type: ignore[return-value]

    def _share_prefix(self, prompts: list[list[int]], seqs: list[int], kept: list[int]) -> None:
        """Evaluate the prefix all prompts of a group share once and copy it to the others."""
        shared = shared_prefix(prompts)
        if not shared or shared <= min(kept):
            return
        donor = kept.index(max(kept))
        if kept[donor] < shared:
            self._decode([(seqs[donor], prompts[donor][kept[donor] : shared], False)])
            kept[donor] = shared
        for j, seq in enumerate(seqs):
            if kept[j] < shared:
                self._drop(seq)
                self._llama_cpp.llama_memory_seq_cp(self._memory, seqs[donor], seq, 0, shared)
                self._sequences[seq] = list(prompts[j][:shared])
                kept[j] = shared

    def _decode(self, work: list[tuple[int, list[int], bool]]) -> list[np.ndarray | None]:
        """Append each item's tokens to its sequence, packed into batches of `n_batch` tokens;
        the next-token logits after each item that asks for them."""
        llama_cpp, batch = self._llama_cpp, self._batch
        flat = [
            (item, seq, token, len(self._sequences[seq]) + i, want and i == len(tokens) - 1)
            for item, (seq, tokens, want) in enumerate(work)
            for i, token in enumerate(tokens)
        ]
        logits: list[np.ndarray | None] = [None] * len(work)
        try:
            for start in range(0, len(flat), self.n_batch):
                chunk = flat[start : start + self.n_batch]
                batch.n_tokens = len(chunk)
                for i, (_, seq, token, position, want) in enumerate(chunk):
                    batch.token[i], batch.pos[i], batch.logits[i] = token, position, want
                    batch.seq_id[i][0], batch.n_seq_id[i] = seq, 1
                self._decode_batch()
                for i, (item, *_, want) in enumerate(chunk):
                    if want:
                        pointer = llama_cpp.llama_get_logits_ith(self._ctx.ctx, i)
                        logits[item] = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy()
        except BaseException:
            # interrupted halfway: what the cache holds is unknown, so start the next call empty
            self._llama_cpp.llama_memory_clear(self._memory, True)
            self._sequences.clear()
            raise
        for seq, tokens, _ in work:
            self._sequences[seq].extend(tokens)
            self.evaluated_tokens += len(tokens)
        return logits

    def _decode_batch(self) -> None:
        code = self._llama_cpp.llama_decode(self._ctx.ctx, self._batch)
        if code == 1:  # no free cells (fragmented): evict every sequence outside the group
            self._make_room(self.kv_cells + 1)
            code = self._llama_cpp.llama_decode(self._ctx.ctx, self._batch)
        if code != 0:
            raise RuntimeError(
                f"llama_decode failed (code {code}) with {self._batch.n_tokens} tokens in a "
                f"{self.kv_cells}-cell KV cache: lower n_parallel or raise kv_cells"
            )

    def _prefill(self, prompts: list[list[int]], reserve: int = 0) -> list[tuple[int, np.ndarray]]:
        """Each prompt in a sequence of its own, evaluating only the tokens the cache lacks;
        (sequence, next-token logits) per prompt. `reserve` cells are kept for generation."""
        seqs, kept = self._claim(prompts, reserve)
        if self.reuse_prefix:
            self._share_prefix(prompts, seqs, kept)
        logits = self._decode(
            [(seq, p[k:], True) for seq, p, k in zip(seqs, prompts, kept, strict=True)]
        )
        return list(zip(seqs, logits, strict=True))  # type: ignore[arg-type]

    def _groups(self, prompts: list[list[int]], max_tokens: int) -> list[list[int]]:
        # a generation stops at the context, so no prompt takes more cells than that
        sizes = [min(len(p) + max_tokens, self.context_length) for p in prompts]
        return fit_groups(sizes, self.n_parallel, self.kv_cells)

    # ------------------------------------------------------------------ generation

    def _check_fits(self, prompt_ids: list[int], max_tokens: int) -> None:
        if len(prompt_ids) + max_tokens > self.context_length:
            raise ContextError(
                f"prompt of {len(prompt_ids)} tokens + {max_tokens} new tokens exceeds the context of {self.context_length}"
            )

    def _step(self, state: _Decoding, logits: np.ndarray, stop: Sequence[str]) -> bool:
        """Choose the next token greedily; False once `state` is finished."""
        if len(state.generated) >= state.limit:
            return False
        token = int(np.argmax(logits))
        state.final = log_softmax_top(logits, token)
        if token == self.eos:
            state.finish = "eos"
            return False
        state.generated.append(token)
        state.text = self.detokenize(state.generated)
        if stop:
            since = max(0, len(state.text) - max(map(len, stop)) - 8)
            cut, found = cut_at_stop(state.text, stop, since)
            if found is not None:
                state.text, state.finish, state.stop = cut, "stop", found
                return False
        return len(state.generated) < state.limit

    def _generate_group(
        self, prompts: list[list[int]], max_tokens: int, stop: Sequence[str]
    ) -> list[Generation]:
        limits = [max(0, min(max_tokens, self.context_length - len(p))) for p in prompts]
        placed = self._prefill(prompts, reserve=sum(limits))
        states = [_Decoding(seq, limit) for (seq, _), limit in zip(placed, limits, strict=True)]
        logits = [lg for _, lg in placed]
        active = list(range(len(prompts)))
        while active:
            active = [j for j in active if self._step(states[j], logits[j], stop)]
            if active:
                fed = self._decode(
                    [(states[j].seq, states[j].generated[-1:], True) for j in active]
                )
                for j, lg in zip(active, fed, strict=True):
                    logits[j] = lg
        return [
            Generation(s.text, s.generated, s.final, s.finish, s.stop, len(p))
            for s, p in zip(states, prompts, strict=True)
        ]

    def generate_detailed(
        self, prompts: Sequence[str], max_tokens: int, stop: Sequence[str] | None = None
    ) -> list[Generation]:
        ids = [self._prompt_ids(p) for p in prompts]
        for prompt_ids in ids:
            self._check_fits(prompt_ids, 0)  # llama.cpp itself only reports "no memory slot"
        out: list[Generation] = []
        for group in self._groups(ids, max_tokens):
            out.extend(self._generate_group([ids[j] for j in group], max_tokens, list(stop or ())))
        return out

    def generate(
        self, prompts: Sequence[str], max_tokens: int, stop: Sequence[str] | None = None
    ) -> list[str]:
        return [g.text for g in self.generate_detailed(prompts, max_tokens, stop)]

    def next_token_logprobs(
        self, prompts: Sequence[str], candidates: Sequence[str]
    ) -> list[dict[str, float]]:
        ids = {c: single_token_id(self, c) for c in candidates}
        prompt_ids = [self._prompt_ids(p) for p in prompts]
        for one in prompt_ids:
            self._check_fits(one, 0)
        out = []
        for group in self._groups(prompt_ids, 0):
            for _, logits in self._prefill([prompt_ids[j] for j in group]):
                logits = logits.astype(np.float64)
                peak = logits.max()
                log_total = peak + np.log(np.exp(logits - peak).sum())
                out.append({c: float(logits[i] - log_total) for c, i in ids.items()})
        return out
