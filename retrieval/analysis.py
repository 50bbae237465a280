"""An English analyzer close to Lucene's EnglishAnalyzer (what Anserini's BM25 uses): lower
case, word tokens, possessive "'s" removed, Lucene's 33 English stopwords, Porter stemming.
Keeping bm25s's tokens this close to Lucene's is what makes the two BM25 backends agree."""

from __future__ import annotations

import re
from functools import cached_property

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
_TOKEN = re.compile(r"\w+(?:[.'’]\w+)*")


class EnglishAnalyzer:
    """Text -> list of stemmed terms. `stemmer` is a PyStemmer algorithm ("porter" as Lucene's
    PorterStemFilter, "english" for Snowball) or None; `stopwords` "lucene", None or a list."""

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
    def _stemmer(self):
        if self.stemmer_name is None:
            return None
        import Stemmer

        return Stemmer.Stemmer(self.stemmer_name)

    def config(self) -> dict:
        return {"stemmer": self.stemmer_name, "stopwords": sorted(self.stopwords)}

    @classmethod
    def from_config(cls, config: dict) -> EnglishAnalyzer:
        return cls(config["stemmer"], list(config["stopwords"]))

    def __call__(self, text: str) -> list[str]:
        terms = []
        for token in _TOKEN.findall(text.lower()):
            if token.endswith(("'s", "’s")):
                token = token[:-2]
            if not token or token in self.stopwords:
                continue
            stem = self._stems.get(token)
            if stem is None:
                stem = self._stemmer.stemWord(token) if self._stemmer else token
                if len(self._stems) < 1_000_000:
                    self._stems[token] = stem
            terms.append(stem)
        return terms
