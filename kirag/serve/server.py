"""Run the app with uvicorn: one process, one event loop; SIGTERM / Ctrl-C stop accepting
connections and let requests in flight finish (up to the graceful-shutdown time)."""

from __future__ import annotations

from kirag.core.optional import require
from kirag.serve.services import Services
from kirag.serve.settings import ServeSettings


def serve_http(services: Services, settings: ServeSettings, host: str, port: int) -> None:
    require("uvicorn", "serve")
    import uvicorn

    from kirag.serve.app import create_app

    app = create_app(services, settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=settings.graceful_shutdown_s,
        # no proxy headers: the client address is the socket's
        proxy_headers=False,
        server_header=False,
    )
    print(f"kirag serve: http://{host}:{port}/ (API docs at /docs)", flush=True)
    uvicorn.Server(config).run()
