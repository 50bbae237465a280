"""What a server process loads once and answers with: a retriever (one index or several
fused), a reranker, a KiRAG pipeline. Plain blocking methods; the app runs them off the event
loop — model calls under the process-wide model lock, index searches concurrently."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kirag.errors import KiragError
from kirag.rag.records import chain_steps
from kirag.report.records import answer_record, kirag_item, store_documents
from kirag.rerank.records import Rank1Judgement
from kirag.types import Document, Hit


class NotLoaded(KiragError):
    """The server was started without the component a request needs."""


@dataclass
class Services:
    """The loaded components (any may be None) and their names for /health."""

    retriever: object | None = None
    reranker: object | None = None
    kirag: object | None = None
    names: dict = field(default_factory=dict)
    _docs_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def search_uses_model(self) -> bool:
        return bool(getattr(self.retriever, "runs_model", False))

    def health(self) -> dict:
        return {
            "status": "ok",
            "search": self.retriever is not None,
            "rerank": self.reranker is not None,
            "answer": self.kirag is not None,
            **self.names,
        }

    def search(self, query: str, k: int) -> list[dict]:
        """The top-k hits with ids, scores, titles and texts."""
        if self.retriever is None:
            raise NotLoaded(
                "this server has no index to search (start it with `kirag serve --index DIR`)"
            )
        hits = self.retriever.search(query, k)
        store = getattr(self.retriever, "docstore", None)
        if store is not None:
            with self._docs_lock:  # one sqlite connection per store, shared by the threads
                store.attach([h for h in hits if h.document is None])
        return [hit_json(h) for h in hits]

    def rerank(self, query: str, texts: Sequence[str], top_n: int | None) -> list[dict]:
        """The texts scored against the query, best first: index (position in `texts`), score,
        and what the reranker explains (P(true), reasoning, fallback)."""
        if self.reranker is None:
            raise NotLoaded(
                "this server has no reranker (start it with `kirag serve --reranker ...`)"
            )
        documents = [Document(str(i), text) for i, text in enumerate(texts)]
        hits = self.reranker.rerank(query, documents, k=top_n)
        out = []
        for hit in hits:
            row = {"index": int(hit.doc_id), "score": float(hit.score)}
            judgement = Rank1Judgement.from_metadata(hit.metadata)
            if judgement is not None:
                row.update(judgement.to_metadata(thinking_tokens=False))
            out.append(row)
        return out

    def answer(self, question: str, k: int, on_turn: Callable[[dict], None] | None = None) -> dict:
        """KiRAG's answer with its chains, step scores, source passages and ranked documents
        (the report's record shape); `on_turn` gets each turn's chains as they are kept.
        Call it holding the model lock."""
        if self.kirag is None:
            raise NotLoaded(
                "this server has no KiRAG index (start it with `kirag serve --kirag TRIPLE_INDEX`)"
            )
        retriever = getattr(self.kirag, "retriever", None)
        documents = store_documents(self.kirag.index.docstore)
        hook = None
        if on_turn is not None and hasattr(retriever, "on_turn"):

            def hook(turn: int, chains) -> None:
                record = {"question": question, "chains": [chain_json(c) for c in chains]}
                item = kirag_item(record, documents)
                on_turn({"turn": turn, "chains": item["chains"]})

            retriever.on_turn = hook
        try:
            answer = self.kirag.answer(question, k=k)
        finally:
            if hook is not None:
                retriever.on_turn = None
        item = kirag_item(answer_record(answer), documents)
        for document, hit in zip(item["documents"], answer.hits, strict=False):
            if hit.document is not None:
                document["title"] = hit.document.title
        return item


def chain_json(chain) -> dict:
    """A chain as its answers-JSONL dict, with each triple's own sentence."""
    out = chain.to_dict()
    out["sentences"] = [step.sentence for step in chain_steps(chain)]
    return out


def hit_json(hit: Hit) -> dict:
    doc = hit.document
    return {
        "id": hit.doc_id,
        "rank": hit.rank,
        "score": float(hit.score),
        "title": doc.title if doc is not None else None,
        "text": doc.text if doc is not None else None,
    }
