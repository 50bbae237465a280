"""LLM-free triple extraction from a dependency parse (spaCy's English pipeline).

Patterns: subject–verb–object, subject–verb–preposition–object, copular "X is Y", passives with
their agent, verb conjunctions sharing a subject, participles and relative clauses attached to a
noun, and appositions ("X, a Y"). Noun phrases are expanded over compounds, modifiers,
possessives, numbers, named-entity spans and "of" phrases. There is no coreference resolution:
a pronoun subject (he, she, it, they) falls back to the document title, which is usually right
for encyclopedic text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from kirag.knowledge.triples import Triple, dedupe_triples, normalize_entity
from kirag.types import Document

SUBJECT_DEPS = {"nsubj", "nsubjpass", "csubj"}
OBJECT_DEPS = {"dobj", "attr", "oprd", "dative"}
MODIFIER_DEPS = {
    "compound",
    "amod",
    "nummod",
    "poss",
    "nmod",
    "quantmod",
    "flat",
    "case",
    "npadvmod",
}
CLAUSE_DEPS = {"ROOT", "conj", "relcl", "acl", "advcl", "ccomp", "xcomp", "parataxis"}
PERSONAL_PRONOUNS = {"he", "she", "it", "they", "him", "her", "them"}
RELATIVE_PRONOUNS = {"who", "which", "that", "whom"}
MAX_SPAN_TOKENS = 12
LEADING_JUNK = {"det", "cc", "advmod", "prep"}
TRAILING_JUNK = {"cc", "case", "det", "poss", "prep"}
WH_TAGS = {"WRB", "WDT", "WP"}
VERSION = "dep-v2"


class DependencyTripleExtractor:
    """Extracts triples sentence by sentence; every triple knows its sentence index."""

    name = "spacy"

    def __init__(self, pipeline: str = "auto", batch_size: int = 32):
        from kirag.knowledge.sentences import load_spacy

        self.nlp = load_spacy(pipeline, parser=True)
        self.batch_size = batch_size
        meta = self.nlp.meta
        self.id = (
            f"spacy:{meta.get('lang', 'en')}_{meta.get('name')}-{meta.get('version')}:{VERSION}"
        )

    def extract(self, documents: Sequence[Document]) -> list[list[Triple]]:
        texts = [doc.text for doc in documents]
        out = []
        for document, parsed in zip(
            documents, self.nlp.pipe(texts, batch_size=self.batch_size), strict=True
        ):
            triples = []
            for index, sentence in enumerate(parsed.sents):
                text = sentence.text.strip()
                triples += [
                    Triple.in_document(fact, document, index, text, self.id)
                    for fact in sentence_triples(sentence, document.title)
                ]
            out.append(dedupe_triples(triples))
        return out


def sentence_triples(sentence, title: str | None) -> Iterator[tuple[str, str, str]]:
    """(head, relation, tail) facts of one parsed sentence."""
    for token in sentence:
        if token.pos_ in ("VERB", "AUX") and token.dep_ in CLAUSE_DEPS:
            yield from _verb_triples(token, title)
        if token.pos_ in ("NOUN", "PROPN"):
            yield from _apposition_triples(token)


def _verb_triples(verb, title: str | None) -> Iterator[tuple[str, str, str]]:
    subjects = _subjects(verb, title)
    if not subjects:
        return
    relation = _relation(verb)
    if not relation:
        return
    objects = [c for c in verb.children if c.dep_ in OBJECT_DEPS]
    if verb.lemma_ == "be" and not objects:
        objects = [c for c in verb.children if c.dep_ == "acomp"]
    for subject in subjects:
        for obj in objects:
            for target in _with_conjuncts(obj):
                yield subject, relation, _span_text(target)
            # "paved the way for X": a preposition hanging off a common-noun object
            if obj.pos_ == "NOUN" and obj.ent_type_ == "":
                for prep in (c for c in obj.children if c.dep_ == "prep" and c.lower_ != "of"):
                    for pobj in _prepositional_objects(prep):
                        yield subject, f"{relation} {obj.lower_} {prep.lower_}", _span_text(pobj)
        for prep in (c for c in verb.children if c.dep_ in ("prep", "agent")):
            for pobj in _prepositional_objects(prep):
                yield subject, f"{relation} {prep.lower_}", _span_text(pobj)


def _subjects(verb, title: str | None) -> list[str]:
    """Subject phrases of a verb: its own, a coordinated verb's, the noun a participle or
    relative clause modifies, or the title for a personal pronoun."""
    tokens = [c for c in verb.children if c.dep_ in SUBJECT_DEPS]
    if not tokens and verb.dep_ in ("conj", "xcomp", "advcl") and verb.head is not verb:
        # "Launched by a Saturn V, Apollo 11 was...": a subjectless clause shares its head's subject
        tokens = [c for c in verb.head.children if c.dep_ in SUBJECT_DEPS]
    if verb.dep_ in ("acl", "relcl") and (not tokens or tokens[0].lower_ in RELATIVE_PRONOUNS):
        noun = verb.head
        # "X was a philosopher born in Y": the participle describes X, the copula's subject
        if noun.dep_ == "attr" and noun.head.lemma_ == "be":
            subject_of_copula = [c for c in noun.head.children if c.dep_ in SUBJECT_DEPS]
            tokens = subject_of_copula or [noun]
        else:
            tokens = [noun]
    phrases = []
    for token in tokens:
        if token.lower_ in PERSONAL_PRONOUNS | RELATIVE_PRONOUNS or token.pos_ == "PRON":
            if title and token.lower_ in PERSONAL_PRONOUNS:
                phrases.append(title)
            continue
        phrases.extend(_span_text(t) for t in _with_conjuncts(token))
    return [p for p in phrases if p]


def _relation(verb) -> str:
    """The verb as a relation: auxiliaries of the passive, negation and particles included
    ("was born", "did not return", "set up")."""
    parts = []
    for child in verb.children:
        if child.dep_ in ("auxpass", "neg") and child.i < verb.i:
            parts.append((child.i, child.lower_))
    parts.append((verb.i, verb.lower_))
    for child in verb.children:
        if child.dep_ == "prt":
            parts.append((child.i, child.lower_))
    return " ".join(word for _, word in sorted(parts))


def _prepositional_objects(prep) -> list:
    objects = [c for c in prep.children if c.dep_ in ("pobj", "pcomp")]
    return [target for obj in objects for target in _with_conjuncts(obj)]


def _with_conjuncts(token) -> list:
    """The token and the tokens coordinated with it ("philosopher and scientist")."""
    out = [token]
    for child in token.children:
        if child.dep_ == "conj" and child.pos_ == token.pos_:
            out.extend(_with_conjuncts(child))
    return out


def _apposition_triples(noun) -> Iterator[tuple[str, str, str]]:
    """ "Albert Einstein, a German-born physicist, ..." -> (Albert Einstein; is; German-born physicist)."""
    for child in noun.children:
        if child.dep_ == "appos" and child.pos_ == "NOUN":
            yield _span_text(noun), "is", _span_text(child)


def _span_text(token) -> str:
    """The noun phrase headed by `token`: modifiers, possessives, compounds, its named entity,
    and an "of" phrase; without leading determiners; capped in length."""
    indices = {token.i}
    for child in token.children:
        if (
            child.dep_ in MODIFIER_DEPS
            or (child.dep_ == "det" and child.tag_ == "PRP$")
            or (child.dep_ == "prep" and child.lower_ == "of" and child.i > token.i)
        ):
            indices.update(t.i for t in child.subtree)
    doc = token.doc
    if token.ent_type_:
        for ent in doc.ents:
            if ent.start <= token.i < ent.end:
                indices.update(range(ent.start, ent.end))
                break
    start, end = min(indices), max(indices) + 1
    if end - start > MAX_SPAN_TOKENS:
        start, end = token.i, token.i + 1
    while start < end and (
        doc[start].dep_ in LEADING_JUNK or doc[start].is_punct or doc[start].tag_ in WH_TAGS
    ):
        start += 1
    while end > start and (doc[end - 1].is_punct or doc[end - 1].dep_ in TRAILING_JUNK):
        end -= 1
    return normalize_entity(doc[start:end].text)
