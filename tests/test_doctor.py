"""`kirag doctor`: the inventory, the live sanity run on bundled passages, and the verdicts."""

from __future__ import annotations

import json

import pytest

from kirag.cli import main
from kirag.doctor import Check, run_doctor, verdicts


def test_inventory_without_checks(tmp_path, capsys):
    assert main(["doctor", "--no-checks", "--output", str(tmp_path / "doctor.json")]) == 0
    out = capsys.readouterr().out
    assert "extras:" in out and "smollm2-135m" in out and "minilm" in out
    report = json.loads((tmp_path / "doctor.json").read_text())
    assert report["environment"]["cpus"] >= 1 and "lucene (pyserini + Java 21)" in report["extras"]
    # which llama.cpp CPU backend this machine runs, among those the wheel ships
    llama = report["environment"]["llama_cpp"]
    assert llama["cpu_variant"] in llama["cpu_variants_shipped"]


@pytest.mark.llm
def test_live_sanity_run_and_verdicts():
    report = run_doctor(checks=True)
    names = [c["name"] for c in report["checks"]]
    assert names == [
        "BM25 (bm25s)",
        "dense (MiniLM)",
        "triples (spaCy)",
        "Rank1 (smollm2-135m, budget 0)",
    ]
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    assert any(v.startswith("serves: KiRAG in aligner mode") for v in report["verdicts"])
    assert any("does not serve" in v for v in report["verdicts"])


def test_verdicts_follow_the_checks():
    failed = [Check("BM25 (bm25s)", False, "broken")]
    assert not any("BM25" in v for v in verdicts({"cuda": True}, failed))
    assert any("needs a GPU" in v for v in verdicts({"cuda": False}, failed))
