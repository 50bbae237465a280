"""The request checks every front end applies (HTTP and MCP): one definition of each limit's
rule and message."""

from __future__ import annotations

from collections.abc import Sequence

from kirag.errors import KiragError
from kirag.serve.settings import ServeSettings


class LimitError(KiragError):
    """A request over one of the server's limits; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def check_text(settings: ServeSettings, name: str, text: str) -> None:
    if not text.strip():
        raise LimitError(f"{name} is empty")
    if len(text) > settings.max_text_chars:
        raise LimitError(f"{name} is over {settings.max_text_chars} characters")


def check_k(settings: ServeSettings, name: str, k: int | None) -> None:
    if k is not None and k < 1:
        raise LimitError(f"{name} must be >= 1")
    if k is not None and k > settings.max_k:
        raise LimitError(f"{name} is over this server's limit of {settings.max_k}")


def check_documents(settings: ServeSettings, texts: Sequence[str]) -> None:
    if not texts:
        raise LimitError("no documents to rerank")
    if len(texts) > settings.max_documents:
        raise LimitError(
            f"{len(texts)} documents: over this server's limit of {settings.max_documents}"
        )
    for i, text in enumerate(texts):
        if len(text) > settings.max_text_chars:
            raise LimitError(f"document {i} is over {settings.max_text_chars} characters")
