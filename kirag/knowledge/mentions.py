"""Which passages share a name: an index of the capitalised names each passage writes.

A bridge question's second passage is often about an entity the corpus has no article for (the
sample has "Aldous Huxley" and "Animal Farm", not "George Orwell"): the link between the two
passages is a name both write, not a title. Names are capitalised word sequences ("George
Orwell", "Court of Criminal Appeals"); a name written in too many passages links nothing.
Built from a DocStore on first use (memory: one entry per distinct name and passage).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

NAME = re.compile(r"\b[A-Z][\w'’-]+(?:\s+(?:of|the|de|del|von|van|al|in|and)?\s*[A-Z][\w'’-]+)*")


def names_in(text: str) -> set[str]:
    """The capitalised names a text writes (at least three characters)."""
    return {name for name in NAME.findall(text) if len(name) >= 3}


class MentionLookup:
    """Passage ids by the names they write."""

    def __init__(self, docstore):
        self.docstore = docstore
        self._passages: dict[str, list[str]] | None = None

    def passages(self) -> dict[str, list[str]]:
        if self._passages is None:
            self._passages = {}
            for document in self.docstore:
                for name in names_in(document.text):
                    self._passages.setdefault(name, []).append(document.id)
        return self._passages

    def sharing(
        self, doc_ids: Sequence[str], skip_names_in: str = "", max_passages: int = 100
    ) -> list[str]:
        """Passages that write a name the `doc_ids` passages write, except names that
        `skip_names_in` already writes (the question's own) and names in more than
        `max_passages` passages."""
        index = self.passages()
        skip = skip_names_in.lower()
        found: list[str] = []
        for document in self.docstore.get_many(list(doc_ids)):
            if document is None:
                continue
            for name in sorted(names_in(document.text)):
                shared = index.get(name, ())
                if name.lower() not in skip and len(shared) <= max_passages:
                    found += shared
        return list(dict.fromkeys(found))


def article_of(doc_id: str) -> str:
    """The article a `Title#N` passage id belongs to (the id itself when it has no `#N`)."""
    head, sep, tail = doc_id.rpartition("#")
    return head if sep and tail.isdigit() else doc_id


def other_articles(doc_ids: Iterable[str], sources: Iterable[str]) -> list[str]:
    """`doc_ids` without the passages of the articles the `sources` belong to."""
    own = {article_of(s) for s in sources}
    return [d for d in doc_ids if article_of(d) not in own]
