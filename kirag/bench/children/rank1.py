"""One Rank1 configuration of `kirag bench rerank`: load the engine with the spec's options,
score the spec's (query, passage) pairs, report speed, peak memory and every P(true)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from kirag.bench.harness import print_json
from kirag.bench.memory import peak_rss_mb


def main(argv: list[str]) -> None:
    from kirag.llm.factory import load_engine
    from kirag.llm.llamacpp_backends import running_cpu_variant
    from kirag.models import DEFAULT_LLM
    from kirag.rerank.rank1 import Rank1Reranker

    spec = json.loads(Path(argv[0]).read_text())
    engine = load_engine(spec.get("model", DEFAULT_LLM), spec["engine"], **spec["options"])
    pairs = [tuple(p) for p in spec["pairs"]]
    reranker = Rank1Reranker(
        engine=engine, thinking_budget=spec["budget"], batch_size=spec["batch_size"]
    )
    start = time.perf_counter()
    scores = reranker.score(pairs)
    seconds = time.perf_counter() - start
    print_json(
        {
            "seconds": seconds,
            "pairs_per_second": len(pairs) / seconds,
            "peak_rss_mb": peak_rss_mb(),
            "p_true": [s.p_true for s in scores],
            "fallbacks": reranker.fallbacks,
            "thinking_tokens": sum(s.thinking_tokens for s in scores),
            **({"cpu_variant": running_cpu_variant()} if spec["engine"] == "llamacpp" else {}),
        }
    )


if __name__ == "__main__":
    main(sys.argv[1:])
