"""Ranking metrics against pytrec_eval called directly, on the real TREC DL and MS MARCO
judgments, for many generated runs (random, perfect, partially correct, with ties)."""

from __future__ import annotations

import random

import pytest
import pytrec_eval
from kirag.eval.metrics import evaluate, msmarco_mrr10, parse_metric
from kirag.eval.significance import compare, paired_t_test, randomization_test

from kirag.errors import InputError
from kirag.io.qrels import read_qrels
from kirag.types import Hit


def _run_from_scores(scores: dict[str, dict[str, float]]) -> dict[str, list[Hit]]:
    return {
        qid: [
            Hit(d, s, r)
            for r, (d, s) in enumerate(sorted(docs.items(), key=lambda x: (-x[1], x[0])), 1)
        ]
        for qid, docs in scores.items()
    }


def generated_runs(qrels, seed: int = 7) -> dict[str, dict[str, dict[str, float]]]:
    """Runs of several kinds over the judged queries (score dicts, trec_eval's input)."""
    rng = random.Random(seed)
    runs: dict[str, dict[str, dict[str, float]]] = {
        "random": {},
        "perfect": {},
        "partial": {},
        "ties": {},
        "sparse": {},
    }
    for qid, judged in qrels.items():
        docs = list(judged)
        fillers = [f"x{qid}-{i}" for i in range(40)]
        pool = docs + fillers
        runs["random"][qid] = {d: rng.random() for d in rng.sample(pool, min(len(pool), 100))}
        runs["perfect"][qid] = {d: float(g) + rng.random() * 0.1 for d, g in judged.items()}
        relevant = [d for d, g in judged.items() if g > 0]
        partial = {d: rng.random() for d in rng.sample(pool, min(len(pool), 60))}
        for d in relevant[: max(1, len(relevant) // 2)]:
            partial[d] = 1.0 + rng.random()
        runs["partial"][qid] = partial
        runs["ties"][qid] = {
            d: float(rng.randint(0, 3)) for d in rng.sample(pool, min(len(pool), 50))
        }
        runs["sparse"][qid] = {d: rng.random() for d in rng.sample(pool, min(len(pool), 3))}
    return runs


PAIRS = [
    # (our metric, pytrec_eval measure)
    ("nDCG@10", "ndcg_cut_10"),
    ("MAP", "map"),
    ("R@100", "recall_100"),
    ("R@1000", "recall_1000"),
    ("P@10", "P_10"),
    ("MRR", "recip_rank"),
    ("nDCG", "ndcg"),
]


@pytest.fixture(scope="module", params=["dl19", "dl20", "devsmall"])
def judged(request, data_dir):
    files = {
        "dl19": "qrels.dl19-passage.txt.gz",
        "dl20": "qrels.dl20-passage.txt.gz",
        "devsmall": "qrels.msmarco-passage.dev-subset.txt.gz",
    }
    qrels = read_qrels(data_dir / files[request.param])
    if request.param == "devsmall":  # 1,500 of the 6,980 queries keep the suite fast
        qrels = dict(list(qrels.items())[:1500])
    return request.param, qrels


def test_metrics_agree_with_pytrec_eval(judged):
    name, qrels = judged
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {m for _, m in PAIRS})
    for kind, scores in generated_runs(qrels).items():
        reference = evaluator.evaluate(scores)
        ours = evaluate(_run_from_scores(scores), qrels, [m for m, _ in PAIRS])
        assert set(ours.per_query) == set(reference)
        for metric, measure in PAIRS:
            for qid, values in reference.items():
                assert ours.per_query[qid][metric] == pytest.approx(values[measure], abs=1e-6), (
                    name,
                    kind,
                    metric,
                    qid,
                )
            mean = sum(v[measure] for v in reference.values()) / len(reference)
            assert ours.aggregate[metric] == pytest.approx(mean, abs=1e-6), (name, kind, metric)


def test_dl_relevance_level_two_matches_pytrec_eval(data_dir):
    qrels = read_qrels(data_dir / "qrels.dl19-passage.txt.gz")
    evaluator = pytrec_eval.RelevanceEvaluator(
        qrels, {"map", "recall_1000", "recip_rank"}, relevance_level=2
    )
    for kind, scores in generated_runs(qrels, seed=11).items():
        reference = evaluator.evaluate(scores)
        ours = evaluate(
            _run_from_scores(scores), qrels, ["MAP", "R@1000", "MRR", "nDCG@10"], rel_level=2
        )
        for metric, measure in (("MAP", "map"), ("R@1000", "recall_1000"), ("MRR", "recip_rank")):
            mean = sum(v[measure] for v in reference.values()) / len(reference)
            assert ours.aggregate[metric] == pytest.approx(mean, abs=1e-6), (kind, metric)
    # nDCG keeps the grades: rel_level does not change it
    plain = evaluate(_run_from_scores(scores), qrels, ["nDCG@10"])
    assert ours.aggregate["nDCG@10"] == pytest.approx(plain.aggregate["nDCG@10"])


def test_mrr_at_10_is_reciprocal_rank_of_the_top_10(judged):
    _, qrels = judged
    scores = generated_runs(qrels)["partial"]
    truncated = {
        q: dict(sorted(d.items(), key=lambda x: (-x[1], tuple(-ord(c) for c in x[0])))[:10])
        for q, d in scores.items()
    }
    reference = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(truncated)
    ours = evaluate(_run_from_scores(scores), qrels, ["MRR@10"])
    for qid, values in reference.items():
        assert ours.per_query[qid]["MRR@10"] == pytest.approx(values["recip_rank"], abs=1e-6)


def test_ties_are_broken_like_trec_eval():
    qrels = {"q": {"a": 1}}
    tied = {"q": [Hit("a", 1.0, 1), Hit("b", 1.0, 2)]}
    # trec_eval orders equal scores by document id, descending: b before a
    assert evaluate(tied, qrels, ["MRR"]).aggregate["MRR"] == pytest.approx(0.5)


def test_official_msmarco_mrr_definition():
    qrels = {"1": {"a": 1}, "2": {"b": 1}, "3": {"c": 1}, "4": {"d": 1}}
    run = {
        # the rank column decides, not the score (trec_eval would put "a" first here)
        "1": [Hit("z", 0.1, 1), Hit("a", 0.9, 2)],
        # a relevant passage at rank 11 does not count
        "2": [Hit(f"n{i}", 1.0 - i / 100, i) for i in range(1, 11)] + [Hit("b", 0.0, 11)],
        "3": [Hit("c", 1.0, 1)],
        # query 4 is judged but missing from the run: not in the denominator (QueriesRanked)
        "9": [Hit("c", 1.0, 1)],  # unjudged query: ignored
    }
    mrr, per_query = msmarco_mrr10(run, qrels)
    assert per_query == {"1": 0.5, "2": 0.0, "3": 1.0}
    assert mrr == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    with pytest.raises(InputError, match="no query of the run has judgments"):
        msmarco_mrr10({"x": [Hit("a", 1, 1)]}, qrels)


def test_metric_names_and_errors():
    assert str(parse_metric("MRR@10")) == "RR@10"
    assert str(parse_metric("MAP", rel_level=2)) == "AP(rel=2)"
    assert str(parse_metric("nDCG@10", rel_level=2)) == "nDCG@10"
    assert str(parse_metric("Recall@100")) == "R@100"
    with pytest.raises(InputError, match="unknown metric"):
        parse_metric("BLEU@4")
    with pytest.raises(InputError, match="ranks document 'a' twice"):
        evaluate({"q": [Hit("a", 1, 1), Hit("a", 0.5, 2)]}, {"q": {"a": 1}}, ["MRR"])


def test_significance_tests():
    a = [0.1, 0.2, 0.3, 0.4, 0.5, 0.2, 0.3, 0.1, 0.4, 0.2] * 3
    b = [x + 0.2 for x in a]
    import numpy as np

    assert paired_t_test(np.array(a), np.array(a)) == 1.0
    assert randomization_test(np.array(a), np.array(b), trials=2000) < 0.01
    noisy = [x + (0.05 if i % 2 else -0.05) for i, x in enumerate(a)]
    assert randomization_test(np.array(a), np.array(noisy), trials=2000) > 0.3
    result = compare("MRR", dict(enumerate(a)), dict(enumerate(b)), trials=500)
    assert (
        result.difference == pytest.approx(0.2) and result.queries == 30 and result.t_test_p < 1e-6
    )
    again = compare("MRR", dict(enumerate(a)), dict(enumerate(b)), trials=500)
    assert again.randomization_p == result.randomization_p  # seeded
