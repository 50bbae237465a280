"""The chain constructor: an LLM shown the question, the chain so far and the top candidate
triples reasons ("Thought: ...") and picks the next triple, or says the question is answered.

Parsing is pure and tolerant: a pick is matched to a candidate by its number or by token F1
(>= 0.6, the reference's threshold); "answer is:" ends the chain; anything else is "no pick".
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from kirag.core.answers import token_f1
from kirag.knowledge.triples import Triple, parse_triples
from kirag.llm.base import LLMEngine, chat_generate

# The reference's numbers for a constructor's pick (jyfang6/kirag): a step is matched to the
# candidate triple with the highest token F1 when that is at least MATCH_F1, and the pick gets
# PICK_BONUS added to its score (the aligner and reference loops read them from here).
MATCH_F1 = 0.6
PICK_BONUS = 0.5
_ANSWER = re.compile(r"answer\s+is\s*:?\s*(.+)", re.IGNORECASE)
_NUMBER_PICK = re.compile(r"next\s+triple\s*:?\s*\[?(\d+)\]?(?!\s*[;|])", re.IGNORECASE)


@cache
def load_constructor_prompt() -> dict:
    return json.loads(
        resources.files("kirag.rag")
        .joinpath("prompts", "chain_constructor.json")
        .read_text("utf-8")
    )


@dataclass(slots=True)
class ConstructorDecision:
    """What the constructor said for one chain: the index of the picked candidate (or None),
    an answer when it declared the question answered, and its raw reasoning."""

    pick: int | None
    answer: str | None
    reasoning: str


def chain_text(chain: Sequence[Triple]) -> str:
    return ". ".join(t.text for t in chain) if chain else "none"


def candidates_text(candidates: Sequence[Triple]) -> str:
    return "\n".join(f"{i}. {t.text}" for i, t in enumerate(candidates, 1))


def build_messages(
    question: str, chain: Sequence[Triple], candidates: Sequence[Triple], num_examples: int = 3
) -> list[dict[str, str]]:
    prompt = load_constructor_prompt()
    messages = [{"role": "system", "content": prompt["instruction"]}]
    for example in prompt["examples"][:num_examples]:
        user = prompt["input_template"].format(
            question=example["question"], chain=example["chain"], candidates=example["candidates"]
        )
        messages += [
            {"role": "user", "content": user},
            {"role": "assistant", "content": example["output"]},
        ]
    user = prompt["input_template"].format(
        question=question, chain=chain_text(chain), candidates=candidates_text(candidates)
    )
    messages.append({"role": "user", "content": user})
    return messages


def parse_decision(output: str, candidates: Sequence[Triple]) -> ConstructorDecision:
    """Map the constructor's text to a decision (never raises)."""
    text = output if isinstance(output, str) else ""
    answer_match = _ANSWER.search(text)
    pick_text = text[: answer_match.start()] if answer_match else text
    pick = None
    number = _NUMBER_PICK.search(pick_text)
    if number and 1 <= int(number.group(1)) <= len(candidates):
        pick = int(number.group(1)) - 1
    else:
        best, best_f1 = None, 0.0
        for head, relation, tail in parse_triples(pick_text):
            said = f"{head} {relation} {tail}"
            for index, candidate in enumerate(candidates):
                score = token_f1(said, candidate.sentence_text)
                if score > best_f1:
                    best, best_f1 = index, score
        if best is not None and best_f1 >= MATCH_F1:
            pick = best
    answer = None
    if answer_match:
        answer = answer_match.group(1).strip().splitlines()[0].strip().rstrip(".") or None
    return ConstructorDecision(pick, answer, text.strip())


class ChainConstructor:
    """Asks an LLM engine for the next triple of each chain, all chains in one batch."""

    def __init__(
        self,
        engine: LLMEngine,
        max_tokens: int = 96,
        num_candidates: int = 10,
        num_examples: int = 3,
    ):
        self.engine = engine
        self.max_tokens = max_tokens
        self.num_candidates = num_candidates
        self.num_examples = num_examples
        self.calls = 0

    def decide(
        self,
        question: str,
        chains: Sequence[Sequence[Triple]],
        candidates: Sequence[Sequence[Triple]],
    ) -> list[ConstructorDecision]:
        shown = [list(c[: self.num_candidates]) for c in candidates]
        conversations = [
            build_messages(question, chain, cands, self.num_examples)
            for chain, cands in zip(chains, shown, strict=True)
        ]
        outputs = chat_generate(
            self.engine, conversations, self.max_tokens, stop=["\n\n", "Question:"]
        )
        self.calls += len(conversations)
        return [parse_decision(out, cands) for out, cands in zip(outputs, shown, strict=True)]
