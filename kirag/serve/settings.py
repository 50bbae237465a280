"""The serving limits, in one place: the CLI's defaults, the app's checks and the docs read them."""

from __future__ import annotations

from dataclasses import dataclass, field

from kirag.core.ranges import COUNT, Range, check_fields

DEFAULT_HOST = "127.0.0.1"  # loopback: nothing outside this machine reaches the server
DEFAULT_PORT = 8000
PORT = Range(0, 65535, integer=True)  # 0: any free port
API_KEY_ENV = "KIRAG_API_KEY"


@dataclass(frozen=True)
class ServeSettings:
    """Limits of one server process. A request over a limit gets a 4xx naming the limit; a full
    queue gets 503 with Retry-After, so load beyond capacity is refused, never queued forever."""

    max_body_bytes: int = field(default=1_000_000, metadata={"range": COUNT})
    max_k: int = field(default=100, metadata={"range": COUNT})
    # texts of one rerank request
    max_documents: int = field(default=100, metadata={"range": COUNT})
    max_text_chars: int = field(default=10_000, metadata={"range": COUNT})  # one query or passage
    # model calls running or waiting for the model lock
    model_queue: int = field(default=4, metadata={"range": COUNT})
    # index searches running or waiting for a thread
    search_queue: int = field(default=32, metadata={"range": COUNT})
    retry_after_s: int = field(default=1, metadata={"range": COUNT})
    api_key: str | None = None  # from the environment (API_KEY_ENV), never a flag
    graceful_shutdown_s: int = field(default=30, metadata={"range": COUNT})

    def __post_init__(self) -> None:
        check_fields(self)
