"""An HTTP client for OpenAI-compatible servers: JSON requests with a per-request timeout,
retries with exponential backoff on 429 / 5xx / timeouts / refused connections (a `Retry-After`
header is honoured), and one-line errors (ServerError subclasses) for a wrong URL, key or
request. The API key lives only in the request headers: never logged, never in a message."""

from __future__ import annotations

import logging
import time

from kirag.core.optional import require
from kirag.errors import ServerAuthError, ServerError

log = logging.getLogger(__name__)

RETRY_STATUS = (408, 429, 500, 502, 503, 504)
BACKOFF_BASE = 0.5  # seconds before the first retry; doubled each time
BACKOFF_CAP = 20.0


def backoff_seconds(attempt: int, retry_after: str | None = None) -> float:
    """Seconds to wait before retry `attempt` (0-based): the server's Retry-After when it gives
    seconds, else BACKOFF_BASE * 2**attempt, capped."""
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), BACKOFF_CAP)
        except ValueError:
            pass
    return min(BACKOFF_BASE * 2**attempt, BACKOFF_CAP)


class ServerClient:
    """JSON over HTTP to `base_url` (the API root, e.g. http://host:8000/v1) and to the server's
    root (where vLLM and llama-cpp-python keep tokenize and version endpoints)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout: float,
        retries: int,
        api_key_env: str = "OPENAI_API_KEY",
    ):
        httpx = require("httpx", "openai", "the openai engine")
        if timeout <= 0:
            raise ServerError("timeout must be > 0 seconds", parameters=("timeout",))
        if retries < 0:
            raise ServerError("retries must be >= 0", parameters=("retries",))
        self.base_url = base_url.rstrip("/")
        self.root_url = self.base_url.removesuffix("/v1")
        self.retries = retries
        self.api_key_env = api_key_env
        self.retried = 0  # retries made (429 storms, restarts), for reports
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._httpx = httpx
        self._http = httpx.Client(headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def get(self, path: str) -> dict:
        return self._request("GET", f"{self.base_url}/{path}")

    def post(self, path: str, body: dict) -> dict:
        return self._request("POST", f"{self.base_url}/{path}", body)

    def post_root(self, path: str, body: dict) -> dict:
        return self._request("POST", f"{self.root_url}/{path}", body)

    def get_root(self, path: str) -> dict | None:
        """A GET on the server's root that may not exist (None on any 4xx or non-JSON)."""
        try:
            response = self._http.get(f"{self.root_url}/{path}")
        except self._httpx.HTTPError:
            return None
        if response.status_code >= 400:
            return None
        try:
            data = response.json()
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _request(self, method: str, url: str, body: dict | None = None) -> dict:
        httpx = self._httpx
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._http.request(method, url, json=body)
            except (httpx.TimeoutException, httpx.ConnectError, httpx.RemoteProtocolError) as exc:
                if last:
                    raise ServerError(
                        _unreachable(url, exc, self.retries), parameters=("base_url", "timeout")
                    ) from None
                self._wait(attempt, None, type(exc).__name__)
                continue
            except httpx.HTTPError as exc:
                raise ServerError(f"{url}: {type(exc).__name__}: {exc}") from None
            if response.status_code in RETRY_STATUS and not last:
                self._wait(attempt, response.headers.get("retry-after"), response.status_code)
                continue
            return self._json(url, response)
        raise AssertionError("unreachable")

    def _wait(self, attempt: int, retry_after: str | None, why) -> None:
        seconds = backoff_seconds(attempt, retry_after)
        self.retried += 1
        log.info("server answered %s: retry %d in %.1fs", why, attempt + 1, seconds)
        time.sleep(seconds)

    def _json(self, url: str, response) -> dict:
        status = response.status_code
        if status in (401, 403):
            raise ServerAuthError(
                f"{url} refused the API key (HTTP {status}): set the right key in the "
                f"environment variable {self.api_key_env} (or name another as api_key_env)",
                parameters=("api_key_env",),
            )
        if status == 404:
            raise ServerError(
                f"{url} does not exist (HTTP 404): check base_url (the API root, usually "
                "ending in /v1)",
                parameters=("base_url",),
            )
        if status >= 400:
            raise ServerError(f"{url} answered HTTP {status}: {_detail(response)}")
        try:
            return response.json()
        except ValueError:
            raise ServerError(
                f"{url} did not answer JSON: is base_url an OpenAI-compatible API?",
                parameters=("base_url",),
            ) from None


def _detail(response) -> str:
    """The server's error message, on one line."""
    try:
        data = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300]
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        error = error.get("message") or error.get("detail") or error
    return " ".join(str(error).split())[:300]


def _unreachable(url: str, exc: Exception, retries: int) -> str:
    what = "timed out" if "Timeout" in type(exc).__name__ else "cannot be reached"
    return (
        f"{url} {what} after {retries + 1} attempts ({type(exc).__name__}): check base_url "
        "and that the server is running (raise timeout for long generations)"
    )
