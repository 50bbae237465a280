"""Training data from the corpus itself, no labels: silver reasoning chains for the aligner from
the triple index's knowledge graph, and query-passage pairs for the dense encoder.

Aligner (`silver_chains`): 2- and 3-hop paths through shared entities across documents. A path
starts at a triple t1 = (A, r1, B) of document d1; B is a bridge when another document is about
it (its title names B) or another document's triple shares it (the entity graph); t2 is a
triple of that document touching B (for a document about B, its subject is B whatever the
triple's head, so any of its triples may follow); a third hop repeats from t2's other entity.
A compositional template turns the path into a question that names A and the relations but not
the bridges ("What r2 the one that A r1?"). Each hop is a training row in the SAME text format
the offline mode scores at query time: the query is `Chain.query` ("question\\nknowledge
triples: h r t." with the chain so far) and triples are `triple_embedding_text`
("title: T, text: h r t"). Positive: the next triple; hard negatives: other triples of the same
entity and of the same document, then random triples.

Encoder (`encoder_pairs`): inverse cloze task — a sentence of a passage as the query, the
passage without it as the positive (kept in 10 % of pairs, as in ICT) — and title-passage pairs
(the passage's title and first sentence... as the query), contrastive with in-batch negatives.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from kirag.core.ranges import COUNT
from kirag.core.settings import other_default, setting
from kirag.knowledge.triple_index import TripleIndex, triple_embedding_text
from kirag.knowledge.triples import Triple, entity_key
from kirag.rag.aligner_training import AlignerRow, TrainSettings

RECIPES = ("ict", "title", "ict+title")
_PRONOUNS = {"he", "she", "it", "they", "his", "her", "its", "their", "this", "that", "these"}
ICT_KEEP = 0.1  # the fraction of ICT pairs whose positive keeps the query sentence


@dataclass(frozen=True)
class SilverChain:
    """A path through the knowledge graph turned into a question."""

    question: str
    triples: tuple[Triple, ...]


class CorpusGraph:
    """The triples of an index with the lookups path sampling needs (all in memory: the
    triple index of a sample-sized corpus holds tens of thousands of triples)."""

    def __init__(self, index: TripleIndex):
        self.triples = index.triples(range(len(index)))
        self.by_doc: dict[str, list[int]] = defaultdict(list)
        self.by_entity: dict[str, list[int]] = defaultdict(list)
        self.title_docs: dict[str, list[str]] = defaultdict(list)
        for position, t in enumerate(self.triples):
            self.by_doc[t.doc_id].append(position)
            for entity in {entity_key(t.head), entity_key(t.tail)}:
                if entity:
                    self.by_entity[entity].append(position)
        for doc_id, title in index.docstore.titles():
            if title:
                self.title_docs[entity_key(title)].append(doc_id)

    def is_bridge(self, entity: str) -> bool:
        """Whether a path may go through `entity`: a document is about it (its title), or it is
        a name (capitalised, not a pronoun) that triples of two to 50 documents share —
        spaCy's common-noun entities ("windows", "to") would make paths of noise."""
        key = entity_key(entity)
        if len(key) < 3:
            return False
        if key in self.title_docs:
            return True
        if not entity[:1].isupper() or key in _PRONOUNS:
            return False
        docs = {self.triples[p].doc_id for p in self.by_entity.get(key, [])[:51]}
        return 2 <= len(docs) <= 50

    def next_hops(self, position: int, bridge: str) -> list[int]:
        """Triples of other documents that continue a path through `bridge`: those of the
        documents about it, and those elsewhere that name it."""
        here = self.triples[position]
        key = entity_key(bridge)
        if key == entity_key(here.title or ""):
            return []  # the document's own subject: no other document to go to
        out = [p for doc_id in self.title_docs.get(key, []) for p in self.by_doc.get(doc_id, [])]
        out += [p for p in self.by_entity.get(key, []) if self.triples[p].title != here.title]
        return list(dict.fromkeys(out))


def _continues(triple: Triple, bridge: str) -> tuple[str, str]:
    """(the entity the path moves on to, how the question names the step) for a next triple."""
    key = entity_key(bridge)
    if entity_key(triple.tail) == key:
        return triple.head, f"is {triple.relation} by"
    return triple.tail, triple.relation


def _describe(triple: Triple, bridge: str) -> str:
    """The bridge described by the triple without naming it: "the one that A r" / "that r A"."""
    if entity_key(triple.tail) == entity_key(bridge):
        return f"the one that {triple.head} {triple.relation}"
    return f"the one that {triple.relation} {triple.tail}"


def silver_chains(
    graph: CorpusGraph, count: int, seed: int, three_hop_share: float = 0.3
) -> list[SilverChain]:
    """`count` paths (2-hop, and 3-hop for about `three_hop_share` of them), seeded."""
    rng = random.Random(seed)
    starts = list(range(len(graph.triples)))
    rng.shuffle(starts)
    out: list[SilverChain] = []
    for start in starts:
        if len(out) >= count:
            break
        t1 = graph.triples[start]
        bridge = t1.tail if rng.random() < 0.7 else t1.head
        if not graph.is_bridge(bridge) or entity_key(t1.head) == entity_key(t1.tail):
            continue
        follow = graph.next_hops(start, bridge)
        if not follow:
            continue
        second = rng.choice(follow)
        t2 = graph.triples[second]
        description = _describe(t1, bridge)
        onward, step = _continues(t2, bridge)
        path = [t1, t2]
        if rng.random() < three_hop_share and graph.is_bridge(onward):
            follow = [
                p for p in graph.next_hops(second, onward) if graph.triples[p].doc_id != t1.doc_id
            ]
            if follow:
                t3 = graph.triples[rng.choice(follow)]
                description = f"the one that {step} {description}"
                _, step = _continues(t3, onward)
                path.append(t3)
        out.append(SilverChain(f"What {step} {description}?", tuple(path)))
    return out


def chain_query(question: str, chain: Sequence[Triple]) -> str:
    """The aligner's query at a hop, exactly as the offline mode writes it (`Chain.query`)."""
    from kirag.rag.chains import Chain

    return Chain(triples=list(chain)).query(question)


def aligner_rows(
    graph: CorpusGraph, chains: Sequence[SilverChain], num_negatives: int, seed: int
) -> list[AlignerRow]:
    """One row per hop: query = question + chain so far, positive = the next triple, negatives =
    triples of the same entity and the same document (then random ones), all as the offline
    mode embeds triples."""
    rng = random.Random(seed)
    rows = []
    for chain in chains:
        for hop, positive in enumerate(chain.triples):
            keys = {entity_key(positive.head), entity_key(positive.tail)}
            pool = [
                p
                for key in keys
                for p in graph.by_entity.get(key, [])[:200]
                if graph.triples[p].key != positive.key
            ]
            pool += [
                p for p in graph.by_doc[positive.doc_id] if graph.triples[p].key != positive.key
            ]
            pool = list(dict.fromkeys(pool))
            rng.shuffle(pool)
            negatives = pool[:num_negatives]
            while len(negatives) < num_negatives:
                negatives.append(rng.randrange(len(graph.triples)))
            rows.append(
                AlignerRow(
                    chain_query(chain.question, chain.triples[:hop]),
                    triple_embedding_text(positive),
                    [triple_embedding_text(graph.triples[p]) for p in negatives],
                )
            )
    return rows


def encoder_pairs(documents, count: int, seed: int, recipe: str = "ict") -> list[AlignerRow]:
    """`count` (query, passage) pairs from a seeded sample of passages: inverse cloze task (a
    sentence as the query, the rest of the passage as the positive) and/or title pairs (the
    title as the query). No negatives: the batch's other passages are the negatives."""
    from kirag.knowledge.sentences import SentenceSplitter

    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; known: {', '.join(RECIPES)}")
    rng = random.Random(seed)
    documents = [d for d in documents if d.contents and len(d.contents.split()) >= 20]
    rng.shuffle(documents)
    documents = documents[:count]
    splitter = SentenceSplitter()
    rows = []
    for document, sentences in zip(
        documents, splitter.split_many([d.contents for d in documents]), strict=True
    ):
        title = document.title or ""
        use_ict = recipe == "ict" or (recipe == "ict+title" and rng.random() < 0.5)
        if use_ict and len(sentences) >= 2:
            i = rng.randrange(len(sentences))
            rest = sentences if rng.random() < ICT_KEEP else sentences[:i] + sentences[i + 1 :]
            rows.append(AlignerRow(sentences[i], " ".join(rest), []))
        elif title:
            rows.append(AlignerRow(title, document.contents, []))
    return rows


# CPU-sized settings for training from the corpus (minutes on 2 cores, not hours): one epoch,
# short inputs, a few hard negatives besides the in-batch ones.
CORPUS_CHAINS = 1500


@dataclass(frozen=True)
class CorpusAlignerSettings(TrainSettings):
    """`kirag train aligner --from-corpus`: the aligner trained on silver chains from the triple
    index's own graph, CPU-sized (six defaults differ from the reference's)."""

    learning_rate: float = other_default(TrainSettings, "learning_rate", 3e-5)
    epochs: float = other_default(TrainSettings, "epochs", 1)
    batch_size: int = other_default(TrainSettings, "batch_size", 16)
    accumulate: int = other_default(TrainSettings, "accumulate", 1)
    query_max_length: int = other_default(TrainSettings, "query_max_length", 128)
    num_negatives: int = other_default(TrainSettings, "num_negatives", 3)


@dataclass(frozen=True)
class CorpusEncoderSettings(TrainSettings):
    """`kirag train encoder`: the dense encoder trained on query-passage pairs made from the
    corpus (no labels), in-batch negatives only, CPU-sized."""

    learning_rate: float = other_default(TrainSettings, "learning_rate", 3e-5)
    epochs: float = other_default(TrainSettings, "epochs", 1)
    batch_size: int = other_default(TrainSettings, "batch_size", 32)
    accumulate: int = other_default(TrainSettings, "accumulate", 1)
    query_max_length: int = other_default(TrainSettings, "query_max_length", 128)
    doc_max_length: int = other_default(TrainSettings, "doc_max_length", 128)
    num_negatives: int = other_default(TrainSettings, "num_negatives", 0)
    temperature: float = other_default(TrainSettings, "temperature", 0.05)
    recipe: str = setting(
        "ict",
        "how pairs are made: ict (a sentence as the query, the rest of its passage as the "
        "positive), title (the title as the query), or ict+title (either, by a coin)",
        choices=RECIPES,
    )
    pairs: int = setting(2000, "training pairs (one per passage)", range=COUNT)


CORPUS_ALIGNER = CorpusAlignerSettings()
CORPUS_ENCODER = CorpusEncoderSettings()
