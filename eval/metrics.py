"""Ranking metrics through ir-measures (pytrec_eval as its engine), and the official MS MARCO
MRR@10.

trec_eval's conventions (what `evaluate` follows): documents are ordered by score, descending,
ties broken by document id, descending; the rank column is ignored; a document counts as
relevant from grade 1 (`rel_level` raises that for binary measures: TREC DL passage uses 2,
nDCG always uses the grades); averages are over the queries present in both the run and the
judgments. Judged queries missing from the run are the one choice: by default they count 0 and
the mean is over every judged query (`trec_eval -c`, ir-measures, Anserini/Pyserini's
regressions); `missing="skip"` averages over the run's judged queries only (plain `trec_eval`,
pytrec_eval).

The MS MARCO leaderboard's MRR@10 (msmarco_eval.py) differs on every one of those points:
it orders by the rank column (scores are not read; for a rank given twice the later line
wins), every passage listed in the reference counts as relevant whatever its grade, and the
sum of reciprocal ranks is divided by the number of queries in the reference, so a judged
query missing from the run counts 0. `msmarco_mrr10` implements exactly that; it is stricter
than the script in two places (a passage ranked twice is an error where the script only prints
a message; a rank below 1 is an error where the script silently files it at the end of its
list) and more lenient in one (ranks beyond 1,000 are allowed where the script rejects the
file; only the top 10 count anyway). Nor does it credit passage id 0 in the empty rank slots
that the script pads with zeros. Reading the files (kirag.eval.runs, kirag.io.qrels) differs
in what the script cannot read: ids need not be integers, blank lines are skipped, qrels may be
space-separated, files may be compressed; MS MARCO runs are tab-separated, as the script
requires. docs/evaluation.md lists every difference.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Literal

from kirag.core.ranges import CUTOFF
from kirag.errors import InputError, SettingsError
from kirag.types import Hit

Qrels = Mapping[str, Mapping[str, int]]
ScoreRun = dict[str, dict[str, float]]

ALIASES = {"MRR": "RR", "MAP": "AP", "RECALL": "R", "NDCG": "nDCG", "P": "P", "SUCCESS": "Success"}
BINARY = {"RR", "AP", "R", "P", "Success", "Rprec", "Bpref", "NumRel", "NumRelRet"}
DEFAULT_METRICS = ("MRR@10", "nDCG@10", "MAP", "R@100", "R@1000")


def as_score_run(run: Mapping[str, Sequence[Hit]] | Mapping[str, Mapping[str, float]]) -> ScoreRun:
    """{qid: {docid: score}} from Hit lists or from a score mapping. A dict that already has
    str keys and float values is passed through uncopied (a 7M-line run is ~1 GB)."""
    out: ScoreRun = {}
    for qid, hits in run.items():
        if isinstance(hits, Mapping):
            if (
                isinstance(hits, dict)
                and set(map(type, hits)) <= {str}
                and set(map(type, hits.values())) <= {float}
            ):
                out[str(qid)] = hits
            else:
                out[str(qid)] = {str(d): float(s) for d, s in hits.items()}
        else:
            scores: dict[str, float] = {}
            for hit in hits:
                if hit.doc_id in scores:
                    raise InputError(f"query {qid!r} ranks document {hit.doc_id!r} twice")
                scores[hit.doc_id] = float(hit.score)
            out[str(qid)] = scores
    return out


def top_k(run: ScoreRun, k: int) -> ScoreRun:
    """The first `k` documents of each query in trec_eval's order (score descending, then
    document id descending)."""
    key = itemgetter(1, 0)
    return {qid: dict(heapq.nlargest(k, docs.items(), key=key)) for qid, docs in run.items()}


METRIC_EXAMPLES = "e.g. MRR@10, nDCG@10, MAP, R@1000, P@10"


def check_metric_name(name: str) -> str:
    """`name` when its form is a metric's (NAME, NAME@CUTOFF, NAME(rel=2)@CUTOFF, the cutoff an
    integer >= 1): checked here because pytrec_eval aborts the process on a cutoff of 0 and
    ir-measures asserts on 1.5. SettingsError naming the metric otherwise."""
    base, sep, rest = name.strip().partition("@")
    if not base or not (base[0].isalpha()):
        raise SettingsError(f"metric {name!r} has no name; {METRIC_EXAMPLES}")
    if sep:
        try:
            CUTOFF.parse(rest)
        except ValueError as exc:
            raise SettingsError(f"metric {name!r}: the cutoff after @ {exc}") from None
    return name


def parse_metric(name: str, rel_level: int | None = None):
    """An ir-measures measure from a name like "MRR@10", "nDCG@10", "MAP", "R@1000",
    "AP(rel=2)". With `rel_level`, binary measures without their own `rel` get it."""
    import ir_measures

    check_metric_name(name)
    base, sep, rest = name.partition("@")
    head = base.split("(", 1)[0]
    canonical = ALIASES.get(head.upper(), head)
    text = canonical + base[len(head) :] + (sep + rest if sep else "")
    try:
        measure = ir_measures.parse_measure(text)
    except (ValueError, NameError, SyntaxError, AssertionError, TypeError) as exc:
        raise InputError(f"unknown metric {name!r} ({exc}); {METRIC_EXAMPLES}") from None
    cutoff = measure.params.get("cutoff")
    if cutoff is not None:  # also a cutoff given as a parameter, nDCG(cutoff=0)
        problem = CUTOFF.problem(cutoff)
        if problem:
            raise SettingsError(f"metric {name!r}: the cutoff {problem}")
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
    missing_queries: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "aggregate": self.aggregate,
            "queries": self.queries,
            "unjudged_queries": self.unjudged_queries,
            "missing_queries": self.missing_queries,
            "per_query": self.per_query,
        }


def evaluate(
    run: Mapping[str, Sequence[Hit]] | Mapping[str, Mapping[str, float]],
    qrels: Qrels,
    metrics: Sequence[str] = DEFAULT_METRICS,
    rel_level: int | None = None,
    missing: Literal["zero", "skip"] = "zero",
) -> EvalResult:
    """Evaluate a run against judgments with ir-measures (pytrec_eval): per-query values and
    their means. Judged queries the run misses count 0 (`trec_eval -c`) or, with
    `missing="skip"`, are left out (plain trec_eval)."""
    import ir_measures

    if missing not in ("zero", "skip"):
        raise ValueError(f"missing must be 'zero' or 'skip', not {missing!r}")

    measures = {name: parse_metric(name, rel_level) for name in dict.fromkeys(metrics)}
    score_run = as_score_run(run)
    qrels = {str(q): {str(d): int(g) for d, g in docs.items()} for q, docs in qrels.items()}
    # measure -> the names asked for; RR@k is trec_eval's recip_rank on the top k (ir-measures
    # would hand it to its MS MARCO provider, which breaks ties by document id ascending)
    groups: dict[int | None, dict[Any, list[str]]] = {}
    for name, measure in measures.items():
        cutoff = None
        if measure.NAME == "RR" and measure.params.get("cutoff") is not None:
            cutoff = measure["cutoff"]
            params = {k: v for k, v in measure.params.items() if k != "cutoff"}
            measure = ir_measures.measures.RR(**params)
        groups.setdefault(cutoff, {}).setdefault(measure, []).append(name)
    per_query: dict[str, dict[str, float]] = {}
    for cutoff, names in groups.items():
        evaluator = ir_measures.evaluator(list(names), qrels)
        for metric in evaluator.iter_calc(
            score_run if cutoff is None else top_k(score_run, cutoff)
        ):
            row = per_query.setdefault(metric.query_id, {})
            for name in names[metric.measure]:
                row[name] = float(metric.value)
    absent = [q for q in qrels if q not in score_run]
    if missing == "skip":
        for qid in absent:
            per_query.pop(qid, None)
    aggregate = {}
    for name in dict.fromkeys(metrics):
        values = [row[name] for row in per_query.values() if name in row]
        aggregate[name] = sum(values) / len(values) if values else 0.0
    unjudged = [q for q in score_run if q not in qrels]
    return EvalResult(aggregate, per_query, len(per_query), unjudged, absent)


def msmarco_mrr10(
    run: Mapping[str, Sequence[Hit]] | Mapping[str, Mapping[str, float]],
    qrels: Qrels,
    cutoff: int = 10,
) -> tuple[float, dict[str, float]]:
    """MRR@10 exactly as the official MS MARCO evaluation script computes it (see the module
    docstring). `run` is {qid: hits} or {qid: {docid: rank}}. Returns (MRR, per-query reciprocal
    ranks of every reference query, 0 for those the run misses)."""
    per_query: dict[str, float] = {}
    ranked = 0
    for qid, judged in qrels.items():
        candidates = run.get(qid)
        per_query[qid] = 0.0
        if candidates is None:
            continue
        ranked += 1
        slots = _rank_slots(qid, candidates)
        for rank in range(1, cutoff + 1):
            if slots.get(rank) in judged:
                per_query[qid] = 1.0 / rank
                break
    if not ranked:
        raise InputError("no query of the run has judgments: is this the right qrels file?")
    return sum(per_query.values()) / len(qrels), per_query


def _rank_slots(qid: str, candidates: Sequence[Hit] | Mapping[str, float]) -> dict[int, str]:
    """rank -> passage, from the rank column (a later hit with the same rank replaces one)."""
    pairs = (
        ((int(rank), doc) for doc, rank in candidates.items())
        if isinstance(candidates, Mapping)
        else ((hit.rank, hit.doc_id) for hit in candidates)
    )
    slots: dict[int, str] = {}
    for rank, doc in pairs:
        if rank < 1:
            raise InputError(f"query {qid!r}: rank {rank} of {doc!r} (ranks start at 1)")
        slots[rank] = doc
    return slots
