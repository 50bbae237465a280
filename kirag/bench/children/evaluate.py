"""One side of `kirag bench eval`: evaluate a run with pytrec_eval called directly, or with the
`kirag eval` command in this process; both read the run and the judgments themselves."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time

from kirag.bench.evaluation import METRICS
from kirag.bench.harness import print_json
from kirag.bench.memory import peak_rss_mb

DIRECT_MEASURES = ("ndcg_cut_10", "map", "recall_1000")


def pytrec_eval_direct(run_path: str, qrels_path: str) -> dict[str, float]:
    """MRR@10, nDCG@10, MAP and R@1000 the way a user of pytrec_eval would compute them."""
    import pytrec_eval

    qrels: dict = {}
    with open(qrels_path) as fh:
        for line in fh:
            q, _, d, g = line.split()
            qrels.setdefault(q, {})[d] = int(g)
    run: dict = {}
    with open(run_path) as fh:
        for line in fh:
            q, _, d, _, s, _ = line.split()
            run.setdefault(q, {})[d] = float(s)
    # recip_rank on the top 10 (MRR@10) needs its own truncated run: trec_eval has no cutoff for it
    top10 = {q: dict(sorted(docs.items(), key=lambda x: -x[1])[:10]) for q, docs in run.items()}
    values = pytrec_eval.RelevanceEvaluator(qrels, set(DIRECT_MEASURES)).evaluate(run)
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    aggregate = {m: sum(v[m] for v in values.values()) / len(values) for m in DIRECT_MEASURES}
    aggregate["recip_rank@10"] = sum(v["recip_rank"] for v in rr.values()) / len(rr)
    return aggregate


def kirag_eval(run_path: str, qrels_path: str) -> dict[str, float]:
    from kirag.cli import main

    out = run_path + ".eval.json"
    with contextlib.redirect_stdout(io.StringIO()):
        main(
            [
                "eval",
                "--run",
                run_path,
                "--qrels",
                qrels_path,
                "--output",
                out,
                "--metrics",
                *METRICS,
            ]
        )
    with open(out) as fh:
        return json.load(fh)["aggregate"][os.path.basename(run_path)]


def main(argv: list[str]) -> None:
    mode, run_path, qrels_path = argv
    start = time.perf_counter()
    evaluate = pytrec_eval_direct if mode == "pytrec_eval" else kirag_eval
    aggregate = evaluate(run_path, qrels_path)
    seconds = time.perf_counter() - start
    print_json({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "aggregate": aggregate})


if __name__ == "__main__":
    main(sys.argv[1:])
