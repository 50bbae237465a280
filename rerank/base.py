"""The reranker seam: rescore candidates of one query, or every query of a run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from kirag.core.interrupts import checkpoint
from kirag.errors import InputError
from kirag.io.docstore import DocStore
from kirag.types import FIRST_STAGE_RANK, FIRST_STAGE_SCORE, Document, Hit, Query


@runtime_checkable
class Reranker(Protocol):
    """Scores replace the first-stage scores; the first-stage score stays in
    `hit.metadata["first_stage_score"]`."""

    def rerank(
        self,
        query: str | Query,
        candidates: Sequence[Hit] | Sequence[Document],
        k: int | None = None,
    ) -> list[Hit]:
        """Rescore `candidates` for `query` and return them reranked (top `k` when given)."""
        ...

    def rerank_run(
        self,
        run: Mapping[str, Sequence[Hit]],
        queries: Mapping[str, Query],
        corpus: DocStore,
        k: int | None = None,
    ) -> dict[str, list[Hit]]:
        """Rerank the top-`k` hits of every query of a run, reading passages from `corpus`."""
        ...


class BaseReranker:
    """Shared behaviour: subclasses implement `rerank`; whole runs, passage lookup and the
    bookkeeping of first-stage scores live here once."""

    def rerank(
        self,
        query: str | Query,
        candidates: Sequence[Hit] | Sequence[Document],
        k: int | None = None,
    ) -> list[Hit]:
        raise NotImplementedError

    async def arerank(
        self,
        query: str | Query,
        candidates: Sequence[Hit] | Sequence[Document],
        k: int | None = None,
    ) -> list[Hit]:
        """`rerank` off the event loop; one model call at a time per process."""
        from kirag.core.concurrency import off_loop

        return await off_loop(self.rerank, query, candidates, k)

    def rerank_run(
        self,
        run: Mapping[str, Sequence[Hit]],
        queries: Mapping[str, Query],
        corpus: DocStore,
        k: int | None = None,
        show_progress: bool = True,
    ) -> dict[str, list[Hit]]:
        """Rerank the top `k` hits of every query of a run, passages read from `corpus`."""
        from kirag.core.progress import progress
        from kirag.errors import InputError

        unknown = [q for q in run if q not in queries]
        if unknown:
            raise InputError(
                f"{len(unknown)} queries of the run are not in the topics (e.g. {unknown[0]!r})"
            )
        out: dict[str, list[Hit]] = {}
        bar = progress(
            total=sum(len(h[:k] if k else h) for h in run.values()),
            desc=f"reranking ({type(self).__name__})",
            unit="pair",
        )
        for qid, hits in run.items():
            checkpoint("rerank:query")
            top = with_documents(hits[:k] if k else hits, corpus, qid)
            out[qid] = self.rerank(queries[qid], top)
            if show_progress:
                bar.update(len(top))
        bar.close()
        return out


def with_documents(hits: Sequence[Hit], corpus: DocStore, qid: str = "") -> list[Hit]:
    """Copies of `hits` with their documents filled from `corpus` (an error names a missing one)."""
    from kirag.errors import InputError

    copies = [Hit(h.doc_id, h.score, h.rank, h.document, dict(h.metadata)) for h in hits]
    unknown = corpus.attach(copies)
    if unknown:
        raise InputError(f"query {qid!r}: document {unknown[0].doc_id!r} is not in the corpus")
    return copies


def apply_scores(
    hits: Sequence[Hit],
    scores: Sequence[float],
    metadata: Sequence[dict] | None = None,
    k: int | None = None,
) -> list[Hit]:
    """New Hits ranked by `scores` (ties keep the first-stage order); the first-stage score and
    rank are kept in metadata, with any per-hit `metadata` added."""
    rescored = []
    for i, (hit, score) in enumerate(zip(hits, scores, strict=True)):
        data = dict(hit.metadata)
        data.setdefault(FIRST_STAGE_SCORE, hit.score)
        data.setdefault(FIRST_STAGE_RANK, hit.rank)
        if metadata is not None:
            data.update(metadata[i])
        rescored.append(Hit(hit.doc_id, float(score), 0, hit.document, data))
    rescored.sort(key=lambda h: (-h.score, h.metadata[FIRST_STAGE_RANK]))
    for rank, hit in enumerate(rescored, 1):
        hit.rank = rank
    return rescored[:k] if k else rescored


def as_hits(candidates: Sequence[Hit] | Sequence[Document]) -> list[Hit]:
    """Hits from Hits or Documents (Documents get rank = position); text must be present."""
    hits = [c if isinstance(c, Hit) else Hit(c.id, 0.0, i, c) for i, c in enumerate(candidates, 1)]
    missing = [h.doc_id for h in hits if h.document is None]
    if missing:
        raise InputError(
            f"hits without their document text cannot be reranked (e.g. {missing[0]!r}); search with with_documents=True"
        )
    return hits
