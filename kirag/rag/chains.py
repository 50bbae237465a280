"""The iterative knowledge-driven retriever: builds reasoning chains of triples, turn by turn.

Each turn, for every open chain: candidate triples are gathered for "question + chain so far"
(the triple index, optionally widened through the entity graph around the chain's last triple
and through first-stage document retrieval), scored by the aligner (a bi-encoder), and — when a
constructor LLM is configured — shown to it so it can pick the next triple (+0.5 to the pick, as
in the reference) or declare the question answered. Without a constructor, chains grow by beam
search on aligner scores alone. Documents are ranked by the chains that use them, then by the
best score among their candidate triples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from kirag.knowledge.sentences import words
from kirag.knowledge.triple_index import TripleIndex
from kirag.knowledge.triples import Triple
from kirag.rag.aligner_vectors import aligner_vectors
from kirag.rag.chain_settings import AlignerModeSettings
from kirag.rag.constructor import ChainConstructor
from kirag.rag.records import STEP_DECIMALS, ChainStep, chain_steps, steps_json
from kirag.retrieval.base import Retriever
from kirag.retrieval.fusion import reciprocal_rank_fusion
from kirag.types import Hit


@dataclass
class Chain:
    """A reasoning chain: triples (with their index positions) and per-step scores."""

    positions: list[int] = field(default_factory=list)
    triples: list[Triple] = field(default_factory=list)
    step_scores: list[float] = field(default_factory=list)
    finished: bool = False
    answer: str | None = None
    steps: list[str] = field(default_factory=list)  # reference mode: the constructor's own steps

    @property
    def score(self) -> float:
        """Mean step score, so chains of different lengths compare fairly."""
        return float(np.mean(self.step_scores)) if self.step_scores else 0.0

    def extend(self, position: int, triple: Triple, score: float) -> Chain:
        return Chain(
            [*self.positions, position], [*self.triples, triple], [*self.step_scores, score]
        )

    def query(self, question: str) -> str:
        """The retrieval query for the next turn (the reference's "concat" reformulation)."""
        if not self.triples:
            return question
        return (
            f"{question}\nknowledge triples: "
            + ". ".join(t.sentence_text for t in self.triples)
            + "."
        )

    @property
    def records(self) -> list[ChainStep]:
        """The chain's steps as typed records (triple, score, source document and sentence)."""
        return chain_steps(self)

    def to_dict(self) -> dict:
        """The chain as the answers JSONL keeps it (steps as parallel lists, see rag.records)."""
        out = {
            **steps_json(self.records),
            "score": round(self.score, STEP_DECIMALS),
            "finished": self.finished,
            "answer": self.answer,
        }
        if self.steps:
            out["steps"] = list(self.steps)
        return out


@dataclass
class TurnTrace:
    """What happened to one chain in one turn (for explanations and debugging)."""

    turn: int
    chain: list[str]
    query: str
    candidates: list[tuple[str, float]]
    decision: str | None = None
    picked: str | None = None
    answer: str | None = None


@dataclass
class ChainResult:
    """The output of the iterative retriever for one question."""

    question: str
    chains: list[Chain]
    hits: list[Hit]
    trace: list[TurnTrace]
    llm_calls: int = 0
    # reference mode: the whole pool after each turn, best first ({text, doc_id, sentence, score})
    pool_scores: list[list[dict]] | None = None

    @property
    def best_chain(self) -> Chain | None:
        return self.chains[0] if self.chains else None

    @property
    def answer_candidate(self) -> str | None:
        """The constructor's answer, else the last tail entity of the best chain."""
        chain = self.best_chain
        if chain is None or not chain.triples:
            return None
        return chain.answer or chain.triples[-1].tail


class IterativeRetriever:
    """KiRAG's knowledge-driven iterative retriever over a TripleIndex."""

    def __init__(
        self,
        index: TripleIndex,
        constructor: ChainConstructor | None = None,
        aligner=None,
        doc_retriever: Retriever | None = None,
        settings: AlignerModeSettings | None = None,
        **options,
    ):
        """`settings`: a beam-search mode's settings (AlignerModeSettings, the default, or
        LLMModeSettings); `options`: any of its fields by name, over it. Its `first_stage` names
        the `doc_retriever` KiRAG builds; the retriever uses the one it is given."""
        # the one copy, read where used (frozen and checked: dataclasses.replace changes it)
        self.settings = replace(settings or AlignerModeSettings(), **options)
        self.index = index
        self.constructor = constructor
        self.aligner = aligner if aligner is not None else index.encoder
        self.doc_retriever = doc_retriever
        self._same_encoder = (
            getattr(self.aligner, "model_name", None) == index.manifest["encoder"]["model"]
        )
        # another aligner (a trained folder): its triple and passage vectors, kept once encoded
        self._vectors = None if self._same_encoder else aligner_vectors(self.aligner, index)

    # called with (turn, the chains kept) after each turn: lets a server stream the chain as it
    # grows. Set it only while holding the model lock (one KiRAG call at a time).
    on_turn = None

    def retrieve(self, question: str, k: int = 10) -> ChainResult:
        chains = [Chain()]
        trace: list[TurnTrace] = []
        seen_scores: dict[int, float] = {}
        calls_before = self.constructor.calls if self.constructor else 0
        for turn in range(1, self.settings.max_turns + 1):
            open_chains = [c for c in chains if not c.finished]
            if not open_chains:
                break
            queries = [c.query(question) for c in open_chains]
            candidates = self._candidates(open_chains, queries, question)
            for positions, scores in candidates:
                for position, score in zip(positions, scores, strict=True):
                    seen_scores[position] = max(score, seen_scores.get(position, -1e9))
            decisions = self._decide(question, open_chains, candidates)
            successors = [c for c in chains if c.finished]
            for chain, query, (positions, scores), decision in zip(
                open_chains, queries, candidates, decisions, strict=True
            ):
                successors += self._expand(chain, positions, scores, decision, turn, query, trace)
            successors.sort(key=lambda c: -c.score)
            chains = successors[: self.settings.beam_size]
            if self.on_turn is not None:
                self.on_turn(turn, chains)
        chains = [c for c in chains if c.triples] or chains
        for chain in chains:
            chain.finished = True
        calls = (self.constructor.calls - calls_before) if self.constructor else 0
        hits = self._rank_documents(question, chains, seen_scores, k)
        return ChainResult(question, chains, hits, trace, calls)

    def _candidates(
        self, chains: Sequence[Chain], queries: Sequence[str], question: str
    ) -> list[tuple[list[int], list[float]]]:
        """Candidate positions and aligner scores for each chain, best first.

        A chain's first triple is searched for (triple index + first-stage documents). Later
        triples come from the neighbourhood of the last triple's bridge entities (those the
        question does not already name), through the entity graph and through the documents
        titled by them; the search is added only when `hop_search` is on or that neighbourhood
        is empty.
        """
        s = self.settings
        query_vectors = np.asarray(self.aligner.encode(list(queries)), dtype=np.float32)
        pools: list[list[tuple[int, Triple]]] = []
        for chain in chains:
            pool: list[int] = []
            if chain.triples and s.graph_expansion:
                bridges = bridge_entities(chain.triples[-1], question)
                pool += sorted(self.index.neighbours(bridges, hops=s.graph_hops))
                pool += self.index.positions_of_titles(bridges)
            pools.append(self._usable(chain, pool))
        need_search = [
            i
            for i, (c, pool) in enumerate(zip(chains, pools, strict=True))
            if not c.triples or s.hop_search or not pool
        ]
        if need_search:
            found = (
                self.index.search([queries[i] for i in need_search], s.num_candidates)
                if s.triple_search
                else [[] for _ in need_search]
            )
            for i, hits in zip(need_search, found, strict=True):
                searched = [h.position for h in hits]
                if self.doc_retriever is not None and s.doc_expansion_k > 0:
                    doc_ids = [
                        h.doc_id for h in self.doc_retriever.search(queries[i], s.doc_expansion_k)
                    ]
                    searched += self.index.positions_of_documents(doc_ids)
                known = {p for p, _ in pools[i]}
                pools[i] += [(p, t) for p, t in self._usable(chains[i], searched) if p not in known]
        out = []
        for pool, vector in zip(pools, query_vectors, strict=True):
            scores = self._align(vector, [p for p, _ in pool], [t for _, t in pool])
            order = np.argsort(-scores, kind="stable")
            out.append(([pool[i][0] for i in order], [float(scores[i]) for i in order]))
        return out

    def _usable(self, chain: Chain, positions: Sequence[int]) -> list[tuple[int, Triple]]:
        """The candidates (position, triple) that may extend `chain`, first occurrence kept."""
        in_chain = set(chain.positions)
        unique = [p for p in dict.fromkeys(positions) if p not in in_chain]
        return [
            (p, t)
            for p, t in zip(unique, self.index.triples(unique), strict=True)
            if self._adds_evidence(chain, t)
        ]

    def _adds_evidence(self, chain: Chain, triple: Triple) -> bool:
        """Whether `triple` may extend `chain`: not a duplicate, and (per `new_evidence`) not
        from a sentence or document the chain already used."""
        if any(t.key == triple.key for t in chain.triples):
            return False
        if self.settings.new_evidence == "sentence":
            return all(
                (t.doc_id, t.sentence_index) != (triple.doc_id, triple.sentence_index)
                for t in chain.triples
            )
        if self.settings.new_evidence == "document":
            return all(t.doc_id != triple.doc_id for t in chain.triples)
        return True

    def _align(
        self, query_vector: np.ndarray, positions: list[int], triples: list[Triple]
    ) -> np.ndarray:
        """Aligner score of each candidate: similarity to the query, plus `passage_weight` times
        the similarity of the passage it comes from (context the short triple text lacks)."""
        if not triples:
            return np.zeros(0, dtype=np.float32)
        weight = self.settings.passage_weight
        if self._vectors is None:
            scores = self.index.score(query_vector, positions)
            if weight and self.index.has_passage_vectors:
                scores = scores + weight * self.index.passage_scores(query_vector, triples)
            return scores
        scores = self._vectors.triples(positions, triples) @ query_vector
        if weight:
            scores = scores + weight * (self._vectors.passages(triples) @ query_vector)
        return np.asarray(scores, dtype=np.float32)

    def _decide(self, question: str, chains: Sequence[Chain], candidates) -> list:
        if self.constructor is None:
            return [None] * len(chains)
        shown = [
            self.index.triples(positions[: self.constructor.num_candidates])
            for positions, _ in candidates
        ]
        return self.constructor.decide(question, [c.triples for c in chains], shown)

    def _expand(
        self,
        chain: Chain,
        positions,
        scores,
        decision,
        turn: int,
        query: str,
        trace: list[TurnTrace],
    ) -> list[Chain]:
        step = TurnTrace(
            turn,
            [t.text for t in chain.triples],
            query,
            [
                (t.text, round(s, 4))
                for t, s in zip(self.index.triples(positions[:10]), scores[:10], strict=True)
            ],
        )
        trace.append(step)
        if decision is not None:
            step.decision = decision.reasoning
            if decision.answer and chain.triples:
                step.answer = decision.answer
                done = Chain(
                    chain.positions,
                    chain.triples,
                    chain.step_scores,
                    finished=True,
                    answer=decision.answer,
                )
                return [done]
        bonus = np.zeros(len(positions), dtype=np.float32)
        if decision is not None and decision.pick is not None:
            bonus[decision.pick] = self.settings.pick_bonus
            step.picked = self.index.triples([positions[decision.pick]])[0].text
        adjusted = np.asarray(scores, dtype=np.float32) + bonus
        order = [
            i
            for i in np.argsort(-adjusted, kind="stable")
            if adjusted[i] >= self.settings.min_score
        ][: self.settings.beam_size]
        if not order:  # no new triple: the chain is done
            return [
                Chain(
                    chain.positions,
                    chain.triples,
                    chain.step_scores,
                    finished=True,
                    answer=chain.answer,
                )
            ]
        picked = self.index.triples([positions[i] for i in order])
        return [
            chain.extend(positions[i], triple, float(adjusted[i]))
            for i, triple in zip(order, picked, strict=True)
        ]

    def _rank_documents(
        self, question: str, chains: Sequence[Chain], seen_scores: dict[int, float], k: int
    ) -> list[Hit]:
        """Reciprocal-rank fusion of three rankings: the documents on the chains (best chain
        first, in chain order), the first-stage ranking of the question, and the documents by the
        best aligner score among their candidate triples (`fusion_weights`, in that order)."""
        on_chains: list[str] = []
        for chain in chains:
            on_chains += [t.doc_id for t in chain.triples if t.doc_id not in on_chains]
        best_by_doc: dict[str, float] = {}
        for position, triple in zip(
            seen_scores, self.index.triples(list(seen_scores)), strict=True
        ):
            best_by_doc[triple.doc_id] = max(
                seen_scores[position], best_by_doc.get(triple.doc_id, -1e9)
            )
        by_evidence = sorted(best_by_doc, key=lambda d: -best_by_doc[d])
        rankings = [
            [Hit(d, 0.0, i) for i, d in enumerate(on_chains, 1)],
            self.doc_retriever.search(question, max(k, 20))
            if self.doc_retriever is not None
            else [],
            [Hit(d, best_by_doc[d], i) for i, d in enumerate(by_evidence, 1)],
        ]
        fused = reciprocal_rank_fusion(
            rankings, weights=list(self.settings.fusion_weights), depth=k
        )
        documents = self.index.docstore.get_many([h.doc_id for h in fused])
        return [
            Hit(h.doc_id, h.score, h.rank, doc, {"scores": h.metadata["scores"]})
            for h, doc in zip(fused, documents, strict=True)
        ]


def bridge_entities(triple: Triple, question: str) -> list[str]:
    """The entities of `triple` the question does not already name (at most half of their words
    in it): where the next hop starts. Both head and tail when neither is new."""
    question_words = words(question)
    new = [
        e for e in (triple.head, triple.tail) if len(words(e) & question_words) <= len(words(e)) / 2
    ]
    return new or [triple.head, triple.tail]
