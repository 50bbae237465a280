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

Long passages, two policies (`passage_policy`):
  "truncate" (default): the passage is cut so that the whole thinking budget fits the context;
      a budget that leaves less than MIN_PASSAGE_ROOM tokens for query and passage is lowered to
      leave that much (logged, and recorded in the settings as thinking_budget_used);
  "reference": as orionw/rank1, the whole passage is kept and the context ends the thinking
      (a passage is cut only when the prompt alone would not fit the context).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from kirag.rerank import rank1_scoring as rs
from kirag.rerank.base import BaseReranker, apply_scores, as_hits
from kirag.rerank.cache import ScoreCache, config_fingerprint, pair_key
from kirag.rerank.records import FALLBACKS, Rank1Judgement

from kirag.core.cost import CostMeter, say
from kirag.core.progress import progress
from kirag.core.ranges import COUNT, COUNT_OR_ZERO
from kirag.core.settings import check_settings, keyed, setting
from kirag.errors import ContextError
from kirag.io.docstore import DocStore
from kirag.llm.base import CONTEXT_MARGIN, LLMEngine, room_for_text, single_token_id
from kirag.models import DEFAULT_LLM
from kirag.types import Document, Hit, Query

log = logging.getLogger(__name__)

# the Rank1 reference's thinking budget, sized for a GPU (minutes per pair on a CPU)
REFERENCE_BUDGET = 8192
PASSAGE_POLICIES = ("truncate", "reference")
# tokens the "truncate" policy keeps for query + passage (or half the context, if smaller)
MIN_PASSAGE_ROOM = 512


@dataclass(frozen=True)
class Rank1Settings:
    """How Rank1 judges a pair (the engine and model are chosen apart: EngineSettings)."""

    thinking_budget: int = setting(
        REFERENCE_BUDGET,
        f"max reasoning tokens (0: answer at once); the reference's {REFERENCE_BUDGET} is "
        "sized for a GPU (minutes per pair on a CPU: try 64-512 there; the run prints its "
        "estimated time once it has started). With passage policy truncate a budget that leaves "
        f"under {MIN_PASSAGE_ROOM} tokens of the context for query and passage is lowered to "
        "leave that (said in a warning and in the settings)",
        range=COUNT_OR_ZERO,
    )
    # a pair's score moves with its batch-mates on llama.cpp (float rounding): a run's work
    # folder is keyed by it, the score cache is not (scores are reused across batch sizes)
    batch_size: int = setting(8, "pairs per engine call", range=COUNT, affects="rounding")
    instruction: str | None = setting(
        None, "appended to every query (Rank1 instructions)", in_text=True
    )
    dataset_prompt: str | None = setting(
        None,
        "the Rank1 reference's prompt for a dataset, by name (scifact, climatefever, "
        "treccovid, arguana, dbpedia, fiqa2018, nfcorpus, touche2020, scidocs, "
        "brightretrieval[_aops|_theoremqa_questions|_theoremqa_theorems|_leetcode|_pony]), or "
        "a prompt text with FILL_QUERY_HERE wrapping each query",
        in_text=True,
    )
    passage_policy: str = setting(
        "truncate",
        "long passages: truncate (cut the passage so the whole thinking budget fits) or "
        "reference (orionw/rank1: keep the whole passage, the context ends the thinking)",
        choices=PASSAGE_POLICIES,
    )

    def __post_init__(self) -> None:
        check_settings(self)


DEFAULTS = Rank1Settings()

# the name of a judgement before the typed records (kirag.rerank.records): still exported
Rank1Score = Rank1Judgement


class Rank1Reranker(BaseReranker):
    """Reranks with any LLMEngine (transformers, llama.cpp, vLLM). Implements the Reranker
    protocol: `rerank(query, hits_or_documents, k)` and `rerank_run(run, queries, docstore, k)`."""

    settings_class = Rank1Settings

    def __init__(
        self,
        model: str = DEFAULT_LLM,
        engine: str | LLMEngine = "auto",
        thinking_budget: int = DEFAULTS.thinking_budget,
        batch_size: int = DEFAULTS.batch_size,
        instruction: str | None = DEFAULTS.instruction,
        dataset_prompt: str | None = DEFAULTS.dataset_prompt,
        cache: ScoreCache | str | Path | None = None,
        engine_options: Mapping | None = None,
        passage_policy: str = DEFAULTS.passage_policy,
    ):
        """The keyword settings are Rank1Settings' fields (their defaults and ranges are there).
        `dataset_prompt`: a name of the reference's per-dataset prompts ("scifact", "arguana",
        ... see `rank1_scoring.dataset_prompt_names()`) or a prompt text with FILL_QUERY_HERE."""
        self.options = Rank1Settings(
            thinking_budget, batch_size, instruction, dataset_prompt, passage_policy
        )
        dataset_prompt = rs.resolve_dataset_prompt(dataset_prompt)
        if isinstance(engine, str):
            from kirag.llm.factory import load_engine

            engine = load_engine(model, engine, **dict(engine_options or {}))
        self.engine = engine
        self.dataset_prompt = dataset_prompt  # resolved: the prompt text, not its name
        self.true_id = single_token_id(engine, rs.TRUE_TOKEN)
        self.false_id = single_token_id(engine, rs.FALSE_TOKEN)
        self.cache = ScoreCache(cache) if isinstance(cache, str | Path) else cache
        self._overhead = engine.count_tokens(rs.build_prompt("", "")) + 1
        self.thinking_budget = self._fit_budget(thinking_budget)  # what fits the context
        self.settings = {
            "scorer": "rank1",
            "model": engine.model_id,
            "engine": engine.name,
            "precision": engine_precision(engine),
            "context_length": engine.context_length,
            "prompt": rs.prompt_template(),
            # the rest is in the prompt text each pair's key hashes
            **keyed(self.options, rounding=False, text=False),
            "thinking_budget_used": self.thinking_budget,
        }
        server = getattr(engine, "server_info", None)
        if server:  # a served model: the server's kind, version and model name
            self.settings["server"] = server
        self.fingerprint = config_fingerprint(self.settings)
        self.truncated_passages = 0
        self.fallbacks = dict.fromkeys(FALLBACKS, 0)
        self._meter: CostMeter | None = None  # the estimate of the run being reranked
        self._tokens_bar = None  # its thinking tokens, as they are generated
        self._cost_said = False  # the estimate of single `rerank` calls was said

    @property
    def batch_size(self) -> int:
        return self.options.batch_size

    @property
    def instruction(self) -> str | None:
        return self.options.instruction

    @property
    def passage_policy(self) -> str:
        return self.options.passage_policy

    def _fit_budget(self, budget: int) -> int:
        """The thinking budget that works with this context: "truncate" lowers one that would
        leave less than MIN_PASSAGE_ROOM tokens for query and passage (and says so); with
        "reference" the context itself ends long thoughts (said too)."""
        context = self.engine.context_length
        room = min(MIN_PASSAGE_ROOM, context // 2)
        most = context - self._overhead - CONTEXT_MARGIN - room
        if budget <= most:
            return budget
        if self.passage_policy == "reference":
            log.warning(
                "thinking budget %d: the %d-token context ends thoughts earlier (at most %d "
                "tokens, less the query and passage; passage policy 'reference')",
                budget,
                context,
                context - self._overhead,
            )
            return budget
        fitted = max(0, most)
        log.warning(
            "thinking budget %d does not fit the %d-token context with a passage: using %d, "
            "which leaves %d tokens for query and passage (raise the context, e.g. --context, "
            "or choose --passage-policy reference)",
            budget,
            context,
            fitted,
            room,
        )
        return fitted

    def query_text(self, query: str | Query) -> str:
        """The query string in the prompt: the reranker's instruction (else the query's own),
        then the dataset prompt, as the reference applies them."""
        text = query.text if isinstance(query, Query) else query
        instruction = self.instruction
        if instruction is None and isinstance(query, Query):
            instruction = query.instruction
        return rs.query_with_instruction(text, instruction, self.dataset_prompt)

    def check_queries(self, queries: Mapping[str, str | Query]) -> None:
        """A clear error naming the first query that leaves no room for a passage in the context
        (checked before any pair is scored)."""
        budget = self.thinking_budget if self.passage_policy == "truncate" else 0
        context = self.engine.context_length
        for qid, query in queries.items():
            tokens = self.engine.count_tokens(self.query_text(query))
            if self._overhead + tokens + budget + CONTEXT_MARGIN < context:
                continue
            wrapped = " with its dataset prompt" if self.dataset_prompt else ""
            thinking = f" and a thinking budget of {budget}" if budget else ""
            fixes = "shorten it" + (", lower thinking_budget" if budget else "")
            raise ContextError(
                f"query {qid!r} is {tokens} tokens{wrapped}: with the Rank1 prompt{thinking} "
                f"it leaves no room for a passage in the {context}-token context; {fixes} "
                "or raise context_length (an engine option)",
                parameters=("thinking_budget", "context_length"),
            )

    # ---------------------------------------------------------------- scoring

    def _fit_passage(self, query: str, passage: str) -> tuple[str, bool]:
        budget = self.thinking_budget if self.passage_policy == "truncate" else 0
        used = self._overhead + self.engine.count_tokens(query) + budget
        room = room_for_text(self.engine, used, "the prompt around the passage with its query")
        if self.engine.count_tokens(passage) <= room:
            return passage, False
        return self.engine.truncate(passage, room), True

    def score(
        self, pairs: Sequence[tuple[str, str]], query_ids: Sequence[str] | None = None
    ) -> list[Rank1Judgement]:
        """Scores for (query, passage) pairs in fixed batches, reusing cached scores.

        A pair's score depends on its batch-mates (llama.cpp's quantized kernels and padding
        move the numbers with how prompts are packed), so the batches are a pure function of
        `pairs` alone: all pairs, cached or not, sorted by prompt length and cut every
        `batch_size`. A batch whose pairs are all cached is skipped whole; any other is scored
        whole, from an engine with nothing kept from earlier batches. A resumed run therefore
        gives exactly the scores of an uninterrupted one."""
        return self._score([(self.query_text(q), p) for q, p in pairs])

    def prompts(self, pairs: Sequence[tuple[str | Query, str]]) -> list[str]:
        """The exact prompts the engine is given for (query, passage) pairs: instruction and
        dataset prompt applied, passage fitted to the context (what domain calibration of a
        quantized model runs on, see kirag.llm.quantize)."""
        texts = [(self.query_text(query), passage) for query, passage in pairs]
        return [rs.build_prompt(q, self._fit_passage(q, p)[0]) for q, p in texts]

    def _score(self, pairs: Sequence[tuple[str, str]]) -> list[Rank1Judgement]:
        """`score` for pairs whose query is already the prompt's query string."""
        keys = [pair_key(self.fingerprint, query, passage) for query, passage in pairs]
        cached = [self.cache.get(key) if self.cache is not None else None for key in keys]
        fitted = [self._fit_passage(query, passage) for query, passage in pairs]
        prompts = [
            rs.build_prompt(query, text)
            for (query, _), (text, _) in zip(pairs, fitted, strict=True)
        ]
        results: list[Rank1Judgement | None] = [
            None if record is None else Rank1Judgement.from_metadata(record) for record in cached
        ]
        # batches of similar length (a batch is padded to its longest prompt), ties in order
        order = sorted(range(len(pairs)), key=lambda i: (len(prompts[i]), i))
        pending = sum(record is None for record in cached)
        meter = self._meter or self.cost_meter(pending, once=True)
        meter.skip(len(pairs) - pending)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            todo = [i for i in batch if cached[i] is None]
            if not todo:
                continue
            self._forget_engine_state()
            scores = self._score_prompts([prompts[i] for i in batch])
            thought = sum(scores[batch.index(i)].thinking_tokens for i in todo)
            if self._tokens_bar is not None:
                self._tokens_bar.update(thought)
            meter.update(len(todo), thought if self.thinking_budget else None)
            for i, score in zip(batch, scores, strict=True):
                if cached[i] is not None:
                    continue  # scored by this same batch before a crash: the same numbers
                score = replace(score, truncated=fitted[i][1])
                self.truncated_passages += score.truncated
                results[i] = score
                self.fallbacks[score.fallback] += 1
            if self.cache is not None:
                self.cache.put_many((keys[i], results[i].to_record()) for i in todo)
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

    def _score_prompts(self, prompts: list[str]) -> list[Rank1Judgement]:
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
        forced_prompts = {
            i: rs.forced_prompt(prompts[i], reasonings[i])
            for i, s in enumerate(scores)
            if s is None
        }
        # a thought the context ended may leave no room for the forced answer: the reference's
        # vLLM refuses that prompt and scores 0.5, and so does this
        retry = [
            i
            for i, p in forced_prompts.items()
            if self.engine.count_tokens(p) + 1 <= self.engine.context_length
        ]
        forced: dict[int, float | None] = {}
        if retry:
            logprobs = self.engine.next_token_logprobs(
                [forced_prompts[i] for i in retry], [rs.TRUE_TOKEN, rs.FALSE_TOKEN]
            )
            forced = {
                i: rs.p_true(lp, rs.TRUE_TOKEN, rs.FALSE_TOKEN)
                for i, lp in zip(retry, logprobs, strict=True)
            }
        out = []
        for i, reasoning in enumerate(reasonings):
            if scores[i] is not None:
                out.append(Rank1Judgement(scores[i], reasoning, "none", tokens[i]))
            elif forced.get(i) is not None:
                # budget 0 is the direct path, not a failure
                out.append(
                    Rank1Judgement(
                        forced[i],
                        reasoning,
                        "none" if self.thinking_budget == 0 else "rethink",
                        tokens[i],
                    )
                )
            else:
                out.append(Rank1Judgement(rs.DEFAULT_SCORE, reasoning, "default", tokens[i]))
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
        text = self.query_text(query)
        hits = as_hits(candidates)
        scores = self._score([(text, rs.passage_text(h.document)) for h in hits])
        details = [s.to_metadata() for s in scores]
        return apply_scores(hits, [s.p_true for s in scores], details, k)

    def rerank_run(
        self,
        run: Mapping[str, Sequence[Hit]],
        queries: Mapping[str, Query],
        corpus: DocStore,
        k: int | None = None,
        show_progress: bool = True,
    ) -> dict[str, list[Hit]]:
        """As BaseReranker.rerank_run, after checking that every query of the run fits."""
        self.check_queries({qid: queries[qid] for qid in run if qid in queries})
        self._meter = self.cost_meter(sum(len(hits[:k] if k else hits) for hits in run.values()))
        if self.thinking_budget and show_progress:
            self._tokens_bar = progress(desc="Rank1 thinking", unit="token")
        try:
            return super().rerank_run(run, queries, corpus, k, show_progress)
        finally:
            if self._tokens_bar is not None:
                self._tokens_bar.close()
            self._meter = self._tokens_bar = None

    def cost_meter(self, pairs: int, once: bool = False) -> CostMeter:
        """The estimate of scoring `pairs` pairs, said once the first batch is scored: at the
        measured thinking tokens per second, each pair up to the thinking budget. `once`: said
        for the first call of this reranker only (one `rerank` call per query of an app)."""
        faster = "fewer pairs (--k), a GPU engine (--engine vllm)"
        options = {}
        if self.thinking_budget:
            faster = "a lower --thinking-budget (0 scores at once), " + faster
            options = {"unit": "token", "per_item": self.thinking_budget}
        if once:
            options["write"] = self._say_once
        return CostMeter("Rank1 reranking", pairs, "pair", faster, **options)

    def _say_once(self, line: str) -> None:
        if not self._cost_said:
            self._cost_said = True
            say(line)


def engine_precision(engine: LLMEngine) -> str | None:
    """The engine's numeric precision as it describes it (dtype, quantization, KV cache type)."""
    precision = getattr(engine, "precision", None)
    return precision or getattr(engine, "quantize", None) or getattr(engine, "dtype", None)
