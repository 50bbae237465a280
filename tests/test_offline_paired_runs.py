"""Paired tests between settings of two offline-bench runs on the same questions."""

import pytest

from kirag.bench.offline import paired_across_runs


def _run(settings: dict, ids=("d1", "d2", "t1", "t2")) -> dict:
    return {
        "offline": {"dev_questions": 2, "per_question": {"ids": list(ids), "settings": settings}}
    }


def test_paired_across_runs_splits_dev_and_test_and_pairs_the_right_settings():
    a = _run({"F | base": [[0, 0], [1, 1], [0, 1], [0, 0]]})
    b = _run({"G | new": [[1, 1], [1, 1], [1, 1], [1, 0]]})
    out = paired_across_runs([a, b], [("F | base", "G | new")])["G | new vs F | base"]
    assert out["dev"]["R@5"]["difference"] == 0.5 and out["dev"]["R@10"]["difference"] == 0.5
    assert out["test"]["R@5"]["difference"] == 1.0 and out["test"]["R@10"]["difference"] == 0.0
    with pytest.raises(ValueError):
        paired_across_runs([a, _run({}, ids=("x", "d2", "t1", "t2"))], [])
