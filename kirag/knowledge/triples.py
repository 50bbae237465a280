"""Knowledge triples: the value type, the tolerant `<head; relation; tail>` parser, and entity
normalisation. Pure functions: garbage in gives no triples, never an exception."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

# A triple as LLMs write it: "<head; relation; tail>". Also accepted: "(head; relation; tail)",
# "<head | relation | tail>", and lines "head; relation; tail" when `loose=True`.
_ANGLED = re.compile(r"<([^<>\n]{3,400})>")
_OTHER_BRACKETS = re.compile(r"\(([^()\n]{3,400})\)|\[([^\[\]\n]{3,400})\]")
_SEPARATORS = (";", "|")
PLACEHOLDERS = {"head entity", "relation", "tail entity", "head", "tail", "entity", "..."}
# The reference's own parser (jyfang6/kirag kg_generator.py): every `<…>`, inside stripped, kept
# as written unless it contains a placeholder; used by reference mode (extraction, import, steps).
_RAW = re.compile(r"<([^>]*)>")
RAW_PLACEHOLDERS = ("head entity", "tail entity")
RAW_TEXT = "raw_text"  # Triple.metadata key of a triple kept as written


@dataclass(slots=True)
class Triple:
    """A fact `head --relation--> tail` extracted from sentence `sentence_index` of document
    `doc_id`. `source` names the extractor that produced it."""

    head: str
    relation: str
    tail: str
    doc_id: str = ""
    title: str | None = None
    sentence_index: int = -1
    sentence: str = ""
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def in_document(
        cls,
        fact: tuple[str, str, str],
        document: Any,
        sentence_index: int,
        sentence: str,
        source: str,
    ) -> Triple:
        """A (head, relation, tail) found in sentence `sentence_index` of `document`."""
        head, relation, tail = fact
        return cls(
            head,
            relation,
            tail,
            doc_id=document.id,
            title=document.title,
            sentence_index=sentence_index,
            sentence=sentence,
            source=source,
        )

    @property
    def text(self) -> str:
        """The triple as the reference writes it: `<head; relation; tail>` (or, for a triple
        kept as written by `raw_triple`, exactly the text it was found as)."""
        raw = self.metadata.get(RAW_TEXT) if self.metadata else None
        return raw if raw is not None else f"<{self.head}; {self.relation}; {self.tail}>"

    @property
    def sentence_text(self) -> str:
        """The triple read as a plain sentence ("head relation tail"), used for embedding."""
        return f"{self.head} {self.relation} {self.tail}"

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity for deduplication: normalised head, relation and tail."""
        return (entity_key(self.head), self.relation.strip().lower(), entity_key(self.tail))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Triple:
        return cls(**data)


def normalize_entity(text: str) -> str:
    """Light normalisation of an entity mention: Unicode NFC, surrounding quotes and
    punctuation trimmed, whitespace collapsed. Case and articles are kept ("The Wall")."""
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text.strip(" \"'`“”‘’.,:")


def entity_key(text: str) -> str:
    """The identity of an entity for linking and the entity graph: normalised, lower-cased,
    without a leading article ("the Black Sea" and "Black Sea" are one node)."""
    key = normalize_entity(text).lower()
    return re.sub(r"^(the|a|an)\s+", "", key) if len(key.split()) > 1 else key


def _split(inner: str) -> tuple[str, str, str] | None:
    """head, relation, tail of "h; r; t" (or "h | r | t"); extra separators stay in the tail."""
    for separator in _SEPARATORS:
        parts = [p.strip() for p in inner.split(separator)]
        if len(parts) >= 3 and all(parts[:2]):
            return parts[0], parts[1], f"{separator} ".join(parts[2:]).strip()
    return None


def parse_triples(text: str, loose: bool = False) -> list[tuple[str, str, str]]:
    """Every `<head; relation; tail>` in `text`, in order, without placeholders and duplicates.

    With `loose=True` a line holding "head; relation; tail" without brackets counts too (small
    models often drop the brackets)."""
    if not isinstance(text, str) or not text:
        return []
    found: list[tuple[str, str, str]] = []
    spans = [m.group(1) for m in _ANGLED.finditer(text)]
    if not spans:  # some models bracket with () or [] instead
        spans = [m.group(1) or m.group(2) for m in _OTHER_BRACKETS.finditer(text)]
    if loose:
        spans += [line for line in text.splitlines() if not _ANGLED.search(line)]
    seen: set[tuple[str, str, str]] = set()
    for span in spans:
        triple = _split(span)
        if triple is None:
            continue
        head, relation, tail = (
            normalize_entity(triple[0]),
            triple[1].strip(),
            normalize_entity(triple[2]),
        )
        if not head or not relation or not tail:
            continue
        if {head.lower(), relation.lower(), tail.lower()} & PLACEHOLDERS:
            continue
        key = (entity_key(head), relation.lower(), entity_key(tail))
        if key not in seen:
            seen.add(key)
            found.append((head, relation, tail))
    return found


def raw_triple_texts(text: str) -> list[str]:
    """The reference's parse: `<inner.strip()>` for every `<([^>]*)>` in `text` whose inner text
    holds neither "head entity" nor "tail entity". No normalisation, no deduplication."""
    return [
        f"<{inner.strip()}>"
        for inner in _RAW.findall(text or "")
        if not any(p in inner for p in RAW_PLACEHOLDERS)
    ]


def raw_triple(text: str, document: Any, sentence_index: int, sentence: str, source: str) -> Triple:
    """A triple kept exactly as `text` (its `.text`); head, relation and tail are its first
    ";"-separated parts (the rest joined into the tail) for kirag's entity graph."""
    inner = text[1:-1] if text.startswith("<") and text.endswith(">") else text
    parts = [p.strip() for p in inner.split(";")]
    parts += [""] * (3 - len(parts))
    triple = Triple.in_document(
        (parts[0], parts[1], "; ".join(parts[2:]).strip()), document, sentence_index, sentence,
        source,
    )  # fmt: skip
    triple.metadata[RAW_TEXT] = text
    return triple


def dedupe_triples(triples: list[Triple]) -> list[Triple]:
    """Drop later triples with the same normalised (head, relation, tail) within a document."""
    seen: set[tuple[str, str, str, str]] = set()
    out = []
    for triple in triples:
        key = (triple.doc_id, *triple.key)
        if key not in seen:
            seen.add(key)
            out.append(triple)
    return out
