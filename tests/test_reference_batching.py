"""Reference mode's batched turns on real models: `retrieve_many` (every running question's turn
in one engine call) gives each question exactly what `retrieve` gives it alone when the engine's
batched arithmetic equals its one-at-a-time arithmetic — llama.cpp without prefix reuse, which
evaluates each prompt of a call from an empty cache. The real MiniLM aligner, the slice's triple
index and dense document index, the packaged SmolLM2; small settings keep it fast. (Batched
arithmetic that is not exact — transformers' padded batches, llama.cpp's packed sequences — is
measured by `kirag bench kirag --sections batching`, docs/kirag-reference.md.)"""

from __future__ import annotations

import pytest

QUESTIONS = 2


@pytest.fixture(scope="module")
def retriever(exact_llamacpp_engine, slice_triple_index, minilm):
    from kirag.bench.reference_batching import RecordingEngine
    from kirag.knowledge.demonstrations import (
        ChainDemonstrationSelector,
        DemonstrationEncoder,
        load_pools,
    )
    from kirag.knowledge.triple_index import TripleIndex
    from kirag.rag.aligner import Aligner
    from kirag.rag.reference import ReferenceRetriever, ReferenceSettings

    settings = ReferenceSettings(
        max_turns=2, topk=3, max_choices=6, max_new_tokens=12, num_demonstrations=1
    )
    selector = ChainDemonstrationSelector(
        load_pools().chains("wikipedia"), DemonstrationEncoder(minilm), k=1
    )
    engine = RecordingEngine(exact_llamacpp_engine)  # the real engine; keeps call sizes
    index = TripleIndex(slice_triple_index)
    aligner = Aligner(minilm, family="e5")
    return ReferenceRetriever(index, engine, aligner, selector, settings=settings)


@pytest.fixture(scope="module")
def questions() -> list[str]:
    from kirag.eval.datasets import load_bundled_questions

    return [q.question for q in load_bundled_questions()[:QUESTIONS]]


def test_batched_turns_equal_one_at_a_time_where_the_engine_is_exact(retriever, questions):
    retriever.engine.batches.clear()
    alone = [retriever.retrieve(q) for q in questions]
    assert set(retriever.engine.batches) == {1}
    retriever.engine.batches.clear()
    batched = retriever.retrieve_many(questions)
    assert retriever.engine.batches[0] == len(questions)  # turn 1: one call, every question
    assert sum(retriever.engine.batches) == sum(r.llm_calls for r in alone)
    for a, b in zip(alone, batched, strict=True):
        assert [c.steps for c in a.chains] == [c.steps for c in b.chains]
        assert a.pool_scores == b.pool_scores  # every score, bit for bit
        assert [(h.doc_id, h.score) for h in a.hits] == [(h.doc_id, h.score) for h in b.hits]
        assert [t.decision for t in a.trace] == [t.decision for t in b.trace]
    assert any(step for r in batched for c in r.chains for step in c.steps)  # it generated


def test_difference_causes_separate_the_engine_from_what_follows():
    from kirag.bench.reference_batching import difference_causes

    alone = [("q1 turn 1", "<a; b; c>"), ("q1 turn 2 after <a; b; c>", ""), ("q2 turn 1", "x")]
    batched = [("q1 turn 1", "<a; b; d>"), ("q2 turn 1", "x"), ("q1 turn 2 after <a; b; d>", "")]
    assert difference_causes(alone, batched) == {
        "generations": 3,
        "identical_prompts": 2,
        "identical_prompts_other_output": 1,  # same prompt, another greedy output: the engine
        "prompts_only_batched": 1,  # the turn after it: its prompt holds the other step
    }


def test_bench_refuses_a_reference_run_without_transformers(tmp_path):
    from kirag.bench.reference_batching import bench_batching
    from kirag.errors import KiragError

    with pytest.raises(KiragError, match="add it to --batching-engines"):
        bench_batching([], [], tmp_path, ["llamacpp"], 10, reference=tmp_path)
