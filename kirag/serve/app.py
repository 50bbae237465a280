"""The HTTP API of `kirag serve` (FastAPI): search, KiRAG answers (streamed as server-sent
events), reranking in the Hugging Face TEI shape (`POST /rerank`) and the Cohere/Jina shape
(`POST /v1/rerank`, `/v2/rerank`), health, the OpenAPI docs and a page at `/`.

Safe by default: the CLI binds loopback; with an API key set every route but `/`, `/health` and
the docs needs it; bodies, k and texts are capped; no request names a file; model calls hold the
process-wide model lock while index searches run concurrently; a full queue answers 503 with
Retry-After."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import uuid
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from kirag.core.concurrency import MODEL_LOCK, off_loop
from kirag.errors import KiragError
from kirag.report.page import asset
from kirag.serve.gate import Full, Gate
from kirag.serve.limits import LimitError, check_documents, check_k, check_text
from kirag.serve.services import NotLoaded, Services
from kirag.serve.settings import ServeSettings

log = logging.getLogger(__name__)

OPEN_PATHS = {"/", "/health", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/redoc"}
OPEN_PREFIXES = ("/assets/",)


class SearchRequest(BaseModel):
    query: str
    k: int = Field(10, ge=1)


class AnswerRequest(BaseModel):
    question: str
    k: int = Field(10, ge=1)
    stream: bool = Field(False, description="server-sent events: one per turn, then the answer")


class TEIRerankRequest(BaseModel):
    """text-embeddings-inference's /rerank request."""

    query: str
    texts: list[str]
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool = False
    truncation_direction: str = "Right"


class RerankDocument(BaseModel):
    text: str


class CohereRerankRequest(BaseModel):
    """Cohere's and Jina's /v1/rerank request (documents as strings or {"text": ...})."""

    model: str | None = None
    query: str
    documents: list[str | RerankDocument]
    top_n: int | None = Field(None, ge=1)
    return_documents: bool = False
    max_chunks_per_doc: int | None = None
    max_tokens_per_doc: int | None = None
    rank_fields: list[str] | None = None


def create_app(services: Services, settings: ServeSettings | None = None) -> FastAPI:
    """The app over loaded services; `settings` holds the limits."""
    settings = settings or ServeSettings()
    model_gate = Gate("model", settings.model_queue)
    search_gate = Gate("search", settings.search_queue)
    app = FastAPI(
        title="kirag",
        summary="retrieval, Rank1 reranking and KiRAG answers over HTTP",
        version=services.names.get("version", ""),
    )
    app.state.services = services
    app.state.gates = (model_gate, search_gate)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if settings.api_key and not _open(request.url.path):
            given = request.headers.get("x-api-key") or _bearer(
                request.headers.get("authorization")
            )
            if not given or not hmac.compare_digest(given.encode(), settings.api_key.encode()):
                return _error(
                    401, "missing or wrong API key (Authorization: Bearer KEY or X-API-Key)"
                )
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            return _error(413, f"request body over {settings.max_body_bytes} bytes")
        if length is None and request.method in ("POST", "PUT", "PATCH"):
            # a streamed body of unknown size is refused rather than read without a bound
            return _error(411, "send the request body with a Content-Length")
        return await call_next(request)

    @app.exception_handler(Full)
    async def full(request: Request, exc: Full):
        return _error(503, str(exc), headers={"Retry-After": str(settings.retry_after_s)})

    @app.exception_handler(LimitError)
    async def limit(request: Request, exc: LimitError):
        return _error(exc.status, str(exc))

    @app.exception_handler(NotLoaded)
    async def not_loaded(request: Request, exc: NotLoaded):
        return _error(404, str(exc))

    @app.exception_handler(KiragError)
    async def kirag_error(request: Request, exc: KiragError):
        return _error(400, str(exc))

    async def run_search(query: str, k: int) -> list[dict]:
        check_text(settings, "query", query)
        check_k(settings, "k", k)
        uses_model = services.search_uses_model
        with model_gate if uses_model else search_gate:
            return await off_loop(services.search, query, k, uses_model=uses_model)

    async def run_rerank(query: str, texts: list[str], top_n: int | None) -> list[dict]:
        check_text(settings, "query", query)
        check_documents(settings, texts)
        check_k(settings, "top_n", top_n)
        with model_gate:
            return await off_loop(services.rerank, query, texts, top_n)

    @app.get("/health")
    async def health() -> dict:
        """Liveness and what this server can do."""
        return {
            **services.health(),
            "queues": {g.name: {"inside": g.inside, "limit": g.limit, "refused": g.refused}
                       for g in (model_gate, search_gate)},
            # the resolved limits (the run's configuration; the key itself never shown)
            "limits": {k: v for k, v in asdict(settings).items() if k != "api_key"},
            "api_key_required": bool(settings.api_key),
        }  # fmt: skip

    @app.post("/search")
    async def search(body: SearchRequest) -> dict:
        """The top-k hits of one query (the index, or the indexes fused)."""
        return {"query": body.query, "k": body.k, "hits": await run_search(body.query, body.k)}

    @app.post("/answer", response_model=None)
    async def answer(body: AnswerRequest, request: Request):
        """KiRAG's answer with its reasoning chain; with `"stream": true` (or Accept:
        text/event-stream) server-sent events: `turn` per turn, then `answer`."""
        check_text(settings, "question", body.question)
        check_k(settings, "k", body.k)
        stream = body.stream or "text/event-stream" in request.headers.get("accept", "")
        if not stream:
            with model_gate:
                return await off_loop(services.answer, body.question, body.k)
        model_gate.__enter__()  # refused (503) before the stream starts
        return _answer_stream(services, model_gate, body.question, body.k)

    @app.post("/rerank")
    async def rerank_tei(body: TEIRerankRequest) -> list[dict]:
        """Hugging Face text-embeddings-inference's shape: [{index, score, text?}], best first."""
        rows = await run_rerank(body.query, body.texts, None)
        return [
            {"index": r["index"], "score": r["score"]}
            | ({"text": body.texts[r["index"]]} if body.return_text else {})
            for r in rows
        ]

    async def rerank_cohere(body: CohereRerankRequest) -> dict:
        texts = [d if isinstance(d, str) else d.text for d in body.documents]
        rows = await run_rerank(body.query, texts, body.top_n)
        results = []
        for r in rows:
            result: dict[str, Any] = {"index": r["index"], "relevance_score": r["score"]}
            if body.return_documents:
                result["document"] = {"text": texts[r["index"]]}
            results.append(result)
        return {
            "id": str(uuid.uuid4()),
            "model": body.model or services.names.get("reranker", ""),
            "results": results,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
            "usage": {"total_tokens": 0},
        }

    app.post("/v1/rerank", summary="Cohere / Jina rerank (v1)")(rerank_cohere)
    app.post("/v2/rerank", summary="Cohere rerank (v2)")(rerank_cohere)

    @app.post("/explain/rerank")
    async def rerank_explained(body: CohereRerankRequest) -> dict:
        """The rerank with what the reranker says: P(true), reasoning, fallback (the page's)."""
        texts = [d if isinstance(d, str) else d.text for d in body.documents]
        return {"results": await run_rerank(body.query, texts, body.top_n)}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return _page(services)

    @app.get("/assets/{name}", include_in_schema=False)
    async def assets(name: str) -> Response:
        # a fixed table, never a path from the request
        kinds = {"report.js": "text/javascript", "report.css": "text/css"}
        if name not in kinds:
            return _error(404, "no such asset")
        return Response(asset(name), media_type=kinds[name])

    return app


def _answer_stream(services: Services, gate: Gate, question: str, k: int):
    from sse_starlette.sse import EventSourceResponse

    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()

    def on_turn(event: dict) -> None:
        loop.call_soon_threadsafe(events.put_nowait, ("turn", event))

    def work() -> None:
        try:
            with MODEL_LOCK:
                item = services.answer(question, k, on_turn)
            loop.call_soon_threadsafe(events.put_nowait, ("answer", item))
        except Exception as exc:  # reported to the client as an event, logged here
            if not isinstance(exc, KiragError):
                log.exception("answer failed")
            loop.call_soon_threadsafe(events.put_nowait, ("error", {"error": str(exc)}))
        finally:
            loop.call_soon_threadsafe(events.put_nowait, None)

    async def generate():
        task = loop.run_in_executor(None, work)
        try:
            while (event := await events.get()) is not None:
                name, data = event
                yield {"event": name, "data": json.dumps(data, ensure_ascii=False)}
        finally:
            await task
            gate.__exit__(None, None, None)

    return EventSourceResponse(generate(), ping=15)


def _open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _page(services: Services) -> str:
    from importlib import resources

    template = resources.files("kirag.serve").joinpath("assets", "index.html").read_text("utf-8")
    return template.replace("__CAPABILITIES__", json.dumps(services.health()))
