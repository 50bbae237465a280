"""The typed record of one step of a KiRAG reasoning chain, and the one definition of how a
chain's steps travel as JSON (the answers JSONL of `kirag answer --answers`, the server's
answers, the reports): parallel lists `triples`, `documents`, `step_scores` and, where the
triples' own sentences are kept, `sentences`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kirag.knowledge.triples import parse_triples

STEP_DECIMALS = 6  # step scores are rounded so in the JSON (a chain's score too)


@dataclass(frozen=True, slots=True)
class ChainStep:
    """One step of a reasoning chain: the triple taken (`<head; relation; tail>` text), the
    score it was taken with, and its source (document id, the sentence it was read from when
    known). `step` is its number on the chain (1: the first hop)."""

    triple: str
    doc_id: str
    score: float
    step: int
    sentence: str = ""

    def parts(self) -> tuple[str, str, str]:
        """(head, relation, tail) read back from the triple text; a step whose text is not a
        triple (as written by a constructor) is its text as head, with no relation and tail."""
        parsed = parse_triples(self.triple, loose=True)
        return parsed[0] if parsed else (self.triple, "", "")


def chain_steps(chain: Any) -> list[ChainStep]:
    """The steps of a chain: a `Chain` (its triples and step scores), or a chain as its JSON dict
    (`Chain.to_dict()`, with `sentences` where kept). A dict with lists of unequal length gives
    as many steps as the shortest (as a hand-edited file may)."""
    if isinstance(chain, Mapping):
        triples = chain.get("triples", [])
        sentences = chain.get("sentences") or [""] * len(triples)
        rows = zip(
            triples, chain.get("documents", []), chain.get("step_scores", []), sentences,
            strict=False,
        )  # fmt: skip
    else:
        rows = (
            (t.text, t.doc_id, s, t.sentence)
            for t, s in zip(chain.triples, chain.step_scores, strict=True)
        )
    return [
        ChainStep(text, doc_id, score, number, sentence or "")
        for number, (text, doc_id, score, sentence) in enumerate(rows, 1)
    ]


def steps_json(steps: Sequence[ChainStep], sentences: bool = False) -> dict[str, list]:
    """The steps as a chain's JSON keys (`triples`, `documents`, `step_scores` rounded to
    STEP_DECIMALS; `sentences` when asked)."""
    out: dict[str, list] = {
        "triples": [s.triple for s in steps],
        "documents": [s.doc_id for s in steps],
        "step_scores": [round(s.score, STEP_DECIMALS) for s in steps],
    }
    if sentences:
        out["sentences"] = [s.sentence for s in steps]
    return out
