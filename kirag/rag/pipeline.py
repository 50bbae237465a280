"""KiRAG end to end: `KiRAG(index).retrieve(question)` and `.answer(question)`.

Three modes, chosen explicitly (or "auto": "llm" when a constructor model is given, else
"aligner"):
- "reference" — the algorithm of the paper and its code (jyfang6/kirag), step by step: dense
  documents per turn, aligner top-20 accumulated, the reference's constructor prompt with 5
  adaptive demonstrations and "Thought: " prefill, +0.5 bonuses, 5 turns, documents by their
  best triple, the reference reader (see kirag/rag/reference.py). Constructor default: the
  packaged tiny model; reader default: the constructor's model.
- "aligner" — chains by beam search on the aligner's scores, expanded through the entity graph;
  no LLM in the loop. The offline default: it serves with the embedded models.
- "llm" — kirag's own LLM variant: a constructor LLM picks each next triple from numbered
  candidates (own prompt and examples), over the aligner's beam; documents by RRF.
In "aligner"/"llm" the answer comes from a reader LLM over the top documents when one is
configured, else from the chain (the constructor's stated answer, or the last tail entity).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kirag.core.concurrency import AsyncSearch, off_loop
from kirag.core.settings import as_record
from kirag.errors import KiragError
from kirag.knowledge.triple_index import TripleIndex
from kirag.models import DEFAULT_LLM
from kirag.rag.answering import ANSWER
from kirag.rag.chains import ChainResult, IterativeRetriever
from kirag.rag.modes import mode_of, mode_settings
from kirag.rag.reader import READER
from kirag.types import Hit

Mode = Literal["auto", "aligner", "llm", "reference"]


@dataclass
class Answer:
    """An answer with its evidence: ranked documents, reasoning chains and the per-turn trace."""

    question: str
    answer: str
    hits: list[Hit]
    result: ChainResult
    answered_by: str
    metadata: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        record = {
            "question": self.question,
            "answer": self.answer,
            "answered_by": self.answered_by,
            "documents": [{"id": h.doc_id, "score": round(h.score, 6)} for h in self.hits],
            "chains": [c.to_dict() for c in self.result.chains],
            "llm_calls": self.result.llm_calls + self.metadata.get("reader_calls", 0),
        }
        if self.result.pool_scores is not None:  # reference mode: why a document ranked so
            record["pool_scores"] = self.result.pool_scores
        return record


class KiRAG:
    """Knowledge-triple iterative RAG over a triple index built by `kirag index triples`."""

    def __init__(
        self,
        index: str | Path | TripleIndex,
        mode: Mode = "auto",
        constructor_model: str | None = None,
        reader_model: str | None = None,
        engine: str = "auto",
        aligner=None,  # a model name or trained folder, or a loaded encoder (shared vectors)
        doc_retriever="auto",
        reader_k: int = READER.k,
        reranker=None,
        aligner_tokenizer: str | None = None,
        demonstrations: str | Path | None = None,
        dataset: str = "wikipedia",
        engine_options: dict | None = None,
        settings=None,
        **retriever_options,
    ):
        """`settings`: a mode's settings object (kirag.rag.modes: AlignerModeSettings,
        LLMModeSettings, ReferenceSettings), which also chooses the mode; `retriever_options`:
        any of that mode's settings by name, over its defaults (or over `settings`)."""
        self.index = index if isinstance(index, TripleIndex) else TripleIndex(index)
        # options of the LLM engine (e.g. the openai engine's base_url, concurrency)
        self.engine_options = dict(engine_options or {})
        aligner_family = retriever_options.pop("aligner_family", None)
        demonstration_encoder = retriever_options.pop("demonstration_encoder", None)
        if settings is not None:
            mode = mode_of(settings) if mode == "auto" else mode
            retriever_options = {**as_record(settings), **retriever_options}
        elif mode == "auto":
            mode = "llm" if constructor_model else "aligner"
        self.settings = mode_settings(mode, **retriever_options)
        self.mode = mode
        self.reranker = reranker
        self.reader_k = reader_k
        if mode == "reference":
            self._init_reference(
                constructor_model, reader_model, engine, aligner, aligner_tokenizer,
                demonstrations, dataset, doc_retriever, aligner_family, demonstration_encoder,
            )  # fmt: skip
            return
        if mode == "llm" and not constructor_model:
            raise KiragError(
                f"mode 'llm' needs a constructor model (e.g. constructor_model={DEFAULT_LLM!r})"
            )
        constructor = None
        if mode == "llm":
            from kirag.llm.factory import load_engine
            from kirag.rag.constructor import ChainConstructor

            constructor = ChainConstructor(
                load_engine(constructor_model, engine=engine, **self.engine_options)
            )
        aligner_model = aligner  # a loaded encoder is used as it is (its kept vectors shared)
        if isinstance(aligner, str | Path):
            from kirag.retrieval.dense import Encoder

            aligner_model = Encoder(str(aligner))
        if doc_retriever == "auto":
            doc_retriever = self.settings.first_stage
        self.retriever = IterativeRetriever(
            self.index,
            constructor=constructor,
            aligner=aligner_model,
            doc_retriever=self._doc_retriever(doc_retriever)
            if isinstance(doc_retriever, str)
            else doc_retriever,
            settings=self.settings,
        )
        self.reader = None
        if reader_model:
            from kirag.llm.factory import load_engine
            from kirag.rag.reader import Reader

            self.reader = Reader(load_engine(reader_model, engine=engine, **self.engine_options))

    def _init_reference(
        self,
        constructor_model,
        reader_model,
        engine,
        aligner,
        aligner_tokenizer,
        demonstrations,
        dataset,
        doc_retriever,
        aligner_family: str | None = None,
        demonstration_encoder=None,
    ) -> None:
        """Reference mode: the reference loop, its aligner settings, demonstrations and reader."""
        from kirag.knowledge.demonstrations import (
            ChainDemonstrationSelector,
            DemonstrationEncoder,
            load_pools,
        )
        from kirag.llm.factory import load_engine
        from kirag.rag.aligner import Aligner
        from kirag.rag.reader import ReferenceReader
        from kirag.rag.reference import ReferenceRetriever

        settings = self.settings
        pool = load_pools(demonstrations).chains(dataset)  # before loading models: fail fast
        constructor_engine = load_engine(
            constructor_model or DEFAULT_LLM, engine=engine, **self.engine_options
        )
        aligner_model = Aligner(
            aligner or self.index.manifest["encoder"]["model"],
            tokenizer=aligner_tokenizer,
            family=aligner_family,
        )
        ranker = DemonstrationEncoder(
            demonstration_encoder or self.index.manifest["encoder"]["model"]
        )  # the reference's untrained-E5 settings, not the aligner's
        selector = ChainDemonstrationSelector(pool, ranker, settings.num_demonstrations)
        self.reference_config = {
            "aligner": aligner_model.config(),
            "demonstrations": ranker.config(),
        }
        self.retriever = ReferenceRetriever(
            self.index,
            constructor_engine,
            aligner_model,
            selector,
            doc_retriever=None if doc_retriever == "auto" else doc_retriever,
            settings=settings,
        )
        reader_engine = (
            constructor_engine
            if reader_model in (None, constructor_model)
            else load_engine(reader_model, engine=engine, **self.engine_options)
        )
        self.reader = ReferenceReader(reader_engine)

    def _doc_retriever(self, name: str):
        """A first stage from the document indexes kept inside the triple index folder: one of
        them by name ("bm25", "dense"), or "rrf" — RRF of all of them; "NAME+hop": that first
        stage plus the entity hop (HopSettings' defaults); "NAME+routes": that first stage with
        the entity routes (RouteSettings' defaults, scored by the BM25 index inside)."""
        from kirag.retrieval.hybrid import HybridRetriever

        if name.endswith("+hop"):  # a first stage + the entity hop (kirag.rag.entity_hop)
            from kirag.rag.entity_hop import hop_retriever

            return hop_retriever(self.index, self._doc_retriever(name.removesuffix("+hop")))
        documents = self.index.document_retrievers()
        if name.endswith("+routes"):  # kirag.rag.entity_routes
            from kirag.rag.entity_routes import routes_retriever

            if "bm25" not in documents:
                raise KiragError(f"{self.index.path} has no 'bm25' document index for the routes")
            base = self._doc_retriever(name.removesuffix("+routes"))
            return routes_retriever(documents["bm25"], base)
        if name == "rrf":
            found = list(documents.values())
            if len(found) > 1:
                return HybridRetriever(found, fusion="rrf", depth=50)
            return found[0] if found else None
        if name not in documents:
            raise KiragError(
                f"{self.index.path} has no {name!r} document index; it has: "
                f"{', '.join(documents) or 'none'} (or use 'rrf')"
            )
        return documents[name]

    def retrieve(self, question: str, k: int = ANSWER.k) -> ChainResult:
        result = self.retriever.retrieve(question, k=k)
        if self.reranker is not None and result.hits:
            result.hits = self.reranker.rerank(question, result.hits, k=k)
        return result

    def answer(self, question: str, k: int = ANSWER.k) -> Answer:
        return self.answer_many([question], k=k)[0]

    async def aretrieve(self, question: str, k: int = ANSWER.k) -> ChainResult:
        """`retrieve` off the event loop (one model call at a time per process)."""
        return await off_loop(self.retrieve, question, k)

    async def aanswer(self, question: str, k: int = ANSWER.k) -> Answer:
        """`answer` off the event loop (one model call at a time per process)."""
        return await off_loop(self.answer, question, k)

    def retrieve_many(self, questions: Sequence[str], k: int = ANSWER.k) -> list[ChainResult]:
        """`retrieve` for many questions; reference mode runs their turns as engine batches."""
        if self.mode != "reference":
            return [self.retrieve(q, k=k) for q in questions]
        results = self.retriever.retrieve_many(list(questions), k=k)
        if self.reranker is not None:
            for question, result in zip(questions, results, strict=True):
                if result.hits:
                    result.hits = self.reranker.rerank(question, result.hits, k=k)
        return results

    def answer_many(self, questions: Sequence[str], k: int = ANSWER.k) -> list[Answer]:
        results = self.retrieve_many(questions, k=k)
        if self.reader is not None:
            contexts = [
                [h.document for h in r.hits[: self.reader_k] if h.document is not None]
                for r in results
            ]
            chains = [
                ". ".join(t.text for t in r.best_chain.triples) if r.best_chain else None
                for r in results
            ]
            calls_before = self.reader.calls
            texts = self.reader.answer(list(questions), contexts, chains)
            per_question = (self.reader.calls - calls_before) // max(len(questions), 1)
            return [
                Answer(q, text, r.hits, r, "reader", {"reader_calls": per_question})
                for q, text, r in zip(questions, texts, results, strict=True)
            ]
        return [self._chain_answer(q, r) for q, r in zip(questions, results, strict=True)]

    def _chain_answer(self, question: str, result: ChainResult) -> Answer:
        """Without a reader: the constructor's answer, else (aligner mode) the span of the
        question's answer type in the chain's final step, else the last tail entity."""
        chain = result.best_chain
        if chain is not None and chain.answer:
            return Answer(question, chain.answer, result.hits, result, "constructor")
        if self.mode == "aligner" and chain is not None and chain.triples:
            from kirag.rag.answer_type import answer_type, typed_answer

            if answer_type(question) is not None:
                text = typed_answer(question, chain.triples) or ""
                return Answer(question, text, result.hits, result, "chain-typed")
        return Answer(question, result.answer_candidate or "", result.hits, result, "chain-tail")


class KiRAGRetriever(AsyncSearch):
    """A triple index seen as a document retriever (the Retriever protocol): documents ranked
    by KiRAG's chains. Lets `kirag search` and the evaluation tools treat it like BM25 or dense."""

    runs_model = True  # the chain constructor (LLM modes) and a reranker run inside search

    def __init__(self, index_dir: str | Path, **options):
        self.kirag = KiRAG(index_dir, **options)
        self.docstore = self.kirag.index.docstore

    def search(self, query, k: int = 10, with_documents: bool = False) -> list[Hit]:
        from kirag.retrieval.index_folder import query_text

        text = query_text(query)
        if not text.strip():
            return []
        return self.kirag.retrieve(text, k=k).hits

    def batch_search(
        self, queries, k: int = 10, threads: int = 1, with_documents: bool = False
    ) -> dict[str, list[Hit]]:
        from kirag.core.progress import progress
        from kirag.retrieval.index_folder import query_pairs

        pairs = query_pairs(queries)
        return {
            qid: self.search(text, k)
            for qid, text in progress(pairs, desc="KiRAG chains", unit="q")
        }
