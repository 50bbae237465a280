"""Ranking metrics through ir-measures (pytrec_eval as its engine), and the official MS MARCO
MRR@10.

Conventions (trec_eval's): documents are ordered by score (descending; ties by document id,
descending), the rank column is ignored, and averages are over the queries present in both the
run and the judgments. TREC DL passage judgments are graded 0-3; binary measures there count
grade >= 2 as relevant (`rel_level=2`), nDCG uses the grades.

The MS MARCO leaderboard's MRR@10 (its official msmarco_eval.py) differs: it orders by the rank
column, counts every listed judgment as relevant, and averages over the queries of the run that
have judgments. `msmarco_mrr10` implements exactly that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kirag.errors import InputError
from kirag.types import Hit

Qrels = Mapping[str, Mapping[str, int]]
ScoreRun = dict[str, dict[str, float]]

ALIASES = {"MRR": "RR", "MAP": "AP", "RECALL": "R", "NDCG": "nDCG", "P": "P", "SUCCESS": "Success"}
BINARY = {"RR", "AP", "R", "P", "Success", "Rprec", "Bpref", "NumRel", "NumRelRet"}
DEFAULT_METRICS = ("nDCG@10", "RR@10", "AP", "R@100", "R@1000")


def as_score_run(run: Mapping[str, Sequence[Hit]] | Mapping[str, Mapping[str, float]]) -> ScoreRun:
    """{qid: {docid: score}} from Hit lists or from a score mapping (passed through)."""
    out: ScoreRun = {}
    for qid, hits in run.items():
        if isinstance(hits, Mapping):
            out[qid] = {str(d): float(s) for d, s in hits.items()}
        else:
            scores: dict[str, float] = {}
            for hit in hits:
                if hit.doc_id in scores:
                    raise InputError(f"query {qid!r} ranks document {hit.doc_id!r} twice")
                scores[hit.doc_id] = float(hit.score)
            out[qid] = scores
    return out


def parse_metric(name: str, rel_level: int | None = None):
    """An ir-measures measure from a name like "MRR@10", "nDCG@10", "MAP", "R@1000",
    "AP(rel=2)". With `rel_level`, binary measures without their own `rel` get it."""
    import ir_measures

    base, sep, rest = name.partition("@")
    head = base.split("(", 1)[0]
    canonical = ALIASES.get(head.upper(), head)
    text = canonical + base[len(head) :] + (sep + rest if sep else "")
    try:
        measure = ir_measures.parse_measure(text)
    except (ValueError, NameError, SyntaxError) as exc:
        raise InputError(
            f"unknown metric {name!r} ({exc}); e.g. MRR@10, nDCG@10, MAP, R@1000, P@10"
        ) from None
    if (
        rel_level is not None
        and measure.NAME in BINARY
        and "rel" not in measure.params
        and "rel" in measure.SUPPORTED_PARAMS
    ):
        measure = measure(rel=rel_level)
    return measure


@dataclass
class EvalResult:
    """Aggregate values and per-query values of each metric (keyed by the names asked for)."""

    aggregate: dict[str, float]
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    queries: int = 0
    unjudged_queries: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "aggregate": self.aggregate,
            "queries": self.queries,
            "unjudged_queries": self.unjudged_queries,
            "per_query": self.per_query,
        }


def evaluate(
    run: Mapping[str, Sequence[Hit]] | Mapping[str, Mapping[str, float]],
    qrels: Qrels,
    metrics: Sequence[str] = DEFAULT_METRICS,
    rel_level: int | None = None,
) -> EvalResult:
    """Evaluate a run against judgments with ir-measures; per-query values included."""
    import ir_measures

    score_run = as_score_run(run)
    measures = {name: parse_metric(name, rel_level) for name in metrics}
    names = {measure: name for name, measure in measures.items()}
    qrels = {str(q): {str(d): int(g) for d, g in docs.items()} for q, docs in qrels.items()}
    evaluator = ir_measures.evaluator(list(measures.values()), qrels)
    per_query: dict[str, dict[str, float]] = {}
    for metric in evaluator.iter_calc(score_run):
        per_query.setdefault(metric.query_id, {})[names[metric.measure]] = float(metric.value)
    judged = [q for q in score_run if q in qrels]
    aggregate = {
        name: (sum(per_query[q][name] for q in per_query) / len(per_query) if per_query else 0.0)
        for name in metrics
    }
    unjudged = [q for q in score_run if q not in qrels]
    return EvalResult(aggregate, per_query, len(judged), unjudged)


def msmarco_mrr10(
    run: Mapping[str, Sequence[Hit]], qrels: Qrels, cutoff: int = 10
) -> tuple[float, dict[str, float]]:
    """MRR@10 exactly as the official MS MARCO evaluation script computes it: candidates in rank
    order, the first judged passage within `cutoff` counts, the mean is over the run's queries
    that have judgments. Returns (MRR, per-query reciprocal ranks)."""
    per_query: dict[str, float] = {}
    for qid, hits in run.items():
        if qid not in qrels:
            continue
        relevant = {d for d, grade in qrels[qid].items() if grade > 0}
        by_rank = sorted(hits, key=lambda h: h.rank)
        per_query[qid] = 0.0
        for hit in by_rank:
            if hit.rank > cutoff:
                break
            if hit.doc_id in relevant:
                per_query[qid] = 1.0 / hit.rank
                break
    if not per_query:
        raise InputError("no query of the run has judgments: is this the right qrels file?")
    return sum(per_query.values()) / len(per_query), per_query
