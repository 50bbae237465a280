"""`kirag serve`: the HTTP API (FastAPI) and the MCP tools over loaded indexes, a reranker and
KiRAG. Import kirag.serve.app / kirag.serve.mcp_tools for the parts; this package imports light."""
