"""`kirag bench rerank --remote`: Rank1 pairs/s in-process (the llama.cpp engine) against the
same GGUF behind an OpenAI-compatible server (llama-cpp-python's, started here on loopback, or
one given by URL), with 1 and N requests in flight; the same pairs, thinking budget and batch
size, measured in the same run; and how far the served scores are from the in-process ones."""

from __future__ import annotations

import time
from collections.abc import Sequence


def _timed(reranker, pairs) -> tuple[float, list[float]]:
    started = time.perf_counter()
    scores = reranker.score(pairs)
    seconds = time.perf_counter() - started
    return seconds, [s.p_true for s in scores]


def measure(
    pairs: Sequence[tuple[str, str]],
    budget: int,
    concurrency: Sequence[int],
    batch_size: int,
    base_url: str | None = None,
    served_model: str = "smollm2-135m",
) -> dict:
    """pairs/s in-process and through the server at each concurrency, with the largest
    |P(true) difference| from the in-process scores."""
    from kirag.bench.served import LlamaServer
    from kirag.llm.llamacpp_engine import LlamaCppEngine
    from kirag.llm.openai_engine import OpenAIEngine
    from kirag.models import packaged_path
    from kirag.rerank.rank1 import Rank1Reranker

    gguf = packaged_path("smollm2-135m")
    out: dict = {"pairs": len(pairs), "budget": budget, "batch_size": batch_size}
    engine = LlamaCppEngine(str(gguf), reuse_prefix=True)
    seconds, local = _timed(
        Rank1Reranker(engine=engine, thinking_budget=budget, batch_size=batch_size), pairs
    )
    engine.close()
    out["in_process"] = {"pairs_per_second": round(len(pairs) / seconds, 3)}
    server = None
    if base_url is None:  # the same file behind llama-cpp-python's server, on loopback
        server = LlamaServer(gguf, served_model).start()
        base_url = server.url
    try:
        for n in concurrency:
            remote = OpenAIEngine(served_model, base_url=base_url, concurrency=n)
            seconds, scores = _timed(
                Rank1Reranker(engine=remote, thinking_budget=budget, batch_size=max(batch_size, n)),
                pairs,
            )
            out["server"] = remote.server_info
            out[f"served_{n}_in_flight"] = {
                "pairs_per_second": round(len(pairs) / seconds, 3),
                "speedup_vs_in_process": round(
                    len(pairs) / seconds / out["in_process"]["pairs_per_second"], 3
                ),
                "max_abs_p_true_difference": round(
                    max(abs(a - b) for a, b in zip(scores, local, strict=True)), 5
                ),
                "retries": remote.client.retried,
            }
            remote.close()
    finally:
        if server is not None:
            server.stop()
    return out
