"""Typed records of what a reranker says about a hit, and the one definition of the `Hit.metadata`
keys they travel under: the run files, JSONL explanations, framework adapters, the server and
the reports all read and write them through here.

A reranked hit keeps its first-stage score and rank (`FIRST_STAGE_SCORE`, `FIRST_STAGE_RANK`,
see kirag.types); a Rank1 reranker adds its judgement (`Rank1Judgement.to_metadata`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from kirag.types import FIRST_STAGE_RANK, FIRST_STAGE_SCORE, Hit

# how a Rank1 score was obtained: from the final position, by the "rethink" pass, or the default
FALLBACKS = ("none", "rethink", "default")


@dataclass(frozen=True, slots=True)
class Rank1Judgement:
    """Rank1's judgement of one (query, passage) pair: P(true), the reasoning that led to it, the
    fallback used ("none" | "rethink" | "default"), the thinking tokens generated and whether
    the passage was cut to fit the context."""

    p_true: float
    reasoning: str
    fallback: str = "none"
    thinking_tokens: int = 0
    truncated: bool = False

    def to_metadata(self, thinking_tokens: bool = True) -> dict[str, Any]:
        """The judgement as `Hit.metadata` keys (`truncated` only when True, as in every run
        written so far); `thinking_tokens=False` leaves the token count out (the server's
        rerank answer)."""
        out: dict[str, Any] = {
            "p_true": self.p_true,
            "reasoning": self.reasoning,
            "fallback": self.fallback,
        }
        if thinking_tokens:
            out["thinking_tokens"] = self.thinking_tokens
        if self.truncated:
            out["truncated"] = True
        return out

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> Rank1Judgement | None:
        """The judgement a hit's metadata (or an explanations row, or a score-cache record)
        carries; None when it carries none (another reranker, or no reranking)."""
        if "p_true" not in metadata:
            return None
        return cls(
            metadata["p_true"],
            metadata.get("reasoning", ""),
            metadata.get("fallback", "none"),
            metadata.get("thinking_tokens", 0),
            bool(metadata.get("truncated", False)),
        )

    def to_record(self) -> dict[str, Any]:
        """Every field, as the score cache stores it."""
        return asdict(self)


RANK1_KEYS = tuple(f.name for f in fields(Rank1Judgement))
# the keys of an explanations row beside qid, docid, rank and score (`explanation_rows`)
EXPLANATION_KEYS = (FIRST_STAGE_SCORE, FIRST_STAGE_RANK, *RANK1_KEYS)


def explanation_rows(run: Mapping[str, Sequence[Hit]]) -> Iterable[dict[str, Any]]:
    """Each reranked pair with what the reranker said (`kirag rerank --explanations` rows, the
    Rank1 report's input): qid, docid, rank, score, then the first-stage and Rank1 keys the
    hit carries, in the order it carries them."""
    for qid, hits in run.items():
        for hit in hits:
            record = {"qid": qid, "docid": hit.doc_id, "rank": hit.rank, "score": hit.score}
            record.update({k: v for k, v in hit.metadata.items() if k in EXPLANATION_KEYS})
            yield record


def write_explanations(run: Mapping[str, Sequence[Hit]], path: str | Path) -> None:
    """`explanation_rows` as JSONL at `path` (written whole or not at all)."""
    from kirag.core.atomic import atomic_write

    with atomic_write(path) as fh:
        for record in explanation_rows(run):
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def rank1_counts(run: Mapping[str, Sequence[Hit]]) -> dict[str, Any]:
    """The fallbacks used and the passages truncated over a reranked run, read back from its
    hits' judgements (a hit without one counts as "none")."""
    fallbacks = dict.fromkeys(FALLBACKS, 0)
    truncated = 0
    for hits in run.values():
        for hit in hits:
            judgement = Rank1Judgement.from_metadata(hit.metadata)
            fallbacks[judgement.fallback if judgement else "none"] += 1
            truncated += bool(judgement and judgement.truncated)
    return {"fallbacks": fallbacks, "truncated_passages": truncated}
