"""The LLM engine seam: Rank1 scoring, triple extraction, the chain constructor and the reader
all sit on these calls. Every engine decodes greedily (deterministic) and stops at stop strings
the way vLLM does: the returned text ends before the stop string, and the final position's
log-probabilities are those of the token that completed it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

TOP_LOGPROBS = 20  # vLLM's logprobs=20, as the Rank1 reference asks for


@dataclass(slots=True)
class Generation:
    """One greedy continuation. `final_logprobs` maps token id -> log-probability at the last
    generated position (the top `TOP_LOGPROBS` plus the chosen token), for scoring decisions
    such as Rank1's " true" / " false"."""

    text: str
    token_ids: list[int] = field(default_factory=list)
    final_logprobs: dict[int, float] = field(default_factory=dict)
    finish_reason: str = "length"  # "stop" (stop string), "eos" or "length"
    stop: str | None = None
    prompt_tokens: int = 0


@runtime_checkable
class LLMEngine(Protocol):
    """A loaded language model. Prompts are plain strings: callers that want the model's chat
    template format them with `apply_chat_template` first. An engine that keeps state between
    calls (llama.cpp's KV cache, vLLM's prefix cache) also offers `reset()`, which forgets it."""

    name: str
    model_id: str
    context_length: int

    def generate(
        self, prompts: Sequence[str], max_tokens: int, stop: Sequence[str] | None = None
    ) -> list[str]:
        """Greedy continuations of `prompts`, cut before the first stop string."""
        ...

    def generate_detailed(
        self, prompts: Sequence[str], max_tokens: int, stop: Sequence[str] | None = None
    ) -> list[Generation]:
        """Like `generate`, with token ids, finish reason and the final position's log-probs."""
        ...

    def next_token_logprobs(
        self, prompts: Sequence[str], candidates: Sequence[str]
    ) -> list[dict[str, float]]:
        """For each prompt, the log-probability of each candidate (a string that is one token,
        e.g. " true") as the next token, under the full next-token distribution."""
        ...

    def apply_chat_template(self, messages: Sequence[dict[str, str]]) -> str:
        """The prompt string for a chat, using the model's template when it has one."""
        ...

    def token_ids(self, text: str) -> list[int]:
        """Token ids of `text` without special tokens."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def truncate(self, text: str, max_tokens: int) -> str:
        """`text` cut to at most `max_tokens` tokens."""
        ...


CONTEXT_MARGIN = 16  # tokens kept free besides a prompt and its generation budget


def room_for_text(engine: LLMEngine, used_tokens: int, what: str) -> int:
    """Tokens left for a variable text (passage, document) once `used_tokens` (prompt around it +
    generation budget) and the margin are taken from the engine's context; `what` names the
    fixed part in the error raised when nothing is left."""
    from kirag.errors import ContextError

    room = engine.context_length - used_tokens - CONTEXT_MARGIN
    if room <= 0:
        raise ContextError(f"{what} leaves no room in a {engine.context_length}-token context")
    return room


def log_softmax_top(logits, chosen: int, k: int = TOP_LOGPROBS) -> dict[int, float]:
    """Top-k token log-probabilities of one position (plus the chosen token) from raw logits
    (a 1-d NumPy array)."""
    import numpy as np

    logits = np.asarray(logits, dtype=np.float64)
    peak = logits.max()
    log_total = peak + math.log(np.exp(logits - peak).sum())
    top = np.argpartition(-logits, min(k, len(logits) - 1))[:k]
    ids = {int(i) for i in top} | {int(chosen)}
    return {i: float(logits[i] - log_total) for i in ids}


def common_prefix(ids: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all the token lists in `ids` share."""
    first = ids[0]
    length = min(len(i) for i in ids)
    for position in range(length):
        token = first[position]
        if any(other[position] != token for other in ids[1:]):
            return position
    return length


def shared_prefix(ids: Sequence[Sequence[int]]) -> int:
    """The prefix several prompts can evaluate once: their common prefix, leaving each prompt at
    least its last token to evaluate itself (0 for a single prompt)."""
    if len(ids) < 2:
        return 0
    return min(common_prefix(ids), min(len(i) for i in ids) - 1)


def cut_at_stop(text: str, stop: Sequence[str], start: int = 0) -> tuple[str, str | None]:
    """`text` up to the earliest stop string found at or after `start` (and that stop string)."""
    best, found = None, None
    for s in stop:
        index = text.find(s, start)
        if index != -1 and (best is None or index < best):
            best, found = index, s
    return (text, None) if best is None else (text[:best], found)


class EngineTokens:
    """The token helpers every engine offers, from two it implements: `token_ids` (text -> ids,
    no special tokens) and `detokenize` (ids -> text)."""

    def token_ids(self, text: str) -> list[int]:
        raise NotImplementedError

    def detokenize(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        return len(self.token_ids(text))

    def truncate(self, text: str, max_tokens: int) -> str:
        """`text` cut to its first `max_tokens` tokens (unchanged when it fits)."""
        ids = self.token_ids(text)
        return text if len(ids) <= max_tokens else self.detokenize(ids[:max_tokens])


class HFTokenizerTokens(EngineTokens):
    """EngineTokens for engines that hold a Hugging Face tokenizer as `self.tokenizer`
    (transformers, vLLM), with the tokenizer's chat template."""

    tokenizer: object

    def token_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids))

    def apply_chat_template(self, messages: Sequence[dict[str, str]]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                list(messages), tokenize=False, add_generation_prompt=True
            )
        return chat_prompt_fallback(messages)


def chat_prompt_fallback(messages: Sequence[dict[str, str]]) -> str:
    """A plain prompt for models without a chat template."""
    parts = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join(parts) + "\n\nAssistant:"


def single_token_id(engine: LLMEngine, text: str) -> int:
    """The id of a string that must be exactly one token for this model (e.g. " true")."""
    from kirag.errors import SettingsError

    ids = engine.token_ids(text)
    if len(ids) != 1:
        raise SettingsError(
            f"{text!r} is {len(ids)} tokens for this model; a candidate must be one token "
            "(choose another model)"
        )
    return ids[0]


def chat_generate(
    engine: LLMEngine,
    conversations: Sequence[Sequence[dict[str, str]]],
    max_tokens: int,
    stop: Sequence[str] | None = None,
    prefills: Sequence[str] | None = None,
) -> list[str]:
    """Greedy replies to chats: through the engine's own chat endpoint when it has one (a served
    model, which applies its chat template itself), else the engine's chat template + generate.
    A prefill starts the assistant's reply (the reply returned is what follows it)."""
    chat = getattr(engine, "generate_chat", None)
    if chat is not None:
        return chat(conversations, max_tokens, stop, prefills)
    prefills = prefills or [""] * len(conversations)
    prompts = [
        engine.apply_chat_template(messages) + prefill
        for messages, prefill in zip(conversations, prefills, strict=True)
    ]
    return engine.generate(prompts, max_tokens=max_tokens, stop=stop)
