"""`kirag bench gpu-check`: its fidelity metrics against SciPy's, its version report against the
installed packages, and its CPU-runnable run (`--cpu-only`: Rank1 bf16 vs fp32 on the CPU on real
bundled pairs, MiniLM encoding twice) through the real CLI, writing its JSON and run config."""

from __future__ import annotations

import json
import math
from importlib import metadata

import numpy as np
import pytest
from scipy import stats

from kirag.bench.fidelity import kendall_tau, score_agreement, support_recall_at
from kirag.bench.gpu_check import rank1_pairs, version_report


@pytest.mark.parametrize("seed", range(5))
def test_kendall_tau_equals_scipys_tau_b_with_ties(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, 12).astype(float)  # many ties
    b = a + rng.normal(0, 1.5, 12).round()
    assert kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b).statistic, abs=1e-12)


def test_kendall_tau_of_a_constant_list_is_nan():
    assert math.isnan(kendall_tau([0.5, 0.5, 0.5], [0.1, 0.2, 0.3]))
    assert math.isnan(kendall_tau([0.5], [0.1]))


def test_score_agreement_and_support_recall():
    qids = ["q1"] * 3 + ["q2"] * 3
    docs = ["a", "b", "c", "d", "e", "f"]
    reference = [0.9, 0.5, 0.1, 0.2, 0.6, 0.4]
    moved = [0.8, 0.1, 0.5, 0.2, 0.6, 0.4]  # q1's b and c swap
    same = score_agreement(qids, docs, reference, reference, depth=2)
    assert same["p_true_mean_abs_diff"] == 0.0
    assert same["kendall_tau_mean"] == 1.0 and same["top2_overlap"] == 1.0
    found = score_agreement(qids, docs, moved, reference, depth=2)
    assert found["p_true_mean_abs_diff"] == pytest.approx(0.9 / 6)
    assert found["p_true_max_abs_diff"] == pytest.approx(0.4)
    assert found["kendall_tau_mean"] == pytest.approx((1 / 3 + 1) / 2)
    assert found["top2_overlap"] == pytest.approx((0.5 + 1) / 2)
    assert found["same_first"] == 1.0
    gold = {"q1": ["c"], "q2": ["d", "e"]}
    assert support_recall_at(qids, docs, moved, gold, 2) == pytest.approx((1 + 0.5) / 2)


def test_version_report_reads_kirag_ranges_and_installed_versions():
    report = version_report(("torch", "transformers", "no-such-distribution"))
    rows = report["distributions"]
    assert rows["torch"]["installed"] == metadata.version("torch")
    assert any(">=" in r for r in rows["transformers"]["kirag_ranges"])
    assert rows["torch"]["admitted"] and rows["transformers"]["admitted"]  # this venv is pinned
    assert report["outside"] == []
    assert rows["no-such-distribution"]["installed"] is None


def test_rank1_pairs_put_each_questions_support_first():
    from kirag.eval.datasets import load_bundled_questions

    pairs, gold = rank1_pairs(3, 4)
    questions = load_bundled_questions()[:3]
    assert len(pairs) == 12 and set(gold) == {q.id for q in questions}
    for q in questions:
        mine = [p for p in pairs if p[0] == q.id]
        assert [p[2] for p in mine[: len(q.gold_doc_ids)]] == q.gold_doc_ids
        assert all(p[3] for p in mine)  # the passage texts were found in the bundled corpus


@pytest.mark.slow
def test_cpu_only_gpu_check_through_the_cli(tmp_path):
    from kirag.cli import main

    output = tmp_path / "gpu-check.json"
    argv = ["bench", "gpu-check", "--cpu-only", "--questions", "2", "--per-question", "3"]
    argv += ["--budgets", "0", "--passages", "24", "--output", str(output)]
    assert main(argv) == 0
    results = json.loads(output.read_text())
    assert (tmp_path / "gpu-check.json.config.json").is_file()
    assert results["mode"] == "cpu-only" and results["versions"]["outside"] == []
    rank1 = results["rank1"]
    assert rank1["status"] == "ran", rank1.get("error")
    reference = rank1["cpu/float32"]["budget_0"]
    assert reference["p_true_mean_abs_diff"] == 0.0 and reference["pairs"] == 6
    bf16 = rank1["cpu/bfloat16"]["budget_0"]
    # bf16 moves P(true) a little on this model (whose P(true) lies within 0.02-0.2)
    assert 0.0 <= bf16["p_true_mean_abs_diff"] < 0.05
    assert 0.0 <= bf16["top10_overlap"] <= 1.0 and bf16["queries"] == 2
    encoding = results["encoding"]
    assert encoding["status"] == "ran", encoding.get("error")
    again = encoding["cpu/float32"]
    assert again["cosine_min"] > 0.99999 and again["top10_overlap"] == 1.0
