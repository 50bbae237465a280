"""The serving limits, in one place: the CLI's defaults, the app's checks and the docs read them."""

from __future__ import annotations

from dataclasses import dataclass

from kirag.core.ranges import COUNT, Range
from kirag.core.settings import check_settings, setting

DEFAULT_HOST = "127.0.0.1"  # loopback: nothing outside this machine reaches the server
DEFAULT_PORT = 8000
PORT = Range(0, 65535, integer=True)  # 0: any free port
API_KEY_ENV = "KIRAG_API_KEY"


@dataclass(frozen=True)
class ServeSettings:
    """Limits of one server process. A request over a limit gets a 4xx naming the limit; a full
    queue gets 503 with Retry-After, so load beyond capacity is refused, never queued forever."""

    max_body_bytes: int = setting(
        1_000_000, "largest request body in bytes; more gets 413", range=COUNT, affects="nothing"
    )
    max_k: int = setting(100, "largest k of a request", range=COUNT, affects="nothing")
    max_documents: int = setting(
        100, "most texts in one rerank request", range=COUNT, affects="nothing"
    )
    max_text_chars: int = setting(
        10_000, "longest query or passage in characters", range=COUNT, affects="nothing"
    )
    model_queue: int = setting(
        4,
        "model calls running or waiting for the model lock; more get 503 with Retry-After",
        range=COUNT,
        affects="nothing",
    )
    search_queue: int = setting(
        32,
        "index searches running or waiting for a thread; more get 503 with Retry-After",
        range=COUNT,
        affects="nothing",
    )
    retry_after_s: int = setting(
        1, "seconds a refused client is told to wait (Retry-After)", range=COUNT, affects="nothing"
    )
    api_key: str | None = setting(
        None,
        f"requests must carry it; read from the environment (${API_KEY_ENV}), never a flag",
        affects="nothing",
        cli=False,
    )
    graceful_shutdown_s: int = setting(
        30,
        "seconds running requests get to finish after SIGTERM",
        range=COUNT,
        affects="nothing",
    )

    def __post_init__(self) -> None:
        check_settings(self)
