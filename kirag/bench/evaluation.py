"""`kirag bench eval`: evaluating a dev-small-shaped run (6,980 queries x 1,000 hits, ~7M
lines) with `kirag eval` (the command, in-process) against calling pytrec_eval directly on the
same file, each in its own process so that seconds and peak memory are its own. Both include
reading the run and the judgments."""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from kirag.bench.harness import run_child
from kirag.core.ranges import COUNT

METRICS = ("MRR@10", "nDCG@10", "MAP", "R@1000")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--queries",
        type=COUNT,
        default=6980,
        help="queries in the generated run (dev-small: 6,980)",
    )
    parser.add_argument("--hits", type=COUNT, default=1000, help="hits per query")
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
        else Path(__file__).resolve().parents[2]
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
            data = run_child("kirag.bench.children.evaluate", (mode, run_path, plain_qrels), mode)
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
