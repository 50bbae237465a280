"""An English analyzer matching Lucene's EnglishAnalyzer as Anserini's BM25 uses it: Unicode
word tokens (UAX#29-style: "1,000", "3.14", "U.S", "don't" stay whole; each CJK ideograph is a
token), possessive "'s" removed, lower case, Lucene's 33 English stopwords, and Lucene's Porter
stemmer. Keeping bm25s's terms this close to Lucene's is what makes the two BM25 backends agree
(tests/test_retrieval.py compares the terms with Lucene's own analyzer)."""

from __future__ import annotations

import re
from functools import cached_property

from kirag.retrieval.porter import porter_stem

# org.apache.lucene.analysis.en.EnglishAnalyzer.ENGLISH_STOP_WORDS_SET
LUCENE_ENGLISH_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)
# Han ideographs and Hiragana are one token per character, as in Lucene's StandardTokenizer;
# superscripts and vulgar fractions ("km²", "3½") are not word characters there
_CJK = "\u3040-\u309f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_NOT_WORD = "\u00b2\u00b3\u00b9\u00bc-\u00be\u2070-\u209f\u2150-\u218f\u2460-\u24ff"
_MARKS = "\u0300-\u036f"  # combining diacritics stay inside their word
_WORD = rf"[^\W{_CJK}{_NOT_WORD}]"  # letters, digits, underscore
_LETTER = rf"[^\W\d_{_CJK}{_NOT_WORD}]"
# UAX#29: "." "'" "’" ":" "·" join two letters; "." "'" "’" "," ";" join two digits
_JOIN = rf"(?:(?<={_LETTER})[.'’:·](?={_LETTER})|(?<=\d)[.'’,;](?=\d))"
_TOKEN = re.compile(rf"{_WORD}+(?:{_JOIN}{_WORD}+)*|[{_CJK}]")
# the same with combining marks as word characters (slower: used only for text that has them)
_MARKED = rf"(?:{_WORD}|[{_MARKS}])"
_TOKEN_MARKED = re.compile(rf"{_MARKED}+(?:{_JOIN}{_MARKED}+)*|[{_CJK}]")
_HAS_MARK = re.compile(f"[{_MARKS}]")
_POSSESSIVES = ("'s", "’s", "ʼs")
# Java lower-cases character by character: "İ" -> "i" and "Σ" -> "σ" (Python: "i̇", final "ς")
_JAVA_LOWER = str.maketrans({"İ": "i", "Σ": "σ"})
TOKENIZER_VERSION = "uax29-lite-2"


class EnglishAnalyzer:
    """Text -> list of stemmed terms. `stemmer`: "porter" (Lucene's Porter, the default), any
    PyStemmer algorithm name ("english" = Snowball), or None; `stopwords`: "lucene", None or a
    list of words."""

    def __init__(
        self, stemmer: str | None = "porter", stopwords: str | list[str] | None = "lucene"
    ):
        self.stemmer_name = stemmer
        if stopwords == "lucene":
            self.stopwords = LUCENE_ENGLISH_STOPWORDS
        else:
            self.stopwords = frozenset(w.lower() for w in (stopwords or ()))
        self._stems: dict[str, str] = {}

    @cached_property
    def _stem(self):
        if self.stemmer_name is None:
            return None
        if self.stemmer_name == "porter":
            return porter_stem
        import Stemmer

        try:
            return Stemmer.Stemmer(self.stemmer_name).stemWord
        except KeyError:
            raise ValueError(
                f"unknown stemmer {self.stemmer_name!r}; known: porter (Lucene's), "
                f"{', '.join(Stemmer.algorithms())}, none"
            ) from None

    def config(self) -> dict:
        return {
            "tokenizer": TOKENIZER_VERSION,
            "stemmer": self.stemmer_name,
            "stopwords": sorted(self.stopwords),
        }

    @classmethod
    def from_config(cls, config: dict) -> EnglishAnalyzer:
        if config.get("tokenizer") != TOKENIZER_VERSION:
            raise ValueError(
                f"index analyzed with tokenizer {config.get('tokenizer')!r}, this kirag has "
                f"{TOKENIZER_VERSION!r}: rebuild the index"
            )
        return cls(config["stemmer"], list(config["stopwords"]))

    def __call__(self, text: str) -> list[str]:
        stem = self._stem
        stems = self._stems
        stopwords = self.stopwords
        terms = []
        if "İ" in text or "Σ" in text:
            text = text.translate(_JAVA_LOWER)
        text = text.lower()
        tokenizer = _TOKEN_MARKED if _HAS_MARK.search(text) else _TOKEN
        for token in tokenizer.findall(text):
            if token[0] == "_" and not token.strip("_"):
                continue
            if token.endswith(_POSSESSIVES):
                token = token[:-2]
                if not token:
                    continue
            if token in stopwords:
                continue
            term = stems.get(token)
            if term is None:
                term = stem(token) if stem is not None else token
                if len(stems) < 1_000_000:
                    stems[token] = term
            terms.append(term)
        return terms
