"""`kirag serve --ray`: the same app as a Ray Serve deployment on a local Ray cluster started by
the server process itself — /health and /search over HTTP on loopback equal the Python API,
then SIGTERM shuts Serve and Ray down and the process exits 0."""

from __future__ import annotations

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("ray.serve", reason="ray[serve] (the ray extra) is not installed")

from kirag.bench.serve import ServerProcess  # noqa: E402

pytestmark = pytest.mark.ray

# Ray's head node, the Serve controller, its proxy and a replica on a shared 2-core machine
RAY_START_S = 120


def test_serve_on_ray_answers_search_like_the_python_api(enwiki_bm25, monkeypatch):
    from kirag.retrieval.factory import load_retriever

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    args = ["--index", str(enwiki_bm25), "--ray", "--replicas", "1", "--replica-cpus", "0.5"]
    server = ServerProcess(args).start(timeout=RAY_START_S)
    serving = "on Ray Serve (1 replica(s), 0.5 CPU each)"
    try:
        server.wait_for(serving, timeout=RAY_START_S)
        health = httpx.get(f"{server.url}/health", timeout=30).json()
        assert health["search"] is True and health["rerank"] is False
        assert health["indexes"] == [str(enwiki_bm25)]
        direct = load_retriever(enwiki_bm25).search("Who wrote Animal Farm?", 5)
        body = httpx.post(
            f"{server.url}/search", json={"query": "Who wrote Animal Farm?", "k": 5}, timeout=30
        ).json()
        assert [h["id"] for h in body["hits"]] == [h.doc_id for h in direct]
        assert [h["score"] for h in body["hits"]] == pytest.approx([h.score for h in direct])
        # the app's own limits hold inside the replica
        over = httpx.post(f"{server.url}/search", json={"query": "x", "k": 10_000}, timeout=30)
        assert over.status_code == 422 and "k" in over.json()["error"]
    finally:
        code = server.stop(timeout=60)
        output = server.output(tail=None)
        server.log.close()
    assert code == 0, output[-4000:]
    assert serving in output


def test_sigterm_while_the_deployment_starts_is_a_clean_exit(enwiki_bm25, monkeypatch):
    """Ray's own SIGTERM handler aborts the process: a SIGTERM before /health settles (in CI the
    proxy answered /health while `serve.run` still slept) must end it with 0, not SIGABRT."""
    import os
    import subprocess

    from kirag.bench.serve import free_port, kirag_command
    from kirag.core.interrupts import TEST_ENV

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    args = ["--index", str(enwiki_bm25), "--ray", "--port", str(free_port())]
    done = subprocess.run(
        kirag_command("-q", "serve", *args),
        env={**os.environ, TEST_ENV: "ray-serve-deploying"},
        capture_output=True,
        text=True,
        timeout=RAY_START_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stopped before the deployment started" in done.stdout
    assert "SIGTERM received" not in done.stderr


def test_ray_flags_without_ray_are_refused(capsys, enwiki_bm25):
    from kirag.cli import main

    assert main(["serve", "--index", str(enwiki_bm25), "--replicas", "2"]) == 2
    assert "only apply with --ray" in capsys.readouterr().err
    assert main(["serve", "--index", str(enwiki_bm25), "--ray", "--mcp"]) == 2
    assert "give one of them" in capsys.readouterr().err
