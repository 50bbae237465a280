"""Which documents a mention names by title: the mention is a document's title, or one of its
word n-grams is ("Canadian province of Alberta" -> Alberta). Titles are read from a DocStore
once, on first use."""

from __future__ import annotations

from collections.abc import Iterable

MAX_TITLE_WORDS = 8
# what a word carries around it in running text ("Huxley?", "(Alberta),"): not part of a title
_PUNCTUATION = ".,;:'\"()?!"


class TitleLookup:
    """Document ids by the titles that mentions name (case-insensitive)."""

    def __init__(self, docstore):
        self.docstore = docstore
        self._titles: dict[str, list[str]] | None = None

    def documents(self, mentions: Iterable[str]) -> list[str]:
        """Ids of the documents whose title a mention names, in the order they are named."""
        if self._titles is None:
            self._titles = {}
            for doc_id, title in self.docstore.titles():
                if title:
                    self._titles.setdefault(title.lower(), []).append(doc_id)
        doc_ids: list[str] = []
        for mention in mentions:
            tokens = mention.lower().split()
            for size in range(min(len(tokens), MAX_TITLE_WORDS), 0, -1):
                for start in range(len(tokens) - size + 1):
                    gram = " ".join(tokens[start : start + size]).strip(_PUNCTUATION)
                    if len(gram) >= 3 and gram in self._titles:
                        doc_ids += self._titles[gram]
        return list(dict.fromkeys(doc_ids))
