"""The entity hop: from entities to the passages about them, a candidate source beside BM25 and
dense retrieval.

Multi-hop questions name one end of the chain and ask about the other: the second passage is
about an entity (the bridge) that the first passage names and the question does not. The hop
collects what a few source passages name (the first stage's top passages: their text and their
triples' entities; or a reasoning chain's last triple), finds the passages *about* it — the documents
whose title the entity names, and the documents of the triples next to it in the entity graph —
and ranks those passages for the question with the scorer (the aligner: the dense encoder of
the passages, whose vectors the dense index already holds). A passage's place inside its
article can add a prior (`lead_weight`: an article's first passages describe its subject).
The ranking is fused with the first stage by reciprocal rank (`EntityHopRetriever`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from kirag.core.ranges import COUNT, NON_NEGATIVE
from kirag.core.settings import check_settings, setting
from kirag.knowledge.sentences import words
from kirag.knowledge.triple_index import TripleIndex
from kirag.knowledge.triples import Triple
from kirag.retrieval.fusion import reciprocal_rank_fusion
from kirag.types import Hit

_ORDINAL = re.compile(r"#(\d+)$")


@dataclass(frozen=True)
class HopSettings:
    """How far the hop looks and how its ranking joins the first stage's."""

    source_depth: int = setting(
        5, "first-stage passages whose entities are followed", range=COUNT, cli=False
    )
    graph: bool = setting(
        False, "also the documents of the entity-graph neighbours' triples", cli=False
    )
    lead_weight: float = setting(
        0.0,
        "prior for an article's first passages: w / (1 + ordinal)",
        range=NON_NEGATIVE,
        cli=False,
    )
    weight: float = setting(
        0.92, "of the hop's ranking in the fusion (first stage: 1)", range=NON_NEGATIVE, cli=False
    )
    depth: int = setting(20, "hop documents kept in its ranking", range=COUNT, cli=False)
    question_titles: bool = setting(True, "also the titles the question itself names", cli=False)
    scorer: str = setting(
        "bm25",
        "what ranks the hop's passages: lexical or dense",
        choices=("bm25", "dense"),
        cli=False,
    )

    def __post_init__(self) -> None:
        check_settings(self)


def passage_ordinal(doc_id: str) -> int | None:
    """The passage's place in its article from a `Title#N` id (None when the id has no `#N`)."""
    match = _ORDINAL.search(doc_id)
    return int(match.group(1)) if match else None


def rank_for(scorer, query: str, doc_ids: Sequence[str], lead_weight: float = 0.0) -> list[Hit]:
    """`doc_ids` ordered by `scorer`'s similarity to `query`, plus the lead prior
    `lead_weight / (1 + ordinal)` for a passage's place in its article (ties keep the order)."""
    if not doc_ids:
        return []
    known = list(doc_ids)
    scores = scorer.score(query, known)
    if lead_weight:
        ordinals = [passage_ordinal(d) for d in known]
        scores = scores + np.asarray(
            [lead_weight / (1 + o) if o is not None else 0.0 for o in ordinals]
        )
    order = np.argsort(-scores, kind="stable")
    return [Hit(known[i], float(scores[i]), r) for r, i in enumerate(order, 1)]


class DenseScorer:
    """Similarity of a query to passages through their stored dense vectors (the index's
    encoder: the aligner's role here), none re-encoded."""

    def __init__(self, dense):
        self.dense = dense
        self.docstore = dense.docstore
        self._row: dict[str, int] | None = None

    def score(self, query: str, doc_ids: Sequence[str]) -> np.ndarray:
        if self._row is None:
            self._row = {d: i for i, d in enumerate(self.docstore.all_ids())}
        vector = np.asarray(self.dense.encoder.encode_queries([query]), dtype=np.float32)[0]
        return np.asarray(
            self.dense.passage_vectors([self._row[d] for d in doc_ids]) @ vector, dtype=np.float32
        )


class LexicalScorer:
    """BM25 score of a query for passages, divided by its best score (0 beyond the top
    `depth`): the hop's scorer without a dense index."""

    def __init__(self, bm25, depth: int = 1000):
        self.bm25 = bm25
        self.docstore = bm25.docstore
        self.depth = depth

    def score(self, query: str, doc_ids: Sequence[str]) -> np.ndarray:
        hits = self.bm25.search(query, self.depth)
        top = max((h.score for h in hits), default=0.0) or 1.0
        found = {h.doc_id: h.score / top for h in hits}
        return np.asarray([found.get(d, 0.0) for d in doc_ids], dtype=np.float32)


class EntityHop:
    """Passages about entities, ranked for a query by `scorer` (DenseScorer or LexicalScorer
    over the same corpus). `index`: the corpus's triple index (its triples' entities and entity
    graph); without one, the hop reads titles from the passages' text alone."""

    def __init__(self, index: TripleIndex | None, scorer, settings: HopSettings = HopSettings()):
        from kirag.knowledge.titles import TitleLookup

        self.index = index
        self.scorer = scorer
        self.docstore = scorer.docstore
        self.settings = settings
        self.titles = index.titles if index is not None else TitleLookup(self.docstore)

    def entities_of(self, doc_ids: Sequence[str]) -> list[str]:
        """What these documents name: their texts (any title an n-gram of them names counts —
        extractors miss mentions) and the heads and tails of their triples."""
        texts = [d.contents for d in self.docstore.get_many(list(doc_ids)) if d is not None]
        if self.index is None:
            return texts
        triples = self.index.triples(self.index.positions_of_documents(doc_ids))
        return list(dict.fromkeys([*texts, *(e for t in triples for e in (t.head, t.tail) if e)]))

    def documents_about(self, entities: Iterable[str]) -> list[str]:
        """Documents titled by an entity (the title or one of its n-grams), then, with `graph`,
        the documents of the triples next to it in the entity graph."""
        entities = list(entities)
        found = self.titles.documents(entities)
        if self.settings.graph and entities and self.index is not None:
            short = [e for e in entities if len(e.split()) <= 8]  # entities, not passage texts
            positions = sorted(self.index.neighbours(short, hops=1))[:500]
            found += [t.doc_id for t in self.index.triples(positions)]
        return list(dict.fromkeys(found))

    def rank(self, query: str, doc_ids: Sequence[str], k: int | None = None) -> list[Hit]:
        """The candidate documents ordered by the scorer's similarity to `query` (+ lead prior)."""
        return rank_for(self.scorer, query, doc_ids, self.settings.lead_weight)[
            : k or self.settings.depth
        ]

    def hop(self, question: str, sources: Sequence[str], entities: Iterable[str] = ()) -> list[Hit]:
        """Passages about the entities the `sources` documents name (plus `entities`, plus the
        titles the question names), minus the sources, ranked for the question."""
        named = [*entities, *self.entities_of(sources)]
        if self.settings.question_titles:
            named.append(question)
        skip = set(sources)
        candidates = [d for d in self.documents_about(named) if d not in skip]
        return self.rank(question, candidates)

    def from_chain(self, question: str, triples: Sequence[Triple]) -> list[Hit]:
        """The hop from a reasoning chain: passages about its last triple's new entities,
        ranked for the question read with the chain (the aligner's query)."""
        if not triples:
            return []
        last = triples[-1]
        question_words = words(question)
        new = [e for e in (last.head, last.tail) if not words(e) <= question_words] or [last.tail]
        query = f"{question}\nknowledge triples: " + ". ".join(t.sentence_text for t in triples)
        skip = {t.doc_id for t in triples}
        candidates = [d for d in self.documents_about(new) if d not in skip]
        return self.rank(query + ".", candidates)


class EntityHopRetriever:
    """A first stage plus the entity hop from its top passages, fused by reciprocal rank
    (first stage weight 1, hop `settings.weight`; the hop's ranking without the first stage's
    top k, so that it adds documents): a document retriever with `search`."""

    def __init__(self, first_stage, hop: EntityHop):
        self.first_stage = first_stage
        self.hop = hop

    def search(self, query: str, k: int = 10, with_documents: bool = False) -> list[Hit]:
        s = self.hop.settings
        first = self.first_stage.search(query, max(k, 50))
        sources = [h.doc_id for h in first[: s.source_depth]]
        # the hop adds documents to the first stage's top k: what that top k holds is not
        # counted twice, and the first stage beyond k does not vote (RRF would otherwise lift
        # what both rank, anywhere, over the first stage's own best). With RRF's k = 60 the
        # hop's first document lands after the first stage's 61 / weight - 60 best.
        top = first[:k]
        shown = {h.doc_id for h in top}
        hopped = [h for h in self.hop.hop(query, sources) if h.doc_id not in shown]
        hopped = [Hit(h.doc_id, h.score, rank) for rank, h in enumerate(hopped, 1)]
        fused = reciprocal_rank_fusion([top, hopped], weights=[1.0, s.weight], depth=k)
        return [Hit(h.doc_id, h.score, h.rank, None, h.metadata) for h in fused]


def hop_retriever(
    index: TripleIndex, first_stage, settings: HopSettings = HopSettings()
) -> EntityHopRetriever:
    """`first_stage` + the entity hop over a triple index, scored by the document index inside
    it that `settings.scorer` names."""
    documents = index.document_retrievers()
    scorer = (
        LexicalScorer(documents["bm25"])
        if settings.scorer == "bm25"
        else DenseScorer(documents["dense"])
    )
    return EntityHopRetriever(first_stage, EntityHop(index, scorer, settings))
