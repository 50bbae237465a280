"""The serving limits, in one place: the CLI's defaults, the app's checks and the docs read them."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_HOST = "127.0.0.1"  # loopback: nothing outside this machine reaches the server
DEFAULT_PORT = 8000
API_KEY_ENV = "KIRAG_API_KEY"


@dataclass(frozen=True)
class ServeSettings:
    """Limits of one server process. A request over a limit gets a 4xx naming the limit; a full
    queue gets 503 with Retry-After, so load beyond capacity is refused, never queued forever."""

    max_body_bytes: int = 1_000_000
    max_k: int = 100
    max_documents: int = 100  # texts of one rerank request
    max_text_chars: int = 10_000  # one query or passage
    model_queue: int = 4  # model calls running or waiting for the model lock
    search_queue: int = 32  # index searches running or waiting for a thread
    retry_after_s: int = 1
    api_key: str | None = None  # from the environment (API_KEY_ENV), never a flag
    graceful_shutdown_s: int = 30
