"""Classic cross-encoder reranking through sentence-transformers' CrossEncoder (any local path
or hub id; no cross-encoder weights ship offline)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from kirag.rerank.base import BaseReranker, apply_scores, as_hits

from kirag.core.optional import require
from kirag.models import hub_offline, resolve_model
from kirag.types import Document, Hit, Query, passage_contents


class CrossEncoderReranker(BaseReranker):
    """Scores (query, passage) pairs jointly with a CrossEncoder; batched."""

    def __init__(
        self,
        model: str,
        batch_size: int = 32,
        max_length: int | None = 512,
        device: str | None = None,
        trust_remote_code: bool = False,
    ):
        CrossEncoder = require("sentence_transformers", "rerank", "the cross-encoder").CrossEncoder

        spec = resolve_model(model, "cross-encoder")
        context = hub_offline() if spec.is_local else contextlib.nullcontext()
        with context:
            self.model = CrossEncoder(
                spec.location,
                max_length=max_length,
                device=device,
                trust_remote_code=trust_remote_code,
            )
        self.model_id = spec.name
        self.batch_size = batch_size

    def predict(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        scores = self.model.predict(
            [list(p) for p in pairs], batch_size=self.batch_size, show_progress_bar=False
        )
        return [float(s) for s in scores]

    def rerank(
        self,
        query: str | Query,
        candidates: Sequence[Hit] | Sequence[Document],
        k: int | None = None,
    ) -> list[Hit]:
        text = query.text if isinstance(query, Query) else query
        hits = as_hits(candidates)
        return apply_scores(
            hits, self.predict([(text, passage_contents(h.document)) for h in hits]), k=k
        )
