"""llama-cpp-python's own OpenAI-compatible server (llama_cpp.server, its [server] extra, run
through kirag.llm.llamacpp_server so that kirag's llama.cpp build loads its CPU backend) started
on a loopback port over a GGUF file: what `kirag bench rerank --remote` measures
through, and what the openai engine's tests run against."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kirag.core.cpus import usable_cpus
from kirag.llm.llamacpp_server import NO_PREFIX_REUSE


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LlamaServer:
    """llama_cpp.server on 127.0.0.1:`port`, serving `model` as `alias`; without
    `prefix_reuse` every request is evaluated from an empty cache (kirag.llm.llamacpp_server's
    --no-prefix-reuse: greedy answers that do not depend on the requests before)."""

    name = "llama_cpp.server"

    def __init__(
        self,
        model: Path,
        alias: str,
        port: int | None = None,
        context: int = 4096,
        api_key: str | None = None,
        prefix_reuse: bool = True,
    ):
        self.model, self.alias, self.context, self.api_key = model, alias, context, api_key
        self.prefix_reuse = prefix_reuse
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        """The server's command line."""
        command = [
            sys.executable, "-m", "kirag.llm.llamacpp_server",
            "--model", str(self.model), "--model_alias", self.alias,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", str(self.context), "--n_threads", str(usable_cpus()),
            "--flash_attn", "true",  # as kirag's llama.cpp engine
            "--verbose", "false",
        ]  # fmt: skip
        if not self.prefix_reuse:
            command.append(NO_PREFIX_REUSE)
        if self.api_key:  # on the command line: a test key, never a real one
            command += ["--api_key", self.api_key]
        return command

    def start(self, timeout: float = 120.0) -> LlamaServer:
        import httpx

        # the server's log in a file: a pipe nobody reads would block a talkative server
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (one per start, kept for output())
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.output()}")
            try:
                if httpx.get(f"{self.url}/models", headers=headers, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"{self.name} did not start in {timeout:.0f} s")

    def output(self) -> str:
        """The end of the server's log."""
        self.log.seek(0)
        return self.log.read().decode("utf-8", errors="replace")[-2000:]

    def kill(self) -> None:
        """SIGKILL, as a crash would (no clean shutdown)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None
