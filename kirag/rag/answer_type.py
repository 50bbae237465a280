"""An answer without a reader: the span of the question's answer type in the chain's final step.

The chain's last tail is often not the answer ("Tennessee" for "Where was the president born
who…"): the answer is a span of the right kind in the evidence the chain ended on. The question's
wh-phrase gives the type (a date, a number, a person, a place, an organisation); spaCy's
named entities of the final step's sentence (then of the earlier steps' sentences) give the
candidates; the first of the wanted type that the question does not already name is the answer,
else the last tail, as before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from kirag.knowledge.sentences import words
from kirag.knowledge.triples import Triple

# answer type -> spaCy entity labels of that type
LABELS: dict[str, tuple[str, ...]] = {
    "date": ("DATE",),
    "number": ("CARDINAL", "QUANTITY", "PERCENT", "MONEY"),
    "person": ("PERSON",),
    "place": ("GPE", "LOC", "FAC"),
    "organisation": ("ORG",),
}
# (pattern on the lower-cased question, type), first match wins
_RULES: tuple[tuple[str, str], ...] = (
    (r"\b(when|what year|which year|what date|which date|what day|what century)\b", "date"),
    (r"\bhow (many|much|long|old|tall|high|large)\b|\bwhat (number|percentage)\b", "number"),
    (r"\bpopulation\b", "number"),
    (r"\b(where|what|which) (city|country|state|province|town|place|region|continent)\b", "place"),
    (r"\bwhere\b|\bin which (city|country|state)\b|\bcapital\b", "place"),
    (
        r"\b(which|what) (company|organi[sz]ation|university|party|agency|team|institute)\b",
        "organisation",
    ),
    (r"\bwho(m|se)?\b", "person"),
    (
        r"\b(which|what) (king|queen|president|philosopher|person|man|woman|emperor|author|"
        r"writer|physicist|scientist|actor|hero|ruler|leader|composer|poet|artist)\b",
        "person",
    ),
)


def answer_type(question: str) -> str | None:
    """The type the question asks for, or None when its wording does not say."""
    text = question.lower()
    for pattern, kind in _RULES:
        if re.search(pattern, text):
            return kind
    return None


def typed_answer(question: str, triples: Sequence[Triple], nlp=None) -> str | None:
    """The first entity of the question's answer type in the chain's sentences, last step
    first, that the question does not already name; the last tail when there is none."""
    if not triples:
        return None
    kind = answer_type(question)
    if kind is None:
        return triples[-1].tail
    if nlp is None:
        from kirag.knowledge.sentences import load_spacy

        nlp = load_spacy("auto")
    asked = words(question)
    sentences = list(dict.fromkeys(t.sentence or t.sentence_text for t in reversed(triples)))
    for doc in nlp.pipe(sentences):
        for entity in doc.ents:
            if entity.label_ in LABELS[kind] and not words(entity.text) <= asked:
                return entity.text
    return triples[-1].tail
