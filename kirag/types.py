"""Value types shared by every part of kirag: documents, queries and ranked hits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# the Hit.metadata keys under which a reranked hit keeps its first-stage score and rank
FIRST_STAGE_SCORE = "first_stage_score"
FIRST_STAGE_RANK = "first_stage_rank"


@dataclass(slots=True)
class Document:
    """A passage of a corpus. `title` is kept apart from `text` because rerankers and the triple
    extractor use it differently (Rank1 reads "{title} {text}")."""

    id: str
    text: str
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def contents(self) -> str:
        """The one passage text every part reads (BM25, dense, rerankers, Rank1): "{title} {text}"
        whenever there is a title field, even an empty one (then the text keeps a leading space,
        as Rank1's reference reads it; analyzers and tokenizers ignore it), else the text."""
        return self.text if self.title is None else f"{self.title} {self.text}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "text": self.text}
        if self.title is not None:
            out["title"] = self.title
        if self.metadata:
            out["metadata"] = self.metadata
        return out


@dataclass(slots=True)
class Query:
    """A query (topic). `instruction` is an optional task description some rerankers append."""

    id: str
    text: str
    instruction: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Hit:
    """One ranked result. `rank` starts at 1. `metadata` carries what a later stage must not lose,
    e.g. the first-stage score after reranking or the reasoning of a reasoning reranker."""

    doc_id: str
    score: float
    rank: int
    document: Document | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def docid(self) -> str:
        """pyserini's spelling, so code written against pyserini hits keeps working."""
        return self.doc_id


def rank_hits(scored: list[tuple[str, float]], k: int | None = None) -> list[Hit]:
    """Sort (doc_id, score) pairs by score (descending, ties broken by doc id for determinism)
    and number them from 1."""
    ordered = sorted(scored, key=lambda pair: (-pair[1], pair[0]))
    if k is not None:
        ordered = ordered[:k]
    return [Hit(doc_id, float(score), rank) for rank, (doc_id, score) in enumerate(ordered, 1)]


def passage_contents(passage: str | Mapping[str, Any] | Document) -> str:
    """`Document.contents` of a passage given as a string (taken as is), a mapping with `text`
    and an optional `title`, or a Document."""
    if isinstance(passage, str):
        return passage
    if isinstance(passage, Mapping):
        passage = Document("", passage["text"], passage.get("title"))
    return passage.contents
