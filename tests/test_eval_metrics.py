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


def test_judged_queries_missing_from_the_run(judged):
    """Missing judged queries count 0 by default (trec_eval -c: pytrec_eval's sum over all judged
    queries) or are left out with missing="skip" (plain trec_eval: pytrec_eval's mean)."""
    _, qrels = judged
    rng = random.Random(17)
    scores = generated_runs(qrels, seed=19)["partial"]
    kept = {q: d for q, d in scores.items() if rng.random() < 0.6}
    kept["not-judged"] = {"d": 1.0}
    measures = {"ndcg_cut_10", "map", "recall_100"}
    reference = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(kept)
    names = ["nDCG@10", "MAP", "R@100"]
    zero, skip = evaluate(kept, qrels, names), evaluate(kept, qrels, names, missing="skip")
    assert zero.queries == len(qrels) and skip.queries == len(reference) < len(qrels)
    assert zero.unjudged_queries == ["not-judged"]
    assert sorted(zero.missing_queries) == sorted(set(qrels) - set(kept))
    for name, measure in zip(names, ("ndcg_cut_10", "map", "recall_100"), strict=True):
        total = sum(v[measure] for v in reference.values())
        assert zero.aggregate[name] == pytest.approx(total / len(qrels), abs=1e-9)
        assert skip.aggregate[name] == pytest.approx(total / len(reference), abs=1e-9)
        assert all(zero.per_query[q][name] == 0.0 for q in zero.missing_queries)


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
    """RR@10 = trec_eval's recip_rank when the first relevant document is in the top 10 (RR >=
    0.1), else 0 — ties included, which trec_eval breaks by document id, descending."""
    _, qrels = judged
    for rel_level in (1, 2):
        evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}, relevance_level=rel_level)
        for kind, scores in generated_runs(qrels, seed=13).items():
            reference = evaluator.evaluate(scores)
            ours = evaluate(scores, qrels, ["MRR@10", "RR@5"], rel_level=rel_level)
            assert set(ours.per_query) == set(reference)
            for qid, values in reference.items():
                rr = values["recip_rank"]
                expected10, expected5 = (
                    (rr if rr >= 0.1 - 1e-12 else 0.0),
                    (rr if rr >= 0.2 - 1e-12 else 0.0),
                )
                assert ours.per_query[qid]["MRR@10"] == pytest.approx(expected10, abs=1e-6), (
                    kind,
                    qid,
                )
                assert ours.per_query[qid]["RR@5"] == pytest.approx(expected5, abs=1e-6)


def test_ties_are_broken_like_trec_eval():
    qrels = {"q": {"a": 1}}
    tied = {"q": [Hit("a", 1.0, 1), Hit("b", 1.0, 2), Hit("ab", 1.0, 3)]}
    # trec_eval orders equal scores by document id, descending: b, ab, a
    result = evaluate(tied, qrels, ["MRR", "MRR@10", "MRR@2", "P@1"])
    assert result.aggregate == pytest.approx(
        {"MRR": 1 / 3, "MRR@10": 1 / 3, "MRR@2": 0.0, "P@1": 0.0}
    )
    # the same metric under two names, and score dicts with int scores, are both fine
    both = evaluate({"q": {"a": 2, "b": 1}}, qrels, ["MRR@10", "RR@10", "MRR"])
    assert both.aggregate == {"MRR@10": 1.0, "RR@10": 1.0, "MRR": 1.0}


def test_official_msmarco_mrr_definition():
    qrels = {"1": {"a": 1}, "2": {"b": 1}, "3": {"c": 1}, "4": {"d": 1}, "5": {"e": 0}}
    run = {
        # the rank column decides, not the score (trec_eval would put "a" first here)
        "1": [Hit("z", 0.1, 1), Hit("a", 0.9, 2)],
        # a relevant passage at rank 11 does not count
        "2": [Hit(f"n{i}", 1.0 - i / 100, i) for i in range(1, 11)] + [Hit("b", 0.0, 11)],
        "3": [Hit("c", 1.0, 1)],
        # query 4 is in the reference but missing from the run: it counts 0
        "9": [Hit("c", 1.0, 1)],  # a query without judgments: ignored
        # every passage listed in the reference is relevant, whatever its grade
        "5": [Hit("x", 1.0, 1), Hit("e", 0.5, 2)],
    }
    mrr, per_query = msmarco_mrr10(run, qrels)
    assert per_query == {"1": 0.5, "2": 0.0, "3": 1.0, "4": 0.0, "5": 0.5}
    assert mrr == pytest.approx((0.5 + 0.0 + 1.0 + 0.0 + 0.5) / 5)
    # the same run as {qid: {docid: rank}} (the CLI's fast path) gives the same values
    ranks = {q: {h.doc_id: float(h.rank) for h in hits} for q, hits in run.items()}
    assert msmarco_mrr10(ranks, qrels) == (mrr, per_query)
    # a rank given twice: the later line wins, as in the script's rank slots
    assert msmarco_mrr10({"1": [Hit("a", 1, 1), Hit("z", 1, 1)]}, {"1": {"a": 1}})[0] == 0.0
    with pytest.raises(InputError, match="no query of the run has judgments"):
        msmarco_mrr10({"x": [Hit("a", 1, 1)]}, qrels)
    with pytest.raises(InputError, match="ranks start at 1"):
        msmarco_mrr10({"1": [Hit("a", 1, 0)]}, qrels)


def test_official_msmarco_mrr_against_pytrec_eval_on_dev_small(data_dir):
    """With ranks that follow the scores and no ties, the official MRR@10 is trec_eval's
    recip_rank of the top 10, rescaled from the run's judged queries to all reference queries."""
    qrels = read_qrels(data_dir / "qrels.msmarco-passage.dev-subset.txt.gz")
    rng = random.Random(3)
    for kind, scores in generated_runs(qrels, seed=5).items():
        if kind == "ties":
            continue
        kept = {q: d for q, d in scores.items() if rng.random() < 0.8}  # some queries missing
        run = _run_from_scores(kept)
        top10 = {q: {h.doc_id: h.score for h in hits[:10]} for q, hits in run.items()}
        reference = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
        expected = sum(v["recip_rank"] for v in reference.values()) / len(qrels)
        mrr, per_query = msmarco_mrr10(run, qrels)
        assert mrr == pytest.approx(expected, abs=1e-9), kind
        assert len(per_query) == len(qrels)
        for qid, values in reference.items():
            assert per_query[qid] == pytest.approx(values["recip_rank"], abs=1e-9)


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


def test_randomization_test_agrees_with_t_test_on_large_normal_samples():
    """With thousands of queries and normal differences both tests estimate the same p-value."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.random(3000)
    for shift in (0.0, 0.005, 0.01):
        b = a + rng.normal(shift, 0.2, len(a))
        p_t, p_r = paired_t_test(a, b), randomization_test(a, b, trials=4000, seed=1)
        assert abs(p_t - p_r) < 0.03, (shift, p_t, p_r)
