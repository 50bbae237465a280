"""The transformers engine: HF folders, hub ids and GGUF files (dequantized by transformers' GGUF
loader; a small one once, into kirag's cache: kirag.llm.convert.dequantized_folder), on CPU or
GPU, fp32 / bf16 / fp16, optionally with dynamic int8 quantization of the Linear layers on CPU.

Decoding is a batched greedy loop with a KV cache (left padding, explicit position ids), so stop
strings and the final position's log-probabilities are handled exactly like vLLM does. When all
prompts of a batch share a long prefix (Rank1: instruction + query), the prefix is encoded once
and its KV cache shared by the batch.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

from kirag.core.optional import require
from kirag.errors import KiragError
from kirag.llm.base import (
    Generation,
    HFTokenizerTokens,
    cut_at_stop,
    log_softmax_top,
    shared_prefix,
    single_token_id,
)
from kirag.llm.convert import dequantized_folder
from kirag.models import hub_offline

log = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16", "float16")
MIN_SHARED_PREFIX = 16  # tokens; shorter shared prefixes are not worth a separate pass
# Scoring (one prompt at a time) copies the prefix cache per prompt; for Rank1's ~40-token
# instruction + query prefix that was slower than re-encoding it (measured 0.80x on 60 sample
# pairs), so only long shared prefixes (long per-dataset instructions) are encoded once.
SCORING_MIN_SHARED_PREFIX = 256

# Measured on SmolLM2-135M (2 CPU cores, `kirag bench rerank`, Rank1 on Wikipedia pairs): 1.2-1.75x
# the fp32 pairs/s, but P(true) barely correlates with fp32's (Spearman 0.16 at budget 0; top token
# agrees at 48% of positions). Offered for speed, never as a default.
INT8_WARNING = (
    "dynamic int8 quantization is 1.2-1.75x faster on CPU but loses accuracy on small models "
    "(SmolLM2-135M Rank1 scores: Spearman 0.16 with fp32, nDCG@10 0.24 vs 0.37)"
)


def default_dtype(device: str) -> str:
    """float16 on a GPU (the Rank1 reference runs float16); float32 on the CPU, where float16
    matmuls are slow or missing and float32 is the numerical reference."""
    return "float16" if device.startswith("cuda") else "float32"


class TransformersEngine(HFTokenizerTokens):
    """A causal LM through transformers. `model_path` is an HF folder, a hub id, or a .gguf file."""

    name = "transformers"

    def __init__(
        self,
        model_path: str,
        dtype: str | None = None,
        device: str | None = None,
        quantize: str | None = None,
        trust_remote_code: bool = False,
        local: bool = True,
        model_id: str | None = None,
        context_length: int | None = None,
        min_shared_prefix: int = MIN_SHARED_PREFIX,
        scoring_min_shared_prefix: int = SCORING_MIN_SHARED_PREFIX,
    ):
        torch = require("torch", "rerank", "the transformers engine")
        transformers = require("transformers", "rerank", "the transformers engine")
        AutoModelForCausalLM = transformers.AutoModelForCausalLM
        AutoTokenizer = transformers.AutoTokenizer

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = dtype or default_dtype(self.device)
        if dtype not in DTYPES:
            raise KiragError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPES)}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise KiragError(
                f"device {self.device!r} asked for, but torch sees no CUDA device on this machine"
            )
        if quantize not in (None, "int8"):
            raise KiragError(
                f"unknown quantization {quantize!r} for the transformers engine; known: int8 (CPU only)"
            )
        if quantize == "int8" and self.device != "cpu":
            raise KiragError(
                "dynamic int8 quantization runs on the CPU only; use vLLM with AWQ/GPTQ/FP8 checkpoints on a GPU"
            )
        path = Path(model_path)
        load_args: dict = {"trust_remote_code": trust_remote_code}
        source = model_source = str(model_path)
        model_args = load_args
        if path.suffix.lower() == ".gguf":
            source, load_args = str(path.parent), {**load_args, "gguf_file": path.name}
            # the same fp32 weights, dequantized once into kirag's cache where the file is small;
            # the tokenizer is always the GGUF's (a saved copy tokenizes "\n\n" as one token)
            folder = dequantized_folder(path)
            model_source, model_args = (str(folder), model_args) if folder else (source, load_args)
        context = hub_offline() if local else contextlib.nullcontext()
        with context, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.tokenizer = AutoTokenizer.from_pretrained(source, **load_args)
            self.model = AutoModelForCausalLM.from_pretrained(
                model_source, dtype=getattr(torch, dtype), **model_args
            )
        self.model.to(self.device).eval()
        if quantize == "int8":
            log.warning(INT8_WARNING)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.model = torch.ao.quantization.quantize_dynamic(
                    self.model, {torch.nn.Linear}, dtype=torch.qint8
                )
        self.dtype, self.quantize = dtype, quantize
        self.precision = f"{dtype}+dynamic {quantize}" if quantize else dtype
        self.model_id = model_id or str(model_path)
        config_max = getattr(self.model.config, "max_position_embeddings", None) or 2048
        self.context_length = min(config_max, context_length) if context_length else config_max
        self.eos_ids = _eos_ids(self.model, self.tokenizer)
        self.pad_id = (
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else min(self.eos_ids, default=0)
        )
        self.prefix_shared_batches = 0
        # shortest shared prefix encoded once: for batched generation and for one-at-a-time scoring
        self.min_shared_prefix = min_shared_prefix
        self.scoring_min_shared_prefix = scoring_min_shared_prefix
        # transformers renamed past_key_values -> cache (5.2x); support both spellings
        parameters = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in parameters else "past_key_values"
        self._last_only = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}

    def _forward(self, past=None, **inputs):
        """One forward pass; returns (last-position logits, cache)."""
        out = self.model(**inputs, **{self._cache_arg: past}, use_cache=True, **self._last_only)
        cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        return out.logits[:, -1, :], cache

    # ------------------------------------------------------------------ tokens

    def _prompt_ids(self, prompt: str) -> list[int]:
        return self.tokenizer(prompt, add_special_tokens=True)["input_ids"]

    # ------------------------------------------------------------------ decoding

    def generate_detailed(
        self, prompts: Sequence[str], max_tokens: int, stop: Sequence[str] | None = None
    ) -> list[Generation]:
        if not prompts:
            return []
        ids = [self._prompt_ids(p) for p in prompts]
        # each prompt's generation stops at the context, as in vLLM (not at the batch's longest)
        limits = [max(0, min(max_tokens, self.context_length - len(i))) for i in ids]
        with self.torch.inference_mode():
            return self._decode(ids, limits, list(stop or ()))

    def generate(
        self, prompts: Sequence[str], max_tokens: int, stop: Sequence[str] | None = None
    ) -> list[str]:
        return [g.text for g in self.generate_detailed(prompts, max_tokens, stop)]

    def _first_step(self, ids: list[list[int]]):
        """Run the prompts; return (last-position logits, cache, attention mask, next positions).
        A long prefix shared by all prompts is encoded once and its cache repeated."""
        torch = self.torch
        shared = shared_prefix(ids)
        past, prefix_len = None, 0
        if shared >= self.min_shared_prefix:
            prefix = torch.tensor([ids[0][:shared]], device=self.device)
            _, past = self._forward(input_ids=prefix)
            past.batch_repeat_interleave(len(ids))
            prefix_len = shared
            self.prefix_shared_batches += 1
        suffixes = [i[prefix_len:] for i in ids]
        width = max(len(s) for s in suffixes)
        input_ids = torch.full((len(ids), width), self.pad_id, dtype=torch.long, device=self.device)
        mask = torch.zeros((len(ids), prefix_len + width), dtype=torch.long, device=self.device)
        positions = torch.zeros((len(ids), width), dtype=torch.long, device=self.device)
        mask[:, :prefix_len] = 1
        for row, suffix in enumerate(suffixes):
            input_ids[row, width - len(suffix) :] = torch.tensor(suffix, device=self.device)
            mask[row, prefix_len + width - len(suffix) :] = 1
            positions[row, width - len(suffix) :] = torch.arange(
                prefix_len, prefix_len + len(suffix), device=self.device
            )
        logits, past = self._forward(
            past, input_ids=input_ids, attention_mask=mask, position_ids=positions
        )
        next_positions = torch.tensor([[len(i)] for i in ids], device=self.device)
        return logits, past, mask, next_positions

    def _decode(self, ids: list[list[int]], limits: list[int], stop: list[str]) -> list[Generation]:
        torch = self.torch
        results = [Generation("", [], {}, "length", None, len(i)) for i in ids]
        max_tokens = max(limits)
        if max_tokens == 0:
            return results
        logits, past, mask, positions = self._first_step(ids)
        active = [limit > 0 for limit in limits]
        longest_stop = max(map(len, stop), default=0)
        for _ in range(max_tokens):
            chosen = torch.argmax(logits, dim=-1)
            rows = logits.float().cpu().numpy()
            for row, token in enumerate(chosen.tolist()):
                if not active[row]:
                    continue
                result = results[row]
                result.final_logprobs = log_softmax_top(rows[row], token)
                if token in self.eos_ids:
                    result.finish_reason, active[row] = "eos", False
                    continue
                result.token_ids.append(token)
                text = self.tokenizer.decode(result.token_ids, skip_special_tokens=False)
                if stop:
                    cut, found = cut_at_stop(text, stop, max(0, len(text) - longest_stop - 8))
                    if found is not None:
                        result.text, result.finish_reason, result.stop, active[row] = (
                            cut,
                            "stop",
                            found,
                            False,
                        )
                        continue
                result.text = text
                if len(result.token_ids) >= limits[row]:
                    active[row] = False
            if not any(active):
                break
            mask = torch.cat(
                [mask, torch.ones((len(ids), 1), dtype=mask.dtype, device=self.device)], dim=1
            )
            logits, past = self._forward(
                past, input_ids=chosen[:, None], attention_mask=mask, position_ids=positions
            )
            positions = positions + 1
        return results

    def next_token_logprobs(
        self, prompts: Sequence[str], candidates: Sequence[str]
    ) -> list[dict[str, float]]:
        """Log-probs of `candidates` as the next token. Prompts are run one at a time: padding a
        batch to its longest prompt cost ~3x on Rank1 pairs of mixed length (measured: 0.46 vs
        1.29 pairs/s on the sample; one 4,367-token passage pads the whole batch). A long prefix
        shared by all prompts (`scoring_min_shared_prefix` tokens or more) is encoded once and its cache copied."""
        import copy

        torch = self.torch
        ids = {c: single_token_id(self, c) for c in candidates}
        if not prompts:
            return []
        prompt_ids = [self._prompt_ids(p) for p in prompts]
        shared = shared_prefix(prompt_ids)
        out = []
        with torch.inference_mode():
            prefix_cache = None
            if shared >= self.scoring_min_shared_prefix:
                _, prefix_cache = self._forward(
                    input_ids=torch.tensor([prompt_ids[0][:shared]], device=self.device)
                )
                self.prefix_shared_batches += 1
            else:
                shared = 0
            for tokens in prompt_ids:
                past = copy.deepcopy(prefix_cache) if prefix_cache is not None else None
                suffix = torch.tensor([tokens[shared:]], device=self.device)
                positions = torch.arange(shared, len(tokens), device=self.device)[None, :]
                logits, _ = self._forward(past, input_ids=suffix, position_ids=positions)
                row = torch.log_softmax(logits[0].float(), dim=-1).cpu().numpy()
                out.append({c: float(row[i]) for c, i in ids.items()})
        return out


def _eos_ids(model, tokenizer) -> set[int]:
    eos = (
        getattr(model.generation_config, "eos_token_id", None)
        if getattr(model, "generation_config", None)
        else None
    )
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids
