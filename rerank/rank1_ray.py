"""Rank1 through Ray Data's vLLM processor (`--ray --engine vllm`): the same prompt, stop
strings, top-20 log-probs and P(true) as Rank1Reranker (rank1_scoring), with the reference's
"rethink" fallback as a second pass (the thought closed with "</think>", one token restricted
to true/false) and 0.5 when that fails too. The whole run is one dataset (vLLM batches it as
the reference does). Generation on a GPU is unverified here; building the processors is tested."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kirag.rerank import rank1_scoring as rs
from kirag.rerank.base import BaseReranker, apply_scores, with_documents
from kirag.rerank.rank1 import REFERENCE_BUDGET
from kirag.rerank.records import Rank1Judgement

from kirag.errors import InputError
from kirag.io.docstore import DocStore
from kirag.scale.llm import VLLMStage, final_logprobs, run_rows
from kirag.types import Hit, Query


class Rank1Prompts:
    """Preprocess: a (query, passage) row -> the Rank1 prompt and greedy sampling up to the
    thinking budget, stopping at "</think> true|false", with the top-20 log-probs."""

    def __init__(self, thinking_budget: int):
        self.thinking_budget = thinking_budget

    def __call__(self, row: Mapping[str, Any]) -> dict[str, Any]:
        prompt = rs.build_prompt(row["query"], row["passage"])
        if self.thinking_budget == 0:  # close the think block at once and score directly
            prompt = rs.forced_prompt(prompt, "")
        return {
            **row,
            "prompt": prompt,
            "sampling_params": {
                "temperature": 0.0,
                "max_tokens": max(1, self.thinking_budget),
                "stop": list(rs.STOP_STRINGS),
                "include_stop_str_in_output": True,
                "logprobs": 20,
            },
        }


class ForcedPrompts:
    """Preprocess of the fallback pass: the thought closed with "</think>"; one token, only
    " true" or " false" allowed, their log-probs returned."""

    def __init__(self, true_id: int, false_id: int):
        self.true_id, self.false_id = true_id, false_id

    def __call__(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **row,
            "prompt": rs.forced_prompt(row["rank1_prompt"], row["reasoning"]),
            "sampling_params": {
                "temperature": 0.0,
                "max_tokens": 1,
                "logprobs": 2,
                "allowed_token_ids": [self.true_id, self.false_id],
            },
        }


class Rank1Parse:
    """Postprocess: P(true) from the final position's log-probs (None when " true" or " false"
    is missing), the reasoning and the number of thinking tokens."""

    def __init__(self, true_id: int, false_id: int):
        self.true_id, self.false_id = true_id, false_id

    def __call__(self, row: Mapping[str, Any]) -> dict[str, Any]:
        score = rs.p_true(final_logprobs(row), self.true_id, self.false_id)
        keep = {k: row[k] for k in ("_row", "qid", "doc_id", "query", "passage") if k in row}
        return {
            **keep,
            "rank1_prompt": rs.build_prompt(row["query"], row["passage"]),
            "reasoning": row.get("generated_text", ""),
            "thinking_tokens": int(row.get("num_generated_tokens", 0)),
            "p_true": -1.0 if score is None else score,
        }


class RayVLLMRank1Reranker(BaseReranker):
    """A Reranker whose Rank1 scoring runs on a Ray cluster through vLLM. `true_id` / `false_id`
    are the model's token ids of " true" and " false" (see `answer_token_ids`)."""

    def __init__(
        self,
        stage: VLLMStage,
        true_id: int,
        false_id: int,
        thinking_budget: int = REFERENCE_BUDGET,
        instruction: str | None = None,
    ):
        self.stage = stage
        self.true_id, self.false_id = true_id, false_id
        self.thinking_budget = thinking_budget
        self.instruction = instruction
        self.generate = stage.processor(Rank1Prompts(thinking_budget), self._parse)
        self.force = stage.processor(ForcedPrompts(true_id, false_id), self._parse)
        self.settings = {
            "scorer": "rank1",
            "model": stage.model,
            "engine": "ray-vllm",
            "thinking_budget": thinking_budget,
            "passage_policy": "reference",
        }

    @property
    def _parse(self) -> Rank1Parse:
        return Rank1Parse(self.true_id, self.false_id)

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[Rank1Judgement]:
        """Rank1 scores of (query, passage) pairs, in order: one generation pass, one forced
        pass for the pairs whose final position lacks " true" or " false"."""
        rows = run_rows(self.generate, [{"query": q, "passage": p} for q, p in pairs])
        retry = [r for r in rows if r["p_true"] < 0]
        forced = {}
        if retry:
            again = run_rows(
                self.force, [{k: v for k, v in r.items() if k != "_row"} for r in retry]
            )
            forced = {retry[i]["_row"]: r["p_true"] for i, r in enumerate(again)}
        scores = []
        for row in rows:
            if row["p_true"] >= 0:
                fallback, p = "none", row["p_true"]
            elif forced.get(row["_row"], -1.0) >= 0:
                fallback, p = "rethink", forced[row["_row"]]
            else:
                fallback, p = "default", rs.DEFAULT_SCORE
            scores.append(Rank1Judgement(p, row["reasoning"], fallback, row["thinking_tokens"]))
        return scores

    def rerank(self, query, candidates, k=None):
        hits = list(candidates)
        return self.rerank_run({"q": hits}, {"q": _as_query(query)}, None, k)["q"]

    def rerank_run(
        self,
        run: Mapping[str, Sequence[Hit]],
        queries: Mapping[str, Query],
        corpus: DocStore | None,
        k: int | None = None,
        show_progress: bool = True,
    ) -> dict[str, list[Hit]]:
        """Every pair of the run scored as one dataset, then ranked per query."""
        unknown = [q for q in run if q not in queries]
        if unknown:
            raise InputError(f"{len(unknown)} queries of the run are not in the topics")
        groups = {
            qid: with_documents(hits[:k] if k else hits, corpus, qid) if corpus else list(hits)
            for qid, hits in run.items()
        }
        pairs = [
            (
                rs.query_with_instruction(queries[qid].text, self.instruction),
                rs.passage_text(h.document),
            )
            for qid, hits in groups.items()
            for h in hits
        ]
        scores = iter(self.score_pairs(pairs))
        out = {}
        for qid, hits in groups.items():
            got = [next(scores) for _ in hits]
            details = [s.to_metadata() for s in got]
            out[qid] = apply_scores(hits, [s.p_true for s in got], details)
        return out


def _as_query(query: str | Query) -> Query:
    return query if isinstance(query, Query) else Query("q", query)


def answer_token_ids(model: str) -> tuple[int, int]:
    """The ids of " true" and " false" in `model`'s tokenizer (a local folder or hub id)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    ids = []
    for token in (rs.TRUE_TOKEN, rs.FALSE_TOKEN):
        encoded = tokenizer.encode(token, add_special_tokens=False)
        if len(encoded) != 1:
            raise InputError(f"{model}: {token!r} is not one token ({encoded}); not a Rank1 model")
        ids.append(encoded[0])
    return ids[0], ids[1]
