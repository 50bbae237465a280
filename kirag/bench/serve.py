"""`kirag bench serve`: what serving over HTTP costs. The same searches through `kirag serve`
(a real server process on loopback, N client threads for a fixed time) and through the Python
API in this process (the same N threads calling the retriever), in the same run: latency p50/p99,
throughput and the overhead ratio. Then overload: more clients than the model queue holds, on
the reranker: 503s with Retry-After, never 500s or hangs. The load helpers here are the ones
the tests use."""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from kirag.core.ranges import COUNT, POSITIVE

SERVER_START_S = 180


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kirag_command(*args: str) -> list[str]:
    """`kirag ARGS` with this interpreter (the venv's kirag, whatever PATH says)."""
    return [sys.executable, "-c", "import sys; from kirag.cli import main; sys.exit(main())", *args]


class ServerProcess:
    """`kirag serve ARGS --port P` as a child process, up when /health answers."""

    def __init__(self, args: Sequence[str], port: int | None = None, env: dict | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [*args, "--port", str(self.port)]
        self.env = {**os.environ, "KIRAG_PROGRESS": "0", **(env or {})}
        self.process: subprocess.Popen | None = None
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in __exit__)

    def start(self, timeout: float = SERVER_START_S) -> ServerProcess:
        import httpx

        self.process = subprocess.Popen(
            kirag_command("-q", "serve", *self.args),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"kirag serve exited ({self.process.returncode}):\n{self.output()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"kirag serve did not answer /health in {timeout} s:\n{self.output()}")

    def output(self, tail: int | None = 4000) -> str:
        """The server's log (its last `tail` characters; None: all of it)."""
        self.log.seek(0)
        text = self.log.read().decode("utf-8", errors="replace")
        return text[-tail:] if tail else text

    def wait_for(self, text: str, timeout: float = SERVER_START_S) -> None:
        """Until the server has printed `text`: /health may answer before the server says it
        serves (Ray Serve's proxy routes while `serve.run` still waits for the app)."""
        deadline = time.monotonic() + timeout
        while text not in self.output(tail=None):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"kirag serve did not print {text!r}:\n{self.output()}")
            time.sleep(0.2)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (graceful shutdown) and wait."""
        self.process.terminate()
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                self.stop()
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summarize(latencies: list[float], statuses: Counter, clients: int, seconds: float) -> dict:
    """Counts, throughput of the 200s and their latency percentiles."""
    return {
        "clients": clients,
        "seconds": round(seconds, 2),
        "requests": sum(statuses.values()),
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=lambda x: str(x[0]))},
        "throughput_per_s": round(statuses.get(200, 0) / max(seconds, 1e-9), 2),
        "p50_ms": _ms(percentile(latencies, 50)),
        "p99_ms": _ms(percentile(latencies, 99)),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def run_clients(call: Callable[[int, int], int], clients: int, duration_s: float) -> dict:
    """`clients` threads calling `call(client, n) -> status` until `duration_s` has passed (a
    call in flight then finishes; each has its own timeout): latencies of the 200s, statuses."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + duration_s

    def worker(client: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                status = call(client, n)
            except Exception as exc:  # a timeout or a dropped connection is a result here
                status = type(exc).__name__
            elapsed = time.perf_counter() - start
            with lock:
                statuses[status] += 1
                if status == 200:
                    latencies.append(elapsed)
            n += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return summarize(latencies, statuses, clients, time.perf_counter() - started)


def http_load(
    url: str,
    path: str,
    bodies: Sequence[dict],
    clients: int,
    duration_s: float,
    timeout_s: float = 30,
    headers: dict | None = None,
) -> dict:
    """N clients POSTing `bodies` (round robin) to url+path for a fixed time; 503s must carry
    Retry-After (counted apart when they do not)."""
    import httpx

    sessions = [httpx.Client(timeout=timeout_s, headers=headers) for _ in range(clients)]

    def call(client: int, n: int):
        response = sessions[client].post(
            url + path, json=bodies[(client + n * clients) % len(bodies)]
        )
        if response.status_code == 503 and "retry-after" not in response.headers:
            return "503 without Retry-After"
        return response.status_code

    try:
        return run_clients(call, clients, duration_s)
    finally:
        for session in sessions:
            session.close()


def rss_mb(pid: int) -> float:
    import psutil

    return round(psutil.Process(pid).memory_info().rss / 2**20, 1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=COUNT, default=4, help="concurrent clients")
    parser.add_argument("--duration", type=POSITIVE, default=10.0, help="seconds per measurement")
    parser.add_argument(
        "--overload-clients", type=COUNT, default=8, help="rerank clients in the overload test"
    )
    parser.add_argument("--model-queue", type=COUNT, default=2, help="the server's model queue")
    parser.add_argument(
        "--corpus", default="enwiki-sample", help="corpus of the BM25 index searched"
    )
    parser.add_argument("--questions", default=None, help="queries (default: the bundled ones)")


def _queries(args) -> list[str]:
    from kirag.eval.datasets import load_bundled_questions, load_questions

    examples = load_questions(args.questions) if args.questions else load_bundled_questions()
    return [e.question for e in examples]


def run(args: argparse.Namespace) -> dict:
    from kirag.errors import SettingsError
    from kirag.io.corpus import resolve_corpus_path
    from kirag.retrieval.bm25 import BM25Retriever

    for flag, value in (("--clients", args.clients), ("--overload-clients", args.overload_clients),
                        ("--model-queue", args.model_queue)):  # fmt: skip
        if value < 1:
            raise SettingsError(f"{flag} must be >= 1")
    queries = _queries(args)
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "bm25"
        built = time.perf_counter()
        BM25Retriever.build(resolve_corpus_path(args.corpus), index)
        built = time.perf_counter() - built
        retriever = BM25Retriever(index)

        def direct(client: int, n: int) -> int:
            retriever.search(
                queries[(client + n * args.clients) % len(queries)], 10, with_documents=True
            )
            return 200

        bodies = [{"query": q, "k": 10} for q in queries]
        results = {
            "corpus": args.corpus,
            "queries": len(queries),
            "index_build_s": round(built, 1),
            "cpus": os.cpu_count(),
            # what else ran on the machine: every figure here shares its CPUs with that
            "load_average_at_start": round(os.getloadavg()[0], 1),
        }
        results["direct_search"] = run_clients(direct, args.clients, args.duration)
        with ServerProcess(["--index", str(index)]) as server:
            http_load(server.url, "/search", bodies, 1, 1.0)  # warm-up
            rss_before = rss_mb(server.pid)
            results["http_search"] = http_load(
                server.url, "/search", bodies, args.clients, args.duration
            )
            results["http_search"]["server_rss_mb"] = {
                "before": rss_before,
                "after": rss_mb(server.pid),
            }
        direct_, http = results["direct_search"], results["http_search"]
        results["overhead"] = {
            "p50_ratio": _ratio(http["p50_ms"], direct_["p50_ms"]),
            "p99_ratio": _ratio(http["p99_ms"], direct_["p99_ms"]),
            "throughput_ratio": _ratio(http["throughput_per_s"], direct_["throughput_per_s"]),
        }
        rerank = [
            {"query": q, "documents": [f"{q} passage {i}" for i in range(2)]} for q in queries
        ]
        with ServerProcess(
            ["--reranker", "rank1", "--engine", "llamacpp", "--thinking-budget", "0",
             "--model-queue", str(args.model_queue)]
        ) as server:  # fmt: skip
            http_load(server.url, "/v1/rerank", rerank, 1, 1.0)
            results["rerank_within_queue"] = http_load(
                server.url, "/v1/rerank", rerank, args.model_queue, args.duration
            )
            results["rerank_overload"] = http_load(
                server.url, "/v1/rerank", rerank, args.overload_clients, args.duration
            )
            results["rerank_overload"]["model_queue"] = args.model_queue
    results["load_average_at_end"] = round(os.getloadavg()[0], 1)
    return results


def _ratio(a, b):
    return None if not a or not b else round(a / b, 3)


@contextlib.contextmanager
def serving(args: Sequence[str], env: dict | None = None) -> Iterator[ServerProcess]:
    """A server for the length of a with-block."""
    with ServerProcess(args, env=env) as server:
        yield server
