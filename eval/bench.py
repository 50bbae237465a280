"""`kirag bench eval`: evaluating a dev-small-shaped run (6,980 queries x 1,000 hits, ~7M
lines) with `kirag eval` (the command, in-process) against calling pytrec_eval directly on the
same file, each in its own process so that seconds and peak memory are its own. Both include
reading the run and the judgments."""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

METRICS = ("MRR@10", "nDCG@10", "MAP", "R@1000")
PYTREC_MEASURES = ("recip_rank", "ndcg_cut_10", "map", "recall_1000")

CHILD = """
import json, sys, time
from kirag.memory import peak_rss_mb
mode, run_path, qrels_path = sys.argv[1:4]
start = time.perf_counter()
if mode == "pytrec_eval":
    import pytrec_eval
    qrels = {}
    for line in open(qrels_path):
        q, _, d, g = line.split()
        qrels.setdefault(q, {})[d] = int(g)
    run = {}
    for line in open(run_path):
        q, _, d, _, s, _ = line.split()
        run.setdefault(q, {})[d] = float(s)
    # recip_rank on the top 10 (MRR@10) needs its own truncated run, as trec_eval has no cutoff for it
    top10 = {q: dict(sorted(docs.items(), key=lambda x: -x[1])[:10]) for q, docs in run.items()}
    values = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10", "map", "recall_1000"}).evaluate(run)
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    aggregate = {m: sum(v[m] for v in values.values()) / len(values) for m in ("ndcg_cut_10", "map", "recall_1000")}
    aggregate["recip_rank@10"] = sum(v["recip_rank"] for v in rr.values()) / len(rr)
else:
    import contextlib, io, os
    from kirag.cli import main
    out = run_path + ".eval.json"
    with contextlib.redirect_stdout(io.StringIO()):
        main(["eval", "--run", run_path, "--qrels", qrels_path,
              "--metrics", "MRR@10", "nDCG@10", "MAP", "R@1000", "--output", out])
    aggregate = json.load(open(out))["aggregate"][os.path.basename(run_path)]
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "aggregate": aggregate}))
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--queries", type=int, default=6980, help="queries in the generated run (dev-small: 6,980)"
    )
    parser.add_argument("--hits", type=int, default=1000, help="hits per query")
    parser.add_argument(
        "--qrels",
        default=None,
        help="judgments (default: the MS MARCO dev-small qrels shipped with the tests)",
    )
    parser.add_argument("--workdir", default=None)


def generate_run(
    qrels: dict[str, dict[str, int]], queries: int, hits: int, path: Path, seed: int = 42
) -> int:
    """A TREC run over the judged queries: random passages, with each judged passage placed
    (70% of the time) at a rank drawn from an exponential of mean 30, so that every metric has
    work to do. Returns the number of lines."""
    rng = random.Random(seed)
    qids = list(qrels)[:queries]
    lines = 0
    with open(path, "w") as fh:
        for qid in qids:
            docs = [str(rng.randrange(8_841_823)) for _ in range(hits)]
            for judged in qrels[qid]:
                if rng.random() < 0.7:
                    docs[min(int(rng.expovariate(1 / 30)), hits - 1)] = judged
            docs = list(dict.fromkeys(docs))
            for rank, doc in enumerate(docs, 1):
                fh.write(f"{qid} Q0 {doc} {rank} {hits - rank + rng.random():.6f} bench\n")
            lines += len(docs)
    return lines


def run(args: argparse.Namespace) -> dict:
    from kirag.io.qrels import read_qrels

    qrels_path = (
        Path(args.qrels)
        if args.qrels
        else Path(__file__).resolve().parents[1]
        / "tests"
        / "data"
        / "qrels.msmarco-passage.dev-subset.txt.gz"
    )
    qrels = read_qrels(qrels_path)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        plain_qrels = tmp / "qrels.txt"
        plain_qrels.write_text(
            "".join(f"{q} 0 {d} {g}\n" for q, docs in qrels.items() for d, g in docs.items())
        )
        run_path = tmp / "run.trec"
        lines = generate_run(qrels, args.queries, args.hits, run_path)
        out: dict = {"queries": min(args.queries, len(qrels)), "lines": lines}
        for mode in ("pytrec_eval", "kirag"):
            result = subprocess.run(
                [sys.executable, "-c", CHILD, mode, str(run_path), str(plain_qrels)],
                capture_output=True,
                text=True,
                check=True,
            )
            data = json.loads(result.stdout.strip().splitlines()[-1])
            out[mode] = {
                "seconds": round(data["seconds"], 2),
                "peak_rss_mb": round(data["peak_rss_mb"], 1),
                "aggregate": data["aggregate"],
            }
    out["kirag_over_pytrec_eval_time"] = round(
        out["kirag"]["seconds"] / out["pytrec_eval"]["seconds"], 3
    )
    out["kirag_over_pytrec_eval_memory"] = round(
        out["kirag"]["peak_rss_mb"] / out["pytrec_eval"]["peak_rss_mb"], 3
    )
    kirag, direct = out["kirag"]["aggregate"], out["pytrec_eval"]["aggregate"]
    out["agreement"] = {
        "MRR@10": abs(kirag["MRR@10"] - direct["recip_rank@10"]),
        "nDCG@10": abs(kirag["nDCG@10"] - direct["ndcg_cut_10"]),
        "MAP": abs(kirag["MAP"] - direct["map"]),
        "R@1000": abs(kirag["R@1000"] - direct["recall_1000"]),
    }
    return out
