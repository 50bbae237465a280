"""`kirag serve --mcp`: search, rerank and answer as MCP tools (the official `mcp` SDK's
MCPServer, stdio transport) for agent frameworks. The same services, limits and model lock as
the HTTP API."""

from __future__ import annotations

from typing import Any

from kirag.core.concurrency import off_loop
from kirag.core.optional import require
from kirag.serve.limits import check_documents, check_k, check_text
from kirag.serve.services import Services
from kirag.serve.settings import ServeSettings


def build_mcp(services: Services, settings: ServeSettings):
    """An MCPServer with a tool for each loaded component."""
    require("mcp", "serve")
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(
        "kirag",
        instructions="Search kirag's indexes, rerank passages, answer multi-hop questions with KiRAG.",
        log_level="WARNING",
    )

    if services.retriever is not None:

        @server.tool(structured_output=True)
        async def search(query: str, k: int = 10) -> dict[str, Any]:
            """The top-k passages for a query: id, rank, score, title, text."""
            check_text(settings, "query", query)
            check_k(settings, "k", k)
            hits = await off_loop(services.search, query, k, uses_model=services.search_uses_model)
            return {"hits": hits}

    if services.reranker is not None:

        @server.tool(structured_output=True)
        async def rerank(
            query: str, documents: list[str], top_n: int | None = None
        ) -> dict[str, Any]:
            """The documents scored against the query, best first (index into `documents`,
            score, and the reranker's reasoning where it gives one)."""
            check_text(settings, "query", query)
            check_documents(settings, documents)
            check_k(settings, "top_n", top_n)
            return {"results": await off_loop(services.rerank, query, documents, top_n)}

    if services.kirag is not None:

        @server.tool(structured_output=True)
        async def answer(question: str, k: int = 10) -> dict[str, Any]:
            """KiRAG's answer to a multi-hop question with its reasoning chain (triples, step
            scores, source passages) and the documents in rank order."""
            check_text(settings, "question", question)
            check_k(settings, "k", k)
            return await off_loop(services.answer, question, k)

    return server


def serve_mcp(services: Services, settings: ServeSettings) -> None:
    build_mcp(services, settings).run("stdio")
