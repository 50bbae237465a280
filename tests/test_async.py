"""kirag's async entry points (kirag.core.concurrency): `asearch` / `abatch_search`, `arerank`,
`aretrieve` / `aanswer` give what their sync twins give, concurrent calls give what sequential
ones give, the event loop stays free while they run, and the process-wide model lock keeps two
threads out of one engine — checked on the real llama.cpp engine, instrumented."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

pytest.importorskip("pytest_asyncio", reason="pytest-asyncio (dev extra) is not installed")

QUERIES = [
    "Who wrote Animal Farm?",
    "Aristotle's teacher at the Academy",
    "capital of Alabama",
    "Brave New World author",
]


@pytest.fixture(scope="module")
def retrievers(small_triple_index):
    from kirag.retrieval.factory import load_retriever, load_retrievers

    bm25 = load_retriever(small_triple_index / "bm25")
    hybrid = load_retrievers([small_triple_index / "bm25", small_triple_index / "dense"])
    return {"bm25": bm25, "hybrid": hybrid}


@pytest.mark.parametrize("name", ["bm25", "hybrid"])
async def test_asearch_equals_search(retrievers, name):
    retriever = retrievers[name]
    for query in QUERIES:
        assert await retriever.asearch(query, 5) == retriever.search(query, 5)
    queries = {f"q{i}": q for i, q in enumerate(QUERIES)}
    assert await retriever.abatch_search(queries, 5) == retriever.batch_search(queries, 5)
    # concurrent calls (index-only searches run side by side) == sequential ones
    together = await asyncio.gather(*(retriever.asearch(q, 5) for q in QUERIES * 2))
    assert together == [retriever.search(q, 5) for q in QUERIES * 2]


class OverlapRecorder:
    """Counts the threads inside a section at once; `widest` is the most seen together."""

    def __init__(self, hold: float = 0.02):
        self.hold = hold  # seconds spent inside, so overlapping calls would really overlap
        self.active = 0
        self.widest = 0
        self.entries = 0
        self._lock = threading.Lock()

    def __enter__(self):
        with self._lock:
            self.active += 1
            self.entries += 1
            self.widest = max(self.widest, self.active)
        time.sleep(self.hold)

    def __exit__(self, *exc):
        with self._lock:
            self.active -= 1


class InstrumentedEngine:
    """A real engine whose every method call is recorded by an OverlapRecorder."""

    def __init__(self, engine, recorder: OverlapRecorder):
        self._engine = engine
        self._recorder = recorder

    def __getattr__(self, name):
        value = getattr(self._engine, name)
        if not callable(value):
            return value

        def recorded(*args, **kwargs):
            with self._recorder:
                return value(*args, **kwargs)

        return recorded


@pytest.fixture(scope="module")
def passages(enwiki_slice_docs):
    by_id = {d.id: d for d in enwiki_slice_docs}
    return [by_id[i] for i in ("Animal_Farm#0", "Alabama#0")]


async def test_arerank_equals_rerank_and_the_model_lock_serialises(exact_llamacpp_engine, passages):
    from kirag.rerank.rank1 import Rank1Reranker

    recorder = OverlapRecorder()
    engine = InstrumentedEngine(exact_llamacpp_engine, recorder)
    reranker = Rank1Reranker(engine=engine, thinking_budget=0)
    queries = QUERIES[:2]
    sequential = [reranker.rerank(q, passages) for q in queries]
    recorder.widest, entries = 0, recorder.entries
    together = await asyncio.gather(*(reranker.arerank(q, passages) for q in queries))
    assert together == sequential  # the exact engine: bit-identical in any order
    assert recorder.entries > entries + len(queries)  # the engine was really called
    assert recorder.widest == 1  # never two threads inside the engine


async def test_the_recorder_sees_overlap_without_the_lock():
    """The control for the test above: the same recorder, entered from worker threads that do
    not take the model lock (as index-only searches do), records overlapping entries."""
    from kirag.core.concurrency import off_loop

    recorder = OverlapRecorder(hold=0.2)

    def inside():
        with recorder:
            pass

    await asyncio.gather(*(off_loop(inside, uses_model=False) for _ in range(4)))
    assert recorder.widest > 1
    recorder.widest = 0
    await asyncio.gather(*(off_loop(inside) for _ in range(4)))
    assert recorder.widest == 1


async def test_the_event_loop_stays_free_during_a_model_call(exact_llamacpp_engine, passages):
    from kirag.rerank.rank1 import Rank1Reranker

    engine = InstrumentedEngine(exact_llamacpp_engine, OverlapRecorder(hold=0.1))
    reranker = Rank1Reranker(engine=engine, thinking_budget=0)
    ticks = 0
    done = asyncio.Event()

    async def ticker():
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    await reranker.arerank(QUERIES[0], passages)
    done.set()
    await task
    assert ticks >= 5  # the loop ran other work while the model scored (>= 0.1 s inside)


async def test_aanswer_and_aretrieve_equal_their_sync_results(small_triple_index):
    from kirag.rag.pipeline import KiRAG

    pipeline = KiRAG(small_triple_index)
    questions = [
        "Which philosopher did Aristotle study under at Plato's Academy?",
        "Who wrote the novella Animal Farm?",
    ]
    answers = [pipeline.answer(q, k=4) for q in questions]
    concurrent = await asyncio.gather(*(pipeline.aanswer(q, k=4) for q in questions))
    for sync, async_ in zip(answers, concurrent, strict=True):
        assert async_.answer == sync.answer
        assert async_.to_dict() == sync.to_dict()
    result = await pipeline.aretrieve(questions[0], k=4)
    assert [h.doc_id for h in result.hits] == [h.doc_id for h in answers[0].hits]
    assert [t.text for t in result.best_chain.triples] == [
        t.text for t in answers[0].result.best_chain.triples
    ]
