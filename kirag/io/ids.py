"""The id rule shared by every reader and run writer: a document or query id is a non-empty
string without whitespace (no space, tab, newline or other Unicode space). TREC and MS MARCO run
files separate their columns by whitespace, so an id holding one would be written as a line no
reader (trec_eval, kirag's own) can parse back."""

from __future__ import annotations

from kirag.errors import InputError


def has_whitespace(text: str) -> bool:
    """True when `text` holds any character `str.split()` would split on."""
    return any(c.isspace() for c in text)


def check_id(value: str, what: str = "document id") -> str:
    """`value` unchanged when it obeys the id rule; otherwise an InputError saying why."""
    if not value:
        raise InputError(f"empty {what}")
    if has_whitespace(value):
        raise InputError(
            f"{what} {value!r} contains whitespace: run files separate columns by whitespace, "
            "so kirag ids may not hold any (replace it, e.g. with '_')"
        )
    return value
