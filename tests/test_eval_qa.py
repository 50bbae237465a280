"""QA metrics on cases written from the official HotpotQA evaluation script's rules."""

from __future__ import annotations

import pytest
from kirag.eval.qa_metrics import (
    exact_match,
    f1_score,
    joint_scores,
    normalize_answer,
    support_precision,
    support_recall,
    supporting_fact_scores,
    token_f1_prf,
)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  an  apple a day ", "apple day"),
        ("U.S.A.", "usa"),
        ("Theory of Relativity", "theory of relativity"),  # "the" inside a word stays
        ("Thé", "thé"),
    ],
)
def test_normalize_answer(raw, normalized):
    assert normalize_answer(raw) == normalized


def test_exact_match_and_f1_take_the_best_alias():
    assert exact_match("the Saturn V", ["Saturn V rocket", "Saturn V"]) == 1.0
    assert exact_match("Saturn", ["Saturn V"]) == 0.0
    assert f1_score("Saturn V rocket launch", ["Saturn V", "a Saturn V rocket"]) == pytest.approx(
        2 * 0.75 * 1.0 / 1.75
    )
    assert f1_score("", ["Paris"]) == 0.0
    with pytest.raises(ValueError):
        exact_match("x", [])


def test_yes_no_noanswer_only_score_when_identical():
    assert token_f1_prf("yes", "yes").f1 == 1.0
    assert (
        token_f1_prf("yes it is", "yes").f1 == 0.0
    )  # normalised "yes it is" != "yes" but gold is special
    assert token_f1_prf("no", "no way").f1 == 0.0  # prediction is special and differs
    assert token_f1_prf("noanswer", "no answer").f1 == 0.0


def test_token_f1_precision_recall():
    score = token_f1_prf("Barack Obama president", "president Barack Obama of the US")
    assert (score.precision, score.recall) == (1.0, 3 / 5)
    assert score.f1 == pytest.approx(2 * 1.0 * 0.6 / 1.6)


def test_supporting_facts_and_joint_metrics_follow_update_sp():
    gold = [["Apollo 11", 0], ["Saturn V", 2]]
    exact = supporting_fact_scores([["Saturn V", 2], ["Apollo 11", 0]], gold)
    assert (exact.em, exact.f1, exact.precision, exact.recall) == (1.0, 1.0, 1.0, 1.0)
    half = supporting_fact_scores([["Apollo 11", 0], ["Apollo 11", 1]], gold)
    assert (half.em, half.precision, half.recall, half.f1) == (0.0, 0.5, 0.5, 0.5)
    assert supporting_fact_scores([], gold).f1 == 0.0
    answer = token_f1_prf("Saturn V", "Saturn V")
    joint = joint_scores(answer, 1.0, half)
    assert (joint.em, joint.precision, joint.recall) == (0.0, 0.5, 0.5)
    assert joint.f1 == pytest.approx(0.5)
    assert joint_scores(token_f1_prf("x", "y"), 0.0, exact).f1 == 0.0


def test_support_recall_and_precision():
    ranked = ["d3", "d1", "d9", "d2"]
    assert support_recall(ranked, ["d1", "d2"], 2) == 0.5
    assert support_recall(ranked, ["d1", "d2"], 4) == 1.0
    assert support_precision(ranked, ["d1", "d2"], 4) == 0.5
    with pytest.raises(ValueError):
        support_recall(ranked, [], 3)


def test_2wiki_evidence_normalisation_keeps_articles_and_drops_punctuation():
    from kirag.eval.qa_metrics import evidence_scores, normalize_evidence_text

    assert normalize_evidence_text("The  Mary-Jane!") == "the maryjane"
    gold = [[["The Film", "director", "Bob"]], [["Bob", "mother", "Mary Jane"]]]
    assert evidence_scores([["the film", "director", "bob"]], gold).recall == 0.5
    assert evidence_scores([["film", "director", "bob"]], gold).f1 == 0.0  # articles matter
    assert evidence_scores([["Bob", "mother", "Mary-Jane"]], gold).f1 == 0.0
    assert evidence_scores([], []).em == 1.0 and evidence_scores([], gold).em == 0.0
