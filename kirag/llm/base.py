"""The LLM engine seam: Rank1 scoring, triple extraction, the chain constructor and the reader
all sit on these two calls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class LLMEngine(Protocol):
    """A loaded language model. Prompts are plain strings: callers that want the model's chat
    template format it first with `apply_chat_template`."""

    name: str

    def generate(
        self, prompts: Sequence[str], max_tokens: int, stop: Sequence[str] | None = None
    ) -> list[str]:
        """Greedy continuations of `prompts`, cut before the first stop string."""
        ...

    def next_token_logprobs(
        self, prompts: Sequence[str], candidates: Sequence[str]
    ) -> list[dict[str, float]]:
        """For each prompt, the log-probability of each candidate token as the next token."""
        ...

    def apply_chat_template(self, messages: Sequence[dict[str, str]]) -> str:
        """The prompt string for a chat, using the model's template when it has one."""
        ...
