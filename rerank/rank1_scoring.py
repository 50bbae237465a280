"""Rank1's reference behaviour as pure functions (orionw/rank1): the prompt, the stop strings,
P(true) from the final position's log-probabilities, and the "rethink" fallback prompt."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from kirag.errors import UnknownPromptError
from kirag.types import passage_contents

# A passage as Rank1 reads it: "{title} {text}" whenever there is a title field, even an empty
# one, as in the reference; the text alone when there is none (Document.contents, the one rule).
passage_text = passage_contents

# A passage as Rank1 reads it: "{title} {text}" whenever there is a title field, even an empty
# one, as in the reference; the text alone when there is none (Document.contents, the one rule).

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
    """The query as Rank1 sees it, in the reference's order: an instruction is appended after a
    space (the pair stripped; a bare stripped query when the instruction repeats it), then a
    dataset prompt wraps the result at FILL_QUERY_HERE. Nothing else is stripped: five of the
    reference's dataset prompts end in newlines that stay in the prompt."""
    if instruction is not None:
        same = query.strip() == instruction.strip()
        query = query.strip() if same else f"{query} {instruction}".strip()
    if dataset_prompt:
        query = dataset_prompt.replace(FILL_QUERY, query)
    return query


@cache
def _dataset_prompt_file() -> dict[str, Any]:
    path = resources.files("kirag.rerank").joinpath("prompts", "rank1_datasets.json")
    return json.loads(path.read_text("utf-8"))


def dataset_prompt_names() -> list[str]:
    """The reference's per-dataset prompt names (and its alias), as it spells them."""
    data = _dataset_prompt_file()
    return [*data["prompts"], *data["aliases"]]


def dataset_prompt(name: str) -> str:
    """The reference's prompt for a dataset, by name (case-insensitive): "SciFact",
    "BrightRetrieval_leetcode"... As the reference's get_prompt does for a task with subtasks,
    "Task_subtask" without a prompt of its own takes the task's ("BrightRetrieval_biology")."""
    data = _dataset_prompt_file()
    prompts = {k.lower(): v for k, v in data["prompts"].items()}
    prompts |= {k.lower(): prompts[v.lower()] for k, v in data["aliases"].items()}
    key = name.strip().lower()
    if key in prompts:
        return prompts[key]
    task = key.split("_", 1)[0]
    if "_" in key and task in prompts:
        return prompts[task]
    raise UnknownPromptError(
        f"unknown dataset prompt {name!r}; known: {', '.join(dataset_prompt_names())} "
        f"(or a prompt text containing {FILL_QUERY})"
    )


def resolve_dataset_prompt(value: str | None) -> str | None:
    """A dataset prompt given as a name of the reference's prompts or as a prompt text with
    FILL_QUERY_HERE (kept exactly as given)."""
    if value is None or FILL_QUERY in value:
        return value
    return dataset_prompt(value)


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
