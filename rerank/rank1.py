"""Rank1-style reasoning reranker: the LLM thinks, then answers true/false; the score is
P(true) from the log-probabilities of " true" and " false" at the final position; the reasoning is
returned with every score as its explanation.

Per pair (the reference behaviour, see rank1_scoring):
  1. generate greedily up to `thinking_budget` tokens, stopping at "</think> true|false";
  2. if the final position's top-20 log-probs hold both " true" and " false": score from them;
  3. otherwise ("rethink"): cut the thought at its last sentence end, append "\\n</think>" and
     score the next token restricted to true/false;
  4. if that fails too: 0.5, flagged as "default".
Budget 0 closes the think block at once and scores directly (pointwise LLM reranking).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from kirag.rerank import rank1_scoring as rs
from kirag.rerank.base import BaseReranker, apply_scores, as_hits
from kirag.rerank.cache import ScoreCache, config_fingerprint, pair_key

from kirag.llm.base import LLMEngine, room_for_text, single_token_id
from kirag.types import Document, Hit, Query

log = logging.getLogger(__name__)

REFERENCE_BUDGET = 8192


@dataclass(slots=True)
class Rank1Score:
    """P(true) for one pair, with its reasoning and how it was obtained."""

    p_true: float
    reasoning: str
    fallback: str  # "none" | "rethink" | "default"
    thinking_tokens: int = 0
    truncated: bool = False


class Rank1Reranker(BaseReranker):
    """Reranks with any LLMEngine (transformers, llama.cpp, vLLM). Implements the Reranker
    protocol: `rerank(query, hits_or_documents, k)` and `rerank_run(run, queries, docstore, k)`."""

    def __init__(
        self,
        model: str = "smollm2-135m",
        engine: str | LLMEngine = "auto",
        thinking_budget: int = REFERENCE_BUDGET,
        batch_size: int = 8,
        instruction: str | None = None,
        dataset_prompt: str | None = None,
        cache: ScoreCache | str | Path | None = None,
        engine_options: Mapping | None = None,
    ):
        if thinking_budget < 0:
            raise ValueError("thinking_budget must be >= 0")
        if isinstance(engine, str):
            from kirag.llm.factory import load_engine

            engine = load_engine(model, engine, **dict(engine_options or {}))
        self.engine = engine
        self.thinking_budget = thinking_budget
        self.batch_size = max(1, batch_size)
        self.instruction = instruction
        self.dataset_prompt = dataset_prompt
        self.true_id = single_token_id(engine, rs.TRUE_TOKEN)
        self.false_id = single_token_id(engine, rs.FALSE_TOKEN)
        self.cache = ScoreCache(cache) if isinstance(cache, str | Path) else cache
        self.settings = {
            "scorer": "rank1",
            "model": engine.model_id,
            "engine": engine.name,
            "precision": getattr(engine, "quantize", None) or getattr(engine, "dtype", None),
            "prompt": rs.prompt_template(),
            "thinking_budget": thinking_budget,
        }
        self.fingerprint = config_fingerprint(self.settings)
        self._overhead = engine.count_tokens(rs.build_prompt("", "")) + 1
        self.truncated_passages = 0
        self.fallbacks = {"none": 0, "rethink": 0, "default": 0}

    # ---------------------------------------------------------------- scoring

    def _fit_passage(self, query: str, passage: str) -> tuple[str, bool]:
        used = self._overhead + self.engine.count_tokens(query) + self.thinking_budget
        room = room_for_text(self.engine, used, "the prompt around the passage with its query")
        if self.engine.count_tokens(passage) <= room:
            return passage, False
        return self.engine.truncate(passage, room), True

    def score(
        self, pairs: Sequence[tuple[str, str]], query_ids: Sequence[str] | None = None
    ) -> list[Rank1Score]:
        """Scores for (query, passage) pairs in fixed batches, reusing cached scores.

        A pair's score depends on its batch-mates (llama.cpp's quantized kernels and padding
        move the numbers with how prompts are packed), so the batches are a pure function of
        `pairs` alone: all pairs, cached or not, sorted by prompt length and cut every
        `batch_size`. A batch whose pairs are all cached is skipped whole; any other is scored
        whole, from an engine with nothing kept from earlier batches. A resumed run therefore
        gives exactly the scores of an uninterrupted one."""
        queries = [
            rs.query_with_instruction(q, self.instruction, self.dataset_prompt) for q, _ in pairs
        ]
        keys = [
            pair_key(self.fingerprint, q, passage)
            for q, (_, passage) in zip(queries, pairs, strict=True)
        ]
        cached = [self.cache.get(key) if self.cache is not None else None for key in keys]
        fitted = [
            self._fit_passage(q, passage) for q, (_, passage) in zip(queries, pairs, strict=True)
        ]
        prompts = [rs.build_prompt(q, text) for q, (text, _) in zip(queries, fitted, strict=True)]
        results: list[Rank1Score | None] = [
            None if record is None else _from_record(record) for record in cached
        ]
        # batches of similar length (a batch is padded to its longest prompt), ties in order
        order = sorted(range(len(pairs)), key=lambda i: (len(prompts[i]), i))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            todo = [i for i in batch if cached[i] is None]
            if not todo:
                continue
            self._forget_engine_state()
            scores = self._score_prompts([prompts[i] for i in batch])
            for i, score in zip(batch, scores, strict=True):
                if cached[i] is not None:
                    continue  # scored by this same batch before a crash: the same numbers
                score.truncated = fitted[i][1]
                self.truncated_passages += score.truncated
                results[i] = score
                self.fallbacks[score.fallback] += 1
            if self.cache is not None:
                self.cache.put_many((keys[i], asdict(results[i])) for i in todo)
        if self.truncated_passages:
            log.warning(
                "%d passages truncated to fit the context of %d tokens",
                self.truncated_passages,
                self.engine.context_length,
            )
        return results  # type: ignore[return-value]

    def _forget_engine_state(self) -> None:
        """Clear what the engine kept from earlier calls (llama.cpp's KV cache), so that a
        batch's scores depend on that batch only."""
        reset = getattr(self.engine, "reset", None)
        if reset is not None:
            reset()

    def _score_prompts(self, prompts: list[str]) -> list[Rank1Score]:
        if self.thinking_budget == 0:
            reasonings = [""] * len(prompts)
            scores: list[float | None] = [None] * len(prompts)
            tokens = [0] * len(prompts)
        else:
            generations = self.engine.generate_detailed(
                prompts, self.thinking_budget, rs.STOP_STRINGS
            )
            reasonings = [g.text for g in generations]
            scores = [rs.p_true(g.final_logprobs, self.true_id, self.false_id) for g in generations]
            tokens = [len(g.token_ids) for g in generations]
        retry = [i for i, s in enumerate(scores) if s is None]
        forced: dict[int, float | None] = {}
        if retry:
            logprobs = self.engine.next_token_logprobs(
                [rs.forced_prompt(prompts[i], reasonings[i]) for i in retry],
                [rs.TRUE_TOKEN, rs.FALSE_TOKEN],
            )
            forced = {
                i: rs.p_true(lp, rs.TRUE_TOKEN, rs.FALSE_TOKEN)
                for i, lp in zip(retry, logprobs, strict=True)
            }
        out = []
        for i, reasoning in enumerate(reasonings):
            if scores[i] is not None:
                out.append(Rank1Score(scores[i], reasoning, "none", tokens[i]))
            elif forced.get(i) is not None:
                # budget 0 is the direct path, not a failure
                out.append(
                    Rank1Score(
                        forced[i],
                        reasoning,
                        "none" if self.thinking_budget == 0 else "rethink",
                        tokens[i],
                    )
                )
            else:
                out.append(Rank1Score(rs.DEFAULT_SCORE, reasoning, "default", tokens[i]))
        return out

    # ---------------------------------------------------------------- reranking

    def rerank(
        self,
        query: str | Query,
        candidates: Sequence[Hit] | Sequence[Document],
        k: int | None = None,
    ) -> list[Hit]:
        """Rescore `candidates` (Hits with documents, or Documents); the first-stage score and
        rank stay in metadata, with p_true, the reasoning and the fallback used. Top `k` (all
        by default), best first."""
        text = query.text if isinstance(query, Query) else query
        if isinstance(query, Query) and query.instruction and not self.instruction:
            text = rs.query_with_instruction(text, query.instruction)
        hits = as_hits(candidates)
        scores = self.score([(text, rs.passage_text(h.document)) for h in hits])
        details = [
            {
                "p_true": s.p_true,
                "reasoning": s.reasoning,
                "fallback": s.fallback,
                "thinking_tokens": s.thinking_tokens,
            }
            | ({"truncated": True} if s.truncated else {})
            for s in scores
        ]
        return apply_scores(hits, [s.p_true for s in scores], details, k)


def _from_record(record: Mapping) -> Rank1Score:
    """A cached score back as a Rank1Score."""
    return Rank1Score(
        record["p_true"],
        record["reasoning"],
        record["fallback"],
        record.get("thinking_tokens", 0),
        record.get("truncated", False),
    )
