"""Baselines in KiRAG's harness, so its gain is always measured against them on the same
questions: single-shot retrieval (any Retriever: BM25, dense, hybrid) and a simple iterative
retrieve -> generate -> retrieve loop (the generated text joins the next query)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kirag.core.ranges import COUNT
from kirag.rag.reader import READER, Reader
from kirag.retrieval.base import Retriever
from kirag.types import Hit


@dataclass
class BaselineResult:
    question: str
    hits: list[Hit]
    answer: str = ""
    queries: list[str] = field(default_factory=list)
    llm_calls: int = 0


class SingleShotRAG:
    """Retrieve once for the question; optionally answer with a reader over the top documents."""

    def __init__(
        self, retriever: Retriever, reader: Reader | None = None, reader_k: int = READER.k
    ):
        self.retriever = retriever
        self.reader = reader
        self.reader_k = reader_k

    def run(self, questions: Sequence[str], k: int = 10) -> list[BaselineResult]:
        results = [
            BaselineResult(q, _with_documents(self.retriever, q, k), queries=[q]) for q in questions
        ]
        if self.reader is not None:
            answers = self.reader.answer(
                list(questions), [_docs(r.hits, self.reader_k) for r in results]
            )
            for result, answer in zip(results, answers, strict=True):
                result.answer, result.llm_calls = answer, 1
        return results


class RetrieveReadRetrieve:
    """Retrieve -> read -> retrieve with "question + generated answer" (ITER-RETGEN style). Each
    round's reader sees that round's top documents; the final ranking fuses the rounds' rankings
    with reciprocal-rank fusion, so later rounds can lift second-hop documents into the top."""

    def __init__(
        self, retriever: Retriever, reader: Reader, rounds: int = 2, reader_k: int = READER.k
    ):
        COUNT.check(rounds, "rounds")
        self.retriever = retriever
        self.reader = reader
        self.rounds = rounds
        self.reader_k = reader_k

    def run(self, questions: Sequence[str], k: int = 10) -> list[BaselineResult]:
        from kirag.retrieval.fusion import reciprocal_rank_fusion

        results = [BaselineResult(q, [], queries=[q]) for q in questions]
        rankings: list[list[list[Hit]]] = [[] for _ in questions]
        for round_ in range(self.rounds):
            if round_ > 0:
                for result in results:
                    result.queries.append(f"{result.question} {result.answer}".strip())
            for result, ranks in zip(results, rankings, strict=True):
                ranks.append(_with_documents(self.retriever, result.queries[-1], k))
            answers = self.reader.answer(
                [r.question for r in results],
                [_docs(ranks[-1], self.reader_k) for ranks in rankings],
            )
            for result, answer in zip(results, answers, strict=True):
                result.answer = answer
                result.llm_calls += 1
        for result, ranks in zip(results, rankings, strict=True):
            documents = {h.doc_id: h.document for hits in ranks for h in hits}
            result.hits = reciprocal_rank_fusion(ranks)[:k]
            for hit in result.hits:
                hit.document = documents.get(hit.doc_id)
        return results


def _with_documents(retriever: Retriever, query: str, k: int) -> list[Hit]:
    hits = retriever.search(query, k)
    store = getattr(retriever, "docstore", None)
    if store is not None:
        store.attach(hits)
    return hits


def _docs(hits: Sequence[Hit], k: int):
    return [h.document for h in hits[:k] if h.document is not None]
