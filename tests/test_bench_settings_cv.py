"""The cross-validated choice of the offline default's settings: pure logic on fixed inputs."""

from __future__ import annotations

import pytest

from kirag.bench.settings_cv import leave_one_out, setting_name, settings_grid


def _r(r10: float, r5: float = 0.0, r3: float = 0.0) -> dict[int, float]:
    return {3: r3, 5: r5, 10: r10}


def test_grid_keeps_one_first_stage_alone_setting_per_stage_and_orders_simplest_first():
    grid = settings_grid(["rrf", "bm25"], [1, 0], [2, 1], [5])
    assert [setting_name(s) for s in grid] == [
        "rrf alone",
        "rrf + chains x1, 1 turns, beam 5",
        "rrf + chains x1, 2 turns, beam 5",
        "bm25 alone",
        "bm25 + chains x1, 1 turns, beam 5",
        "bm25 + chains x1, 2 turns, beam 5",
    ]


def test_leave_one_out_scores_each_question_with_the_setting_chosen_without_it():
    # setting 0: 0.5 everywhere; setting 1: 1, 0, 1. Leaving q0 out, the others tie (0.5 each):
    # the simpler setting 0 is chosen and q0 scores 0.5; leaving q1 out, setting 1 wins (1.0)
    # and q1 scores 0; leaving q2 out, a tie again: 0.5.
    scores = [[_r(0.5)] * 3, [_r(1.0), _r(0.0), _r(1.0)]]
    recall, chosen = leave_one_out(scores)
    assert recall[10] == pytest.approx((0.5 + 0.0 + 0.5) / 3)
    assert chosen == {0: 2, 1: 1}


def test_leave_one_out_breaks_recall_at_10_ties_on_recall_at_5():
    scores = [[_r(1.0, 0.0)] * 2, [_r(1.0, 0.5)] * 2]
    recall, chosen = leave_one_out(scores)
    assert chosen == {1: 2} and recall[5] == 0.5


def test_the_offline_default_is_the_cross_validated_setting():
    """The aligner mode's settings ship what `kirag bench kirag-cv` chose, as its results file
    records (regenerate both together)."""
    import json
    from pathlib import Path

    from kirag.rag.modes import AlignerModeSettings

    results = Path(__file__).resolve().parents[1] / "benchmarks/results/kirag-settings-cv.json"
    shipped = json.loads(results.read_text())["shipped_setting"]
    default = AlignerModeSettings()
    assert (default.max_turns, default.beam_size) == (shipped["max_turns"], shipped["beam_size"])
    assert default.fusion_weights[:2] == (shipped["chain_weight"], 1.0)


def test_the_offline_first_stage_is_the_one_chosen_on_the_dev_questions():
    """The aligner mode's first stage is the first stage under which `kirag bench kirag --sections
    offline` chose the chains on the 96 dev questions (its results file records the choice)."""
    import json
    from pathlib import Path

    from kirag.bench.offline import STAGE_RETRIEVER
    from kirag.rag.modes import AlignerModeSettings

    results = Path(__file__).resolve().parents[1] / "benchmarks/results/kirag-offline-chains.json"
    chains = json.loads(results.read_text())["offline"]["families"]["chains, untrained aligner"]
    stage = chains["chosen_on_all_dev"].split(",")[0]
    assert AlignerModeSettings().first_stage == STAGE_RETRIEVER[stage]
