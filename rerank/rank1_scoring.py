"""Rank1's reference behaviour as pure functions (orionw/rank1): the prompt, the stop strings,
P(true) from the final position's log-probabilities, and the "rethink" fallback prompt."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

TRUE_TOKEN = " true"  # with the leading space: the token after "</think>"
FALSE_TOKEN = " false"
STOP_STRINGS = ("</think> true", "</think> false")
END_THINK = "</think>"
DEFAULT_SCORE = 0.5  # the reference's last resort when even the forced answer fails
FILL_QUERY = "FILL_QUERY_HERE"


@cache
def prompt_template() -> str:
    """The exact Rank1 prompt, kept as a data file (rerank/prompts/rank1.txt)."""
    return resources.files("kirag.rerank").joinpath("prompts", "rank1.txt").read_text("utf-8")


def query_with_instruction(
    query: str, instruction: str | None = None, dataset_prompt: str | None = None
) -> str:
    """The query as Rank1 sees it: a dataset prompt with FILL_QUERY_HERE wraps it, and an
    instruction is appended after a space (unless it repeats the query)."""
    if dataset_prompt:
        query = dataset_prompt.replace(FILL_QUERY, query)
    if instruction and instruction.strip() != query.strip():
        query = f"{query} {instruction}".strip()
    return query.strip()


def passage_text(passage: Any) -> str:
    """A passage as Rank1 reads it: "{title} {text}" for documents with a title."""
    if isinstance(passage, str):
        return passage
    if isinstance(passage, Mapping):
        return f"{passage['title']} {passage['text']}" if passage.get("title") else passage["text"]
    title = getattr(passage, "title", None)
    return f"{title} {passage.text}" if title else passage.text


def build_prompt(query: str, passage: str) -> str:
    return prompt_template().format(query=query, passage=passage)


def p_true(logprobs: Mapping[Any, float], true_key: Any, false_key: Any) -> float | None:
    """e^lp(true) / (e^lp(true) + e^lp(false)) when both are present and finite, else None."""
    if true_key not in logprobs or false_key not in logprobs:
        return None
    t, f = logprobs[true_key], logprobs[false_key]
    if not (math.isfinite(t) and math.isfinite(f)):
        return None
    peak = max(t, f)  # stable: shift before exponentiating
    et, ef = math.exp(t - peak), math.exp(f - peak)
    return et / (et + ef)


def clean_for_rethink(reasoning: str) -> str:
    """The reference's clean-up of an unfinished thought: strip, and cut after the last '.',
    '!' or '?' when the text does not already end with one."""
    text = reasoning.rstrip()
    if not text.endswith((".", "!", "?")):
        last = max(text.rfind("."), text.rfind("!"), text.rfind("?"))
        if last != -1:
            text = text[: last + 1]
    return text.strip()


def forced_prompt(prompt: str, reasoning: str) -> str:
    """The prompt that closes the think block so the next token must be the answer:
    "{prompt}\\n{cleaned reasoning}\\n</think>" (budget 0: an empty reasoning)."""
    return f"{prompt}\n{clean_for_rethink(reasoning)}\n{END_THINK}"
