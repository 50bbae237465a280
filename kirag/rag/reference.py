"""KiRAG as the paper defines it (`mode="reference"`): the retrieval loop of jyfang6/kirag
(knowledge_graph/models.py, `KiRAG.retrieve`), step by step, every number a parameter with the
reference's default.

Each turn t (at most `num_turns` = 5; before turn t > 1 it stops when every chain's last step is
empty):
1. dense top-`topk` (10) documents for the question (turn 1) or "question + ' ' + last step";
   documents accumulate over turns, and the candidate triples are all triples of all documents
   retrieved so far;
2. the aligner scores them against "{question}\\nknowledge triples: {'. '.join(steps)}." and its
   top `num_candidate_triples` (20) enter the pool, each keeping its best score over turns;
3. the constructor LLM sees the pool's best `max_choices` (100) triples, one `<h; r; t>` per line,
   then "\\n\\nQuestion: …", under a system message with the 5 demonstrations most similar to the
   question; its assistant turn is prefilled "Thought: " + ". ".join(steps); 64 new tokens;
4. the first `<…>` it generates (else its first sentence, else "") is the chain's next step;
   +0.5 to the pool triple with the highest token F1 to that step if ≥ 0.6, and, when the step
   says "answer is: X", +0.5 to the first pool triple (best first) whose text contains X.
Documents are ranked by the best accumulated score among their pool triples.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

from kirag.answers import token_f1
from kirag.errors import SettingsError
from kirag.knowledge.demonstrations import ChainDemonstration
from kirag.knowledge.triple_index import TripleIndex
from kirag.knowledge.triples import Triple
from kirag.rag.aligner import aligner_query
from kirag.rag.chains import Chain, ChainResult, TurnTrace
from kirag.rag.constructor import MATCH_F1, PICK_BONUS
from kirag.types import Hit

CONSTRUCTOR_INSTRUCTION = (
    "Follow the examples to answer the input question by reasoning step-by-step. "
    "Output both reasoning steps and the answer."
)
_TRIPLE = re.compile(r"<([^>]*)>")
_PLACEHOLDERS = ("head entity", "tail entity")


@dataclass(frozen=True)
class ReferenceSettings:
    """The reference's numbers (jyfang6/kirag retrieve.py and KiRAG's constructor defaults)."""

    num_turns: int = 5
    topk: int = 10
    num_candidate_triples: int = 20
    max_choices: int = 100
    max_new_tokens: int = 64
    num_demonstrations: int = 5
    num_beams: int = 1
    bonus: float = PICK_BONUS
    match_f1: float = MATCH_F1

    def __post_init__(self) -> None:
        if self.num_beams != 1:  # the one check, before any model is loaded
            raise SettingsError("reference mode implements the reference's beam 1 only (--beam 1)")


def constructor_messages(
    question: str, candidates: Sequence[str], demonstrations: Sequence[ChainDemonstration]
) -> list[dict[str, str]]:
    """System (instruction + demonstrations) and user (candidate lines + question) messages."""
    system = CONSTRUCTOR_INSTRUCTION
    if demonstrations:
        system += "\n\nExamples:\n\n" + "\n\n".join(d.text() for d in demonstrations)
    user = ("\n".join(candidates) + f"\n\nQuestion: {question}").strip()
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def assistant_prefill(steps: Sequence[str]) -> str:
    """The start of the constructor's answer: "Thought: " and the chain so far."""
    return "Thought: " + ". ".join(steps)


def parse_triple_texts(text: str) -> list[str]:
    """Every `<…>` in `text`, stripped inside, placeholders dropped (the reference's parser)."""
    return [
        f"<{inner.strip()}>"
        for inner in _TRIPLE.findall(text)
        if not any(p in inner for p in _PLACEHOLDERS)
    ]


@cache
def _splitter():
    from kirag.knowledge.sentences import SentenceSplitter

    return SentenceSplitter("blank")


def first_sentence(text: str) -> str:
    """The first sentence (spaCy's rule-based sentencizer; the reference uses NLTK punkt)."""
    return _splitter().split(text)[0]


def next_step(generated: str) -> str:
    """The chain's next step from a generation: its first triple, else first sentence, else ""."""
    text = generated.strip().lstrip(".,;").strip()
    triples = parse_triple_texts(text)
    if triples:
        return triples[0]
    return first_sentence(text) if text else ""


def apply_bonuses(
    scores: dict[int, float],
    texts: dict[int, str],
    step: str,
    bonus: float = PICK_BONUS,
    match_f1: float = MATCH_F1,
) -> list[int]:
    """Add the reference's bonuses for one generated step to the pool `scores` (in place);
    returns the ids that received one. The pool is read best first, ties in insertion order."""
    lowered = step.lower()
    if not step or "answer is: yes" in lowered or "answer is: no" in lowered:
        return []
    ranked = sorted(scores, key=lambda i: -scores[i])
    rewarded: list[int] = []
    if parse_triple_texts(step) and ranked:
        f1s = [token_f1(step, texts[i]) for i in ranked]
        best = max(f1s)
        if best >= match_f1:
            rewarded.append(ranked[f1s.index(best)])
            scores[rewarded[-1]] += bonus
    if "answer is:" in step:
        answer = step.split("answer is:")[1].strip().lower()
        for i in ranked:
            if answer in texts[i].lower():
                scores[i] += bonus
                rewarded.append(i)
                break
    return rewarded


def document_scores(scores: dict[int, float], doc_of: dict[int, str]) -> list[tuple[str, float]]:
    """Each document's score is the best accumulated score among its pool triples; best first."""
    best: dict[str, float] = {}
    for i, score in scores.items():
        best[doc_of[i]] = max(best.get(doc_of[i], -1e9), score)
    return sorted(best.items(), key=lambda item: -item[1])


def should_stop(chains: Sequence[Sequence[str]], turn: int) -> bool:
    """Before turn `turn` (1-based): stop when every chain's last step is empty (never at 1)."""
    return turn > 1 and all(c and len(c[-1]) == 0 for c in chains)


def stated_answer(steps: Sequence[str]) -> str | None:
    """The answer a chain states ("… answer is: X"), if any."""
    for step in reversed(steps):
        if "answer is:" in step:
            return step.split("answer is:")[1].strip().rstrip(".").strip() or None
    return None


@dataclass
class ReferenceState:
    """What accumulates over the turns of one question: documents, pool scores, chains."""

    doc_ids: list[str] = field(default_factory=list)
    scores: dict[int, float] = field(default_factory=dict)
    triples: dict[int, Triple] = field(default_factory=dict)
    chains: list[list[str]] = field(default_factory=list)


class ReferenceRetriever:
    """The reference loop over a triple index: its dense document index, an aligner, a
    constructor engine and a demonstration selector."""

    def __init__(
        self,
        index: TripleIndex,
        engine,
        aligner,
        selector,
        doc_retriever=None,
        settings: ReferenceSettings | None = None,
    ):
        self.settings = settings or ReferenceSettings()
        self.index = index
        self.engine = engine
        self.aligner = aligner
        self.selector = selector
        self.doc_retriever = doc_retriever or index.document_retrievers().get("dense")
        if self.doc_retriever is None:
            from kirag.errors import KiragError

            raise KiragError(f"{index.path}: reference mode needs the index's dense document index")
        self._vectors: dict[int, object] = {}
        self.calls = 0

    def doc_queries(self, question: str, chains: Sequence[Sequence[str]], turn: int) -> list[str]:
        """Turn 1: the question; later: question + " " + the chain's last step."""
        if turn == 1:
            return [question] * len(chains)
        return [f"{question} {c[-1]}" if c else question for c in chains]

    def add_documents(self, state: ReferenceState, queries: Sequence[str]) -> list[int]:
        """Retrieve for each query, accumulate the documents, return all their triples' ids."""
        for query in queries:
            for hit in self.doc_retriever.search(query, self.settings.topk):
                if hit.doc_id not in state.doc_ids:
                    state.doc_ids.append(hit.doc_id)
        return self.index.positions_of_documents(state.doc_ids)

    def align(self, state: ReferenceState, question: str, positions: Sequence[int]) -> None:
        """The aligner's top `num_candidate_triples` per chain enter the pool (best score kept)."""
        import numpy as np

        missing = [p for p in positions if p not in self._vectors]
        if missing:
            triples = self.index.triples(missing)
            for p, t, v in zip(
                missing,
                triples,
                self.aligner.encode_passages([t.text for t in triples]),
                strict=True,
            ):
                self._vectors[p] = v
                state.triples.setdefault(p, t)
        for p in positions:
            if p not in state.triples:
                state.triples[p] = self.index.triples([p])[0]
        if not positions:
            return
        matrix = np.stack([self._vectors[p] for p in positions])
        queries = self.aligner.encode_queries([aligner_query(question, c) for c in state.chains])
        for query in queries:
            scores = matrix @ query
            top = np.argsort(-scores, kind="stable")[: self.settings.num_candidate_triples]
            for i in top:
                p = positions[int(i)]
                state.scores[p] = max(state.scores.get(p, -1e9), float(scores[i]))

    def candidates(self, state: ReferenceState) -> list[int]:
        """The pool, best first, cut to what the constructor sees."""
        ranked = sorted(state.scores, key=lambda p: -state.scores[p])
        return ranked[: self.settings.max_choices]

    def prompts(
        self, question: str, state: ReferenceState, shown: Sequence[int], demos
    ) -> list[str]:
        lines = [state.triples[p].text for p in shown]
        messages = constructor_messages(question, lines, demos)
        template = self.engine.apply_chat_template(messages)
        return [template + assistant_prefill(chain) for chain in state.chains]

    def retrieve(self, question: str, k: int = 10) -> ChainResult:
        s = self.settings
        self._vectors = {}  # triple vectors, kept for one question's turns
        state = ReferenceState(chains=[[] for _ in range(s.num_beams)])
        demos = self.selector.select(question) if self.selector is not None else []
        trace: list[TurnTrace] = []
        calls_before = self.calls
        for turn in range(1, s.num_turns + 1):
            if should_stop(state.chains, turn):
                break
            positions = self.add_documents(state, self.doc_queries(question, state.chains, turn))
            self.align(state, question, positions)
            shown = self.candidates(state)
            outputs = self.engine.generate(
                self.prompts(question, state, shown, demos), max_tokens=s.max_new_tokens
            )
            self.calls += len(outputs)
            texts = {p: t.text for p, t in state.triples.items() if p in state.scores}
            for chain, output in zip(state.chains, outputs, strict=True):
                step = next_step(output)
                chain.append(step)
                rewarded = apply_bonuses(state.scores, texts, step, s.bonus, s.match_f1)
                trace.append(
                    TurnTrace(
                        turn,
                        chain[:-1],
                        aligner_query(question, chain[:-1]),
                        [(state.triples[p].text, round(state.scores[p], 4)) for p in shown[:10]],
                        decision=output,
                        picked=state.triples[rewarded[0]].text if rewarded else None,
                        answer=stated_answer([step]),
                    )
                )
        return ChainResult(
            question, self._chains(state), self._hits(state, k), trace, self.calls - calls_before
        )

    def _chains(self, state: ReferenceState) -> list[Chain]:
        """Each chain's steps, with the pool triple each step matched (when one did)."""
        out = []
        for steps in state.chains:
            chain = Chain(finished=True, answer=stated_answer(steps), steps=list(steps))
            for step in steps:
                match = self._matched(state, step)
                if match is not None:
                    chain.positions.append(match)
                    chain.triples.append(state.triples[match])
                    chain.step_scores.append(state.scores[match])
            out.append(chain)
        return out

    def _matched(self, state: ReferenceState, step: str) -> int | None:
        if not parse_triple_texts(step) or not state.scores:
            return None
        ranked = sorted(state.scores, key=lambda p: -state.scores[p])
        f1s = [token_f1(step, state.triples[p].text) for p in ranked]
        best = max(f1s)
        return ranked[f1s.index(best)] if best >= self.settings.match_f1 else None

    def _hits(self, state: ReferenceState, k: int) -> list[Hit]:
        doc_of = {p: state.triples[p].doc_id for p in state.scores}
        ranked = document_scores(state.scores, doc_of)[:k]
        documents = self.index.docstore.get_many([d for d, _ in ranked])
        return [
            Hit(d, score, rank, doc)
            for rank, ((d, score), doc) in enumerate(zip(ranked, documents, strict=True), 1)
        ]
