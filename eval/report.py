"""Reports: a metrics table, several runs side by side with significance marks against the first
(the baseline), per-query JSON, and a PNG of per-query differences between two runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kirag.eval.metrics import EvalResult
from kirag.eval.significance import compare

MARK_LEVEL = 0.05


def metrics_table(
    results: Mapping[str, EvalResult], baseline: str | None = None, trials: int = 10_000
) -> str:
    """One row per run, one column per metric. Against the baseline (first run unless named),
    a value gets † when the paired t-test and ‡ when the randomisation test give p < 0.05."""
    names = list(results)
    if not names:
        return ""
    baseline = baseline or names[0]
    metrics = list(results[names[0]].aggregate)
    width = max(len(n) for n in names)
    header = f"{'run':<{width}}  " + "  ".join(f"{m:>12}" for m in metrics) + "  queries"
    lines = [header, "-" * len(header)]
    for name in names:
        cells = []
        for metric in metrics:
            value = results[name].aggregate.get(metric, float("nan"))
            mark = ""
            if name != baseline:
                a = {q: v[metric] for q, v in results[baseline].per_query.items() if metric in v}
                b = {q: v[metric] for q, v in results[name].per_query.items() if metric in v}
                test = compare(metric, a, b, trials=trials)
                mark = ("†" if test.t_test_p < MARK_LEVEL else "") + (
                    "‡" if test.randomization_p < MARK_LEVEL else ""
                )
            cells.append(f"{value:>10.4f}{mark:<2}")
        lines.append(f"{name:<{width}}  " + "  ".join(cells) + f"  {results[name].queries}")
    if len(names) > 1:
        lines.append(f"† paired t-test, ‡ randomisation test: p < {MARK_LEVEL} against {baseline}")
    return "\n".join(lines)


def comparisons(
    results: Mapping[str, EvalResult], baseline: str | None = None, trials: int = 10_000
) -> list[dict]:
    """Every metric of every run against the baseline, with both p-values (for JSON output)."""
    names = list(results)
    baseline = baseline or names[0]
    out = []
    for name in names:
        if name == baseline:
            continue
        for metric in results[name].aggregate:
            a = {q: v[metric] for q, v in results[baseline].per_query.items() if metric in v}
            b = {q: v[metric] for q, v in results[name].per_query.items() if metric in v}
            test = compare(metric, a, b, trials=trials)
            out.append(
                {
                    "run": name,
                    "baseline": baseline,
                    "metric": metric,
                    "difference": test.difference,
                    "queries": test.queries,
                    "t_test_p": test.t_test_p,
                    "randomization_p": test.randomization_p,
                }
            )
    return out


EFFECT_TRIALS = 2000  # randomisation trials of a reranking's effect (printed with every rerank)


@dataclass(frozen=True, slots=True)
class RerankEffect:
    """A reranking measured against its first stage on the same judgements: nDCG@10, MRR@10 and
    R@min(k, 10) of each ("first stage", cut at k, and "reranked"), with paired significance."""

    results: dict[str, EvalResult]
    comparisons: list[dict]

    @property
    def ndcg_change(self) -> tuple[float, float]:
        """nDCG@10 before and after the reranking."""
        return (
            self.results["first stage"].aggregate["nDCG@10"],
            self.results["reranked"].aggregate["nDCG@10"],
        )

    @property
    def lowers_ndcg(self) -> bool:
        before, after = self.ndcg_change
        return after < before

    def to_dict(self) -> dict:
        """As the run record keeps it (`results.effect` of a `kirag rerank --qrels` run)."""
        return {
            "aggregate": {name: r.aggregate for name, r in self.results.items()},
            "comparisons": self.comparisons,
        }


def rerank_effect(
    first_stage: Mapping[str, Sequence],
    reranked: Mapping[str, Sequence],
    qrels: Mapping[str, Mapping[str, int]],
    k: int,
    trials: int = EFFECT_TRIALS,
) -> RerankEffect:
    """The effect of reranking the top `k` of `first_stage` into `reranked` (same queries, same
    judgements), so that a reranker that makes results worse is seen at once."""
    from kirag.eval.metrics import evaluate

    metrics = ["nDCG@10", "MRR@10", f"R@{min(k, 10)}"]
    results = {
        "first stage": evaluate(
            {q: h[:k] for q, h in first_stage.items() if q in reranked}, qrels, metrics
        ),
        "reranked": evaluate(reranked, qrels, metrics),
    }
    return RerankEffect(results, comparisons(results, trials=trials))


def plot_differences(
    a: EvalResult, b: EvalResult, metric: str, path: str | Path, labels: Sequence[str] = ("A", "B")
) -> Path:
    """A bar per query of metric(B) - metric(A), sorted, written as a PNG (matplotlib, the
    `plot` extra)."""
    from kirag.core.optional import require

    matplotlib = require("matplotlib", "plot", "plotting per-query differences")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shared = sorted(set(a.per_query) & set(b.per_query))
    differences = sorted(b.per_query[q][metric] - a.per_query[q][metric] for q in shared)
    figure, axis = plt.subplots(figsize=(8, 3.5), dpi=100)
    colors = ["#2a9d8f" if d > 0 else "#e76f51" if d < 0 else "#8d99ae" for d in differences]
    axis.bar(range(len(differences)), differences, color=colors, width=1.0)
    axis.axhline(0, color="black", linewidth=0.8)
    wins, losses = sum(d > 0 for d in differences), sum(d < 0 for d in differences)
    axis.set_title(
        f"{metric}: {labels[1]} - {labels[0]} per query ({wins} better, {losses} worse, {len(differences) - wins - losses} tied)"
    )
    axis.set_xlabel("queries (sorted by difference)")
    axis.set_ylabel(f"Δ {metric}")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    plt.close(figure)
    return path
