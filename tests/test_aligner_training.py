"""`kirag train aligner`: the reference's aligner data format, training with
sentence-transformers' trainer on the packaged MiniLM, saving/reloading, resuming, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kirag.cli import main
from kirag.errors import InputError, KiragError
from kirag.rag.aligner import Aligner
from kirag.rag.aligner_training import (
    AlignerTrainer,
    TrainSettings,
    build_rows,
    read_aligner_file,
    reference_query,
)

# facts about people and places: (question, chain of triples, distractor triples)
FACTS = [
    ("Paris", "France", "Seine"),
    ("Berlin", "Germany", "Spree"),
    ("Madrid", "Spain", "Manzanares"),
    ("Rome", "Italy", "Tiber"),
    ("Vienna", "Austria", "Danube"),
    ("London", "United Kingdom", "Thames"),
    ("Prague", "Czech Republic", "Vltava"),
    ("Warsaw", "Poland", "Vistula"),
    ("Budapest", "Hungary", "Danube"),
    ("Lisbon", "Portugal", "Tagus"),
    ("Dublin", "Ireland", "Liffey"),
    ("Cairo", "Egypt", "Nile"),
]


def _record(i: int, city: str, country: str, river: str) -> dict:
    other = FACTS[(i + 1) % len(FACTS)]
    return {
        "id": f"q{i}",
        "question": f"Which river flows through the capital of {country}?",
        "answers": [river],
        "supporting_triples": [
            {"title": country, "text": f"<{country}; capital; {city}>"},
            {"title": city, "text": f"<{city}; river; {river}>"},
        ],
        "hard_negative_triples": {
            country: [{"title": country, "text": f"<{country}; member of; European Union>"}],
            other[0]: [
                {"title": other[0], "text": f"<{other[0]}; river; {other[2]}>"},
                {"title": other[1], "text": f"<{other[1]}; capital; {other[0]}>"},
            ],
        },
    }


@pytest.fixture(scope="module")
def aligner_files(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("aligner-data")
    records = [_record(i, *f) for i, f in enumerate(FACTS)]
    train, dev = root / "train_aligner.json", root / "dev_aligner.json"
    train.write_text(json.dumps(records[:9] * 3, indent=1))
    dev.write_text(json.dumps(records[9:], indent=1))
    return train, dev


def _settings(**kw) -> TrainSettings:
    base = dict(epochs=1, batch_size=4, accumulate=1, num_negatives=3, warmup_ratio=0.1)
    return TrainSettings(**{**base, **kw})


def test_reads_the_reference_format_and_builds_one_row_per_chain_prefix(aligner_files):
    examples = read_aligner_file(aligner_files[0])
    assert len(examples) == 27 and examples[0].chain == [
        "<France; capital; Paris>",
        "<Paris; river; Seine>",
    ]
    rows = build_rows(examples[:1], num_negatives=5, seed=1)
    # hop 0: the question alone; hop 1: question + chain so far, as the reference's dataset
    assert [r.query for r in rows] == [
        "Which river flows through the capital of France?",
        "Which river flows through the capital of France?\nknowledge triples: <France; capital; Paris>.",
    ]
    assert rows[1].positive == "<Paris; river; Seine>"
    assert len(rows[0].negatives) == 5 and set(rows[0].negatives) <= set(examples[0].negatives)
    assert build_rows(examples, 5, seed=1) == build_rows(examples, 5, seed=1)  # seeded


def test_malformed_files_name_file_and_line(tmp_path):
    bad = tmp_path / "train_aligner.json"
    bad.write_text('[\n{"question": "q", "supporting_triples": [{"text": "<a; b; c>"}],\n "hard_negative_triples": {}},\n'
                   '{"question": "q2", "supporting_triples": [{"title": "x"}], "hard_negative_triples": {"k": []}}\n]')  # fmt: skip
    with pytest.raises(InputError, match=r"train_aligner.json:2: no hard negative triples"):
        read_aligner_file(bad)
    bad.write_text('[{"question": "q", "supporting_triples": [{"text": "<a; b; c>"}], "hard_negative_triples": {"k": [{"text": "<d; e; f>"}]}},\n'
                   ' {"question": "q2", "supporting_triples": [{"title": "x"}], "hard_negative_triples": {"k": []}}]')  # fmt: skip
    with pytest.raises(InputError, match=r"train_aligner.json:2: supporting_triples: expected"):
        read_aligner_file(bad)
    bad.write_text('[{"question": "q",\n "supporting_triples": [}]')
    with pytest.raises(InputError, match=r"train_aligner.json:\d+:"):
        read_aligner_file(bad)


@pytest.mark.slow
def test_cli_trains_saves_and_the_result_loads_as_an_aligner_with_new_scores(
    aligner_files, tmp_path, capsys
):
    train, dev = aligner_files
    out = tmp_path / "aligner"
    argv = ["-q", "train", "aligner", "--train", str(train), "--dev", str(dev), "--output", str(out),
            "--epochs", "1", "--batch-size", "4", "--accumulate", "1", "--negatives", "3",
            "--lr", "1e-4", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    assert (out / "modules.json").is_file() and (out / "tokenizer.json").is_file()
    config = json.loads((out / "kirag-config.json").read_text())
    assert config["settings"]["weight_decay"] == 0.01 and config["results"]["train_rows"] == 54
    assert 0 < config["results"]["dev_dev_mrr@4"] <= 1
    assert any((tmp_path / "aligner-checkpoints").glob("checkpoint-*"))
    query = [
        reference_query(
            "Which river flows through the capital of Egypt?", ["<Egypt; capital; Cairo>"]
        )
    ]
    passages = ["<Cairo; river; Nile>", "<Egypt; member of; European Union>"]
    trained, base = Aligner(str(out), device="cpu"), Aligner("minilm", device="cpu")
    new = trained.encode_queries(query) @ trained.encode_passages(passages).T
    old = base.encode_queries(query) @ base.encode_passages(passages).T
    assert not np.allclose(new, old, atol=1e-3)
    # a user-facing error, not a traceback, for a bad file
    bad = tmp_path / "bad.json"
    bad.write_text('[{"question": 3}]')
    assert (
        main(["-q", "train", "aligner", "--train", str(bad), "--output", str(tmp_path / "x")]) == 2
    )
    assert "bad.json:1:" in capsys.readouterr().err


@pytest.mark.slow
def test_resumes_from_its_own_checkpoint(aligner_files, tmp_path):
    examples = read_aligner_file(aligner_files[0])
    rows = build_rows(examples[:8], 3, seed=0)  # 16 rows: 4 steps an epoch
    ckpt = tmp_path / "ckpt"
    first = AlignerTrainer(_settings(save_steps=2), device="cpu", progress=False)
    assert first.train(rows, [], tmp_path / "a", ckpt)["steps"] == 4
    assert (ckpt / "checkpoint-4").is_dir()
    # resumed with nothing left to do (and another seed): no step is run again, same weights
    again = AlignerTrainer(_settings(save_steps=2, seed=7), device="cpu", progress=False)
    assert again.train(rows, [], tmp_path / "b", ckpt, resume=True)["steps"] == 4
    text = ["<Paris; river; Seine>"]
    assert np.array_equal(Aligner(str(tmp_path / "a"), device="cpu").encode_passages(text),
                          Aligner(str(tmp_path / "b"), device="cpu").encode_passages(text))  # fmt: skip
    second = AlignerTrainer(_settings(save_steps=2, epochs=2), device="cpu", progress=False)
    assert second.train(rows, [], tmp_path / "c", ckpt, resume=True)["steps"] == 8
    assert (ckpt / "checkpoint-8").is_dir()
    with pytest.raises(KiragError, match="no checkpoint"):
        first.train(rows, [], tmp_path / "d", tmp_path / "empty", resume=True)


def test_from_questions_builds_silver_chains_from_gold_passages_and_trains(
    tmp_path, slice_triple_index
):
    from kirag.eval.datasets import load_questions

    from kirag.knowledge.triple_index import TripleIndex
    from kirag.rag.aligner_training import silver_examples

    # four bundled questions whose gold passages are in the test slice, plus their pages' other passages
    wanted = {"enwiki-bridge-05", "enwiki-bridge-08", "enwiki-bridge-30", "enwiki-bridge-31"}
    bundled = Path(__file__).parents[1] / "kirag" / "data" / "multihop_enwiki.jsonl"
    lines = [line for line in bundled.read_text().splitlines() if json.loads(line)["id"] in wanted]
    questions = tmp_path / "questions.jsonl"
    questions.write_text("\n".join(lines) + "\n")
    index = slice_triple_index  # the session's triple index of the whole slice
    examples = silver_examples(load_questions(questions), TripleIndex(index))
    assert len(examples) == 4
    by_id = {q.id: q for q in load_questions(questions)}
    tri = TripleIndex(index)
    for ex in examples:
        gold = set(by_id[ex.id].gold_doc_ids)
        gold_texts = {t.text for t in tri.triples(tri.positions_of_documents(gold))}
        assert len(ex.chain) == 2 and set(ex.chain) <= gold_texts
        assert ex.negatives and not set(ex.negatives) & set(ex.chain)
    out = tmp_path / "aligner"
    argv = ["-q", "train", "aligner", "--from-questions", str(questions), "--index", str(index),
            "--output", str(out), "--epochs", "1", "--batch-size", "4", "--accumulate", "1",
            "--negatives", "3", "--dev-fraction", "0.25", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    results = json.loads((out / "kirag-config.json").read_text())["results"]
    assert results["train_rows"] == 6 and results["dev_rows"] == 2
    Aligner(str(out), device="cpu")
    assert main([*argv[:5], "--output", str(tmp_path / "y")]) == 2  # --index is needed
