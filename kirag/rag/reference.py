"""KiRAG as the paper defines it (`mode="reference"`): the retrieval loop of jyfang6/kirag
(knowledge_graph/models.py, `KiRAG.retrieve`), step by step, every number a parameter with the
reference's default.

Each turn t (at most `max_turns` = 5; before turn t > 1 it stops when every chain's last step is
empty):
1. dense top-`topk` (10) documents for the question (turn 1) or "question + ' ' + last step";
   documents accumulate over turns, and the candidate triples are all triples of all documents
   retrieved so far;
2. the aligner scores them against "{question}\\nknowledge triples: {'. '.join(steps)}." and its
   top `num_candidates` (20) enter the pool, each keeping its best score over turns;
3. the constructor LLM sees the pool's best `max_choices` (100) triples, one `<h; r; t>` per line,
   then "\\n\\nQuestion: …", under a system message with the 5 demonstrations most similar to the
   question; its assistant turn is prefilled "Thought: " + ". ".join(steps); 64 new tokens;
4. the first `<…>` it generates (else its first sentence by NLTK punkt, else "") is the chain's
   next step; for a bracketed step, +0.5 to the pool triple with the highest token F1 to it if
   ≥ 0.6 (when none reaches 0.6 nothing more happens for that step), and, when the step says
   "answer is: X", +0.5 to the first pool triple (best first) whose text contains X.
Documents are ranked by the best accumulated score among their pool triples.

Candidates are read in the reference's order: documents by their best dense score so far (ties
in retrieval order), each document's triples in extraction order; the pool is keyed as the
reference keys it (document, sentence, text: identical triples of one sentence are one entry),
entries in first-entry order, so equal scores resolve exactly as there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kirag.core.answers import token_f1
from kirag.core.ranges import COUNT, COUNT_OR_ZERO, FRACTION
from kirag.core.settings import check_settings, setting
from kirag.errors import SettingsError
from kirag.knowledge.demonstrations import ChainDemonstration
from kirag.knowledge.sentences import punkt_sentences
from kirag.knowledge.triple_index import TripleIndex
from kirag.knowledge.triples import Triple, raw_triple_texts
from kirag.llm.base import chat_generate
from kirag.rag.aligner import aligner_query
from kirag.rag.chains import Chain, ChainResult, TurnTrace
from kirag.rag.constructor import MATCH_F1, PICK_BONUS
from kirag.types import Hit

CONSTRUCTOR_INSTRUCTION = (
    "Follow the examples to answer the input question by reasoning step-by-step. "
    "Output both reasoning steps and the answer."
)


@dataclass(frozen=True)
class ReferenceSettings:
    """The reference's numbers (jyfang6/kirag retrieve.py and KiRAG's constructor defaults)."""

    max_turns: int = setting(5, "maximum chain length", range=COUNT, flag="--turns")
    topk: int = setting(10, "dense documents per turn", range=COUNT, cli=False)
    num_candidates: int = setting(
        20, "aligner's top triples entering the pool per turn", range=COUNT, flag="--candidates"
    )
    max_choices: int = setting(100, "pool triples shown to the constructor", range=COUNT, cli=False)
    max_new_tokens: int = setting(
        64, "tokens the constructor writes per turn", range=COUNT, flag="--constructor-max-tokens"
    )
    num_demonstrations: int = setting(
        5, "chain demonstrations in the constructor's prompt", range=COUNT_OR_ZERO
    )
    beam_size: int = setting(
        1, "chains kept per turn (the reference: 1)", range=COUNT, flag="--beam"
    )
    bonus: float = setting(PICK_BONUS, "added to a picked or answering pool triple", cli=False)
    match_f1: float = setting(
        MATCH_F1, "token F1 a step needs to pick a pool triple", range=FRACTION, cli=False
    )

    def __post_init__(self) -> None:
        check_settings(self)
        if self.beam_size != 1:  # the one check, before any model is loaded
            raise SettingsError(
                "reference mode implements the reference's beam 1 only (beam_size=1)",
                parameters=("beam_size",),
            )


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
    return raw_triple_texts(text)


def first_sentence(text: str) -> str:
    """The first sentence, by NLTK's punkt `sent_tokenize` as the reference splits it."""
    sentences = punkt_sentences(text)
    return sentences[0] if sentences else ""


def next_step(generated: str) -> str:
    """The chain's next step from a generation: its first triple, else first sentence, else ""."""
    text = generated.strip().lstrip(".,;").strip()
    triples = parse_triple_texts(text)
    if triples:
        return triples[0]
    return first_sentence(text) if text else ""


def apply_bonuses(
    scores: dict,
    texts: dict,
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
    rewarded: list = []
    if parse_triple_texts(step):
        f1s = [token_f1(step, texts[i]) for i in ranked]
        best = max(f1s, default=0.0)
        if best < match_f1:
            return rewarded  # the reference's `continue`: no answer check for this step
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


def document_scores(scores: dict, doc_of: dict) -> list[tuple[str, float]]:
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


PoolKey = tuple  # (doc_id, sentence_index, text): the reference's triple identity


def pool_key(triple: Triple) -> PoolKey:
    """What makes two candidate triples one pool entry in the reference (the hash of title,
    text and (document, sentence)): the same text from the same sentence of one document."""
    return (triple.doc_id, triple.sentence_index, triple.text)


def top_candidates(scores, k: int) -> list[int]:
    """Indices of the `k` best scores, best first, as the reference takes them: `torch.topk`,
    whose order among equal scores (the same triple text in two documents) is torch's own, not
    the candidates' order — so the same call decides it here."""
    import numpy as np

    from kirag.core.optional import require

    torch = require("torch", "kirag", "reference mode's candidate selection")
    values = torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32))
    if values.numel() == 0:
        return []
    return torch.topk(values, k=min(k, values.numel())).indices.tolist()


@dataclass
class ReferenceState:
    """What accumulates over the turns of one question: documents with their best dense score,
    pool scores (by pool key, in first-entry order), chains, and the pool after each turn."""

    doc_scores: dict[str, float] = field(default_factory=dict)
    scores: dict[PoolKey, float] = field(default_factory=dict)
    triples: dict[PoolKey, Triple] = field(default_factory=dict)
    positions: dict[PoolKey, int] = field(default_factory=dict)  # an index position of each
    chains: list[list[str]] = field(default_factory=list)
    pool_after_turn: list[list[dict]] = field(default_factory=list)
    # aligner vectors of this question's candidates, by index position: encoded per question,
    # in the batches the question alone makes, since a padded batch moves the last float bits
    vectors: dict[int, object] = field(default_factory=dict)

    def ranked_documents(self) -> list[str]:
        """Documents by best dense score, ties in retrieval order (the reference's order)."""
        return sorted(self.doc_scores, key=lambda d: -self.doc_scores[d])

    def ranked_pool(self) -> list[PoolKey]:
        """The pool best first, ties in first-entry order."""
        return sorted(self.scores, key=lambda key: -self.scores[key])

    def pool_record(self) -> list[dict]:
        """The pool now, best first: what an answer's record shows for each turn."""
        return [
            {
                "text": key[2],
                "doc_id": key[0],
                "sentence": key[1],
                "score": self.scores[key],
            }
            for key in self.ranked_pool()
        ]


@dataclass
class _Run:
    """One question's progress through `retrieve_many`."""

    question: str
    state: ReferenceState
    demos: list = field(default_factory=list)
    shown: list = field(default_factory=list)
    asked: int = 0  # generations asked for this turn (one per chain)
    trace: list[TurnTrace] = field(default_factory=list)
    calls: int = 0


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
        self._triples: dict[int, Triple] = {}
        self.calls = 0

    def doc_queries(self, question: str, chains: Sequence[Sequence[str]], turn: int) -> list[str]:
        """Turn 1: the question; later: question + " " + the chain's last step."""
        if turn == 1:
            return [question] * len(chains)
        return [f"{question} {c[-1]}" if c else question for c in chains]

    def add_documents(self, state: ReferenceState, queries: Sequence[str]) -> list[int]:
        """Retrieve for each query, keep each document's best dense score, and return the
        positions of all their triples: documents best first, each in extraction order."""
        for query in queries:
            for hit in self.doc_retriever.search(query, self.settings.topk):
                state.doc_scores[hit.doc_id] = max(
                    state.doc_scores.get(hit.doc_id, -1e9), float(hit.score)
                )
        documents = state.ranked_documents()
        positions = self.index.positions_of_documents(documents)
        self._load(state, positions)
        rank = {d: i for i, d in enumerate(documents)}
        return sorted(positions, key=lambda p: (rank[self._triples[p].doc_id], p))

    def _load(self, state: ReferenceState, positions: Sequence[int]) -> None:
        """Triples read once per call (shared by its questions); aligner vectors per question:
        the aligner's padded batches change the last bits of a vector with the batch's other
        texts (MiniLM: ~1e-7), so sharing them across questions could reorder near-tied pool
        entries and give a question another chain batched than alone."""
        missing = [p for p in positions if p not in self._triples]
        if missing:
            for p, triple in zip(missing, self.index.triples(missing), strict=True):
                self._triples[p] = triple
        unencoded = [p for p in positions if p not in state.vectors]
        if unencoded:
            vectors = self.aligner.encode_passages([self._triples[p].text for p in unencoded])
            for p, vector in zip(unencoded, vectors, strict=True):
                state.vectors[p] = vector

    def align(self, state: ReferenceState, question: str, positions: Sequence[int]) -> None:
        """The aligner's top `num_candidates` per chain enter the pool (best score kept)."""
        import numpy as np

        if not positions:
            return
        matrix = np.stack([state.vectors[p] for p in positions])
        queries = self.aligner.encode_queries([aligner_query(question, c) for c in state.chains])
        for query in queries:
            scores = matrix @ query
            for i in top_candidates(scores, self.settings.num_candidates):
                triple = self._triples[positions[i]]
                key = pool_key(triple)
                state.scores[key] = max(state.scores.get(key, -1e9), float(scores[i]))
                state.triples.setdefault(key, triple)
                state.positions.setdefault(key, positions[i])

    def candidates(self, state: ReferenceState) -> list[PoolKey]:
        """The pool, best first, cut to what the constructor sees."""
        return state.ranked_pool()[: self.settings.max_choices]

    def conversations(
        self, question: str, state: ReferenceState, shown: Sequence[PoolKey], demos
    ) -> tuple[list[list[dict]], list[str]]:
        """The constructor's chat for each chain and its assistant prefill ("Thought: " and the
        chain so far): what the engine continues, locally or through a server's chat path."""
        lines = [state.triples[key].text for key in shown]
        messages = constructor_messages(question, lines, demos)
        return [messages] * len(state.chains), [assistant_prefill(c) for c in state.chains]

    def prompts(
        self, question: str, state: ReferenceState, shown: Sequence[PoolKey], demos
    ) -> list[str]:
        """The prompts an in-process engine continues: chat template + prefill, per chain."""
        conversations, prefills = self.conversations(question, state, shown, demos)
        return [
            self.engine.apply_chat_template(messages) + prefill
            for messages, prefill in zip(conversations, prefills, strict=True)
        ]

    def retrieve(self, question: str, k: int = 10) -> ChainResult:
        return self.retrieve_many([question], k)[0]

    def retrieve_many(self, questions: Sequence[str], k: int = 10) -> list[ChainResult]:
        """The loop for many questions in lockstep: each turn, one engine call with the prompts
        of every question still running (the engine batches them: llama.cpp parallel sequences,
        vLLM, transformers with left padding). Everything else is per question (the aligner
        encodes each question's candidates in the batches `retrieve` makes for it), so with an
        engine whose batched arithmetic equals its one-at-a-time arithmetic each question gets
        the chain `retrieve` gives it alone, bit for bit. On CPU neither transformers nor
        llama.cpp has that property; docs/kirag-reference.md says how often chains differ."""
        s = self.settings
        self._triples = {}  # kept for this call's turns
        runs = [_Run(q, ReferenceState(chains=[[] for _ in range(s.beam_size)])) for q in questions]
        for run in runs:
            run.demos = self.selector.select(run.question) if self.selector is not None else []
        for turn in range(1, s.max_turns + 1):
            active = [r for r in runs if not should_stop(r.state.chains, turn)]
            if not active:
                break
            conversations: list[list[dict]] = []
            prefills: list[str] = []
            for run in active:
                state = run.state
                queries = self.doc_queries(run.question, state.chains, turn)
                self.align(state, run.question, self.add_documents(state, queries))
                run.shown = self.candidates(state)
                chats, starts = self.conversations(run.question, state, run.shown, run.demos)
                run.asked = len(chats)
                conversations += chats
                prefills += starts
            outputs = chat_generate(self.engine, conversations, s.max_new_tokens, prefills=prefills)
            self.calls += len(outputs)
            for run in active:
                mine, outputs = outputs[: run.asked], outputs[run.asked :]
                run.calls += len(mine)
                self._decide(run, turn, mine)
        return [
            ChainResult(
                r.question,
                self._chains(r.state),
                self._hits(r.state, k),
                r.trace,
                r.calls,
                pool_scores=r.state.pool_after_turn,
            )
            for r in runs
        ]

    def _decide(self, run: _Run, turn: int, outputs: Sequence[str]) -> None:
        """One turn's generations: next steps, bonuses, the trace and the pool's record."""
        s, state = self.settings, run.state
        texts = {key: t.text for key, t in state.triples.items()}
        for chain, output in zip(state.chains, outputs, strict=True):
            step = next_step(output)
            chain.append(step)
            rewarded = apply_bonuses(state.scores, texts, step, s.bonus, s.match_f1)
            run.trace.append(
                TurnTrace(
                    turn,
                    chain[:-1],
                    aligner_query(run.question, chain[:-1]),
                    [(state.triples[key].text, round(state.scores[key], 4)) for key in run.shown[:10]],
                    decision=output,
                    picked=state.triples[rewarded[0]].text if rewarded else None,
                    answer=stated_answer([step]),
                )
            )  # fmt: skip
        state.pool_after_turn.append(state.pool_record())

    def _chains(self, state: ReferenceState) -> list[Chain]:
        """Each chain's steps, with the pool triple each step matched (when one did)."""
        out = []
        for steps in state.chains:
            chain = Chain(finished=True, answer=stated_answer(steps), steps=list(steps))
            for step in steps:
                match = self._matched(state, step)
                if match is not None:
                    triple = state.triples[match]
                    chain.positions.append(state.positions[match])
                    chain.triples.append(triple)
                    chain.step_scores.append(state.scores[match])
            out.append(chain)
        return out

    def _matched(self, state: ReferenceState, step: str) -> PoolKey | None:
        if not parse_triple_texts(step) or not state.scores:
            return None
        ranked = state.ranked_pool()
        f1s = [token_f1(step, state.triples[key].text) for key in ranked]
        best = max(f1s)
        return ranked[f1s.index(best)] if best >= self.settings.match_f1 else None

    def _hits(self, state: ReferenceState, k: int) -> list[Hit]:
        doc_of = {key: key[0] for key in state.scores}
        ranked = document_scores(state.scores, doc_of)[:k]
        documents = self.index.docstore.get_many([d for d, _ in ranked])
        return [
            Hit(d, score, rank, doc)
            for rank, ((d, score), doc) in enumerate(zip(ranked, documents, strict=True), 1)
        ]
