"""The typed records (a Rank1 judgement, a KiRAG chain step) and the one definition of the keys
they travel under: round trips, and the JSON they write byte for byte as before."""

from __future__ import annotations

import dataclasses
import json

import pytest
from kirag.rerank.base import apply_scores
from kirag.rerank.records import (
    EXPLANATION_KEYS,
    RANK1_KEYS,
    Rank1Judgement,
    explanation_rows,
    rank1_counts,
    write_explanations,
)

from kirag.knowledge.triples import Triple
from kirag.rag.chains import Chain
from kirag.rag.records import ChainStep, chain_steps, steps_json
from kirag.types import Document, Hit

JUDGEMENTS = [
    Rank1Judgement(0.75, "It names the author.", "none", 12),
    Rank1Judgement(0.5, "", "default", 64, truncated=True),
    Rank1Judgement(0.25, "Not about it.", "rethink", 30),
]


def test_a_judgement_is_frozen_and_round_trips_through_metadata_and_the_cache():
    for judgement in JUDGEMENTS:
        assert Rank1Judgement.from_metadata(judgement.to_metadata()) == judgement
        assert Rank1Judgement.from_metadata(judgement.to_record()) == judgement
        assert list(judgement.to_record()) == list(RANK1_KEYS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        JUDGEMENTS[0].p_true = 1.0  # type: ignore[misc]
    assert Rank1Judgement.from_metadata({"first_stage_score": 3.0}) is None


def test_metadata_keys_are_those_every_run_so_far_carries():
    # the dicts rank1.py wrote before the typed record: `truncated` only when True
    assert JUDGEMENTS[0].to_metadata() == {
        "p_true": 0.75, "reasoning": "It names the author.", "fallback": "none",
        "thinking_tokens": 12,
    }  # fmt: skip
    assert list(JUDGEMENTS[1].to_metadata()) == [*RANK1_KEYS]
    assert "thinking_tokens" not in JUDGEMENTS[1].to_metadata(thinking_tokens=False)
    assert ("first_stage_score", "first_stage_rank", *RANK1_KEYS) == EXPLANATION_KEYS


def _reranked() -> dict[str, list[Hit]]:
    hits = [Hit(f"d{i}", 10.0 - i, i, Document(f"d{i}", f"text {i}")) for i in (1, 2, 3)]
    details = [j.to_metadata() for j in JUDGEMENTS]
    return {"q1": apply_scores(hits, [j.p_true for j in JUDGEMENTS], details)}


def test_explanation_rows_are_byte_identical_to_the_former_writer(tmp_path):
    run = _reranked()
    path = tmp_path / "explanations.jsonl"
    write_explanations(run, path)
    # the former writer (kirag/cli/rerank.py `_explanations`), recorded here as the spec
    former = []
    for qid, hits in run.items():
        for hit in hits:
            record = {"qid": qid, "docid": hit.doc_id, "rank": hit.rank, "score": hit.score}
            record.update({k: v for k, v in hit.metadata.items() if k in (
                "p_true", "fallback", "first_stage_rank", "first_stage_score", "reasoning",
                "thinking_tokens", "truncated")})  # fmt: skip
            former.append(json.dumps(record, ensure_ascii=False) + "\n")
    assert path.read_text(encoding="utf-8") == "".join(former)
    rows = list(explanation_rows(run))
    assert [Rank1Judgement.from_metadata(r) for r in rows] == JUDGEMENTS
    assert [r["first_stage_rank"] for r in rows] == [1, 2, 3]


def test_rank1_counts_read_the_judgements_back():
    run = _reranked()
    run["q2"] = [Hit("d9", 1.0, 1)]  # a hit without a judgement counts as "none"
    assert rank1_counts(run) == {
        "fallbacks": {"none": 2, "rethink": 1, "default": 1},
        "truncated_passages": 1,
    }


def _chain() -> Chain:
    first = Triple("Animal Farm", "written by", "George Orwell", "d1", "Animal Farm", 0,
                   "Animal Farm is a novella by George Orwell.")  # fmt: skip
    second = Triple("George Orwell", "born in", "Motihari", "d2", "George Orwell", 1,
                    "Orwell was born in Motihari.")  # fmt: skip
    return Chain().extend(4, first, 0.81234567).extend(9, second, 0.5)


def test_chain_steps_from_a_chain_and_from_its_json_agree():
    chain = _chain()
    steps = chain.records
    assert steps == [
        ChainStep("<Animal Farm; written by; George Orwell>", "d1", 0.81234567, 1,
                  "Animal Farm is a novella by George Orwell."),
        ChainStep("<George Orwell; born in; Motihari>", "d2", 0.5, 2,
                  "Orwell was born in Motihari."),
    ]  # fmt: skip
    assert steps[1].parts() == ("George Orwell", "born in", "Motihari")
    record = chain.to_dict() | steps_json(steps, sentences=True)
    again = chain_steps(json.loads(json.dumps(record)))
    assert again == [dataclasses.replace(s, score=round(s.score, 6)) for s in steps]
    assert chain_steps(chain.to_dict())[0].sentence == ""  # the answers JSONL keeps none


def test_a_chain_writes_the_same_json_as_before():
    chain = _chain()
    # the former Chain.to_dict, recorded here as the spec
    former = {
        "triples": [t.text for t in chain.triples],
        "documents": [t.doc_id for t in chain.triples],
        "step_scores": [round(s, 6) for s in chain.step_scores],
        "score": round(chain.score, 6),
        "finished": chain.finished,
        "answer": chain.answer,
    }
    assert json.dumps(chain.to_dict()) == json.dumps(former)


def test_a_step_that_is_no_triple_keeps_its_text():
    step = ChainStep("Orwell wrote it.", "d1", 0.1, 1)
    assert step.parts() == ("Orwell wrote it.", "", "")
