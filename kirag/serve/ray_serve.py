"""`kirag serve --ray`: the same FastAPI app as a Ray Serve deployment. Each replica loads the
components itself (its own index and model copy, the same model lock and queues per replica);
Ray's HTTP proxy binds the host and port and spreads requests over the replicas. The driver
keeps the deployment up until SIGTERM / Ctrl-C, then shuts Serve and the Ray it started down.

`ray.init` installs Ray's own C++ handler for SIGTERM, which aborts the process: the driver puts
its handlers in right after it, so a SIGTERM while the deployment is still starting (the proxy
may answer /health before `serve.run` returns) is a clean shutdown too."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kirag.core.interrupts import checkpoint
from kirag.core.optional import require
from kirag.core.ranges import COUNT, NON_NEGATIVE
from kirag.core.settings import check_settings, same_as, setting
from kirag.errors import KiragError
from kirag.scale.executors import RayExecutorSettings

if TYPE_CHECKING:  # the CLI imports RaySettings at start: keep this module light
    from kirag.serve.services import Services
    from kirag.serve.settings import ServeSettings

APP_NAME = "kirag"


@dataclass(frozen=True)
class RaySettings:
    """Where and how wide the deployment runs."""

    replicas: int = setting(1, "replicas of the app", range=COUNT, affects="nothing")
    replica_cpus: float = setting(1.0, "CPUs per replica", range=NON_NEGATIVE, affects="nothing")
    ray_address: str | None = same_as(RayExecutorSettings, "ray_address")  # one cluster address

    def __post_init__(self) -> None:
        check_settings(self)


class KiragReplica:
    """One replica: loads the components once, then serves `create_app` over them."""

    def __init__(self, load: Callable[[], Services], settings: ServeSettings):
        self._services = load()
        self._settings = settings

    def __serve_build_asgi_app__(self):
        from kirag.serve.app import create_app

        return create_app(self._services, self._settings)


def serve_ray(
    load: Callable[[], Services],
    settings: ServeSettings,
    host: str,
    port: int,
    ray_settings: RaySettings,
    stop: threading.Event | None = None,
) -> None:
    """Deploy, print the URL, block until SIGTERM / SIGINT (or `stop`), shut down."""
    ray = require("ray", "ray", "serving on Ray")
    serve = require("ray.serve", "ray", "serving on Ray Serve (ray[serve])")
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=ray_settings.ray_address, include_dashboard=False, log_to_driver=False)
        except ConnectionError as exc:
            raise KiragError(
                f"cannot reach the Ray cluster at {ray_settings.ray_address or 'RAY_ADDRESS'}: "
                f"{exc}; start it with `ray start --head` or give no ray_address for a local one",
                parameters=("ray_address",),
            ) from None
    stop = stop or threading.Event()
    signals = _StopSignals(stop)
    try:
        checkpoint("ray-serve-deploying", signal.SIGTERM)
        if stop.is_set():
            print("kirag serve: stopped before the deployment started", flush=True)
            return
        serve.start(http_options={"host": host, "port": port})
        deployment = serve.deployment(
            serve.ingress()(KiragReplica),
            name=APP_NAME,
            num_replicas=ray_settings.replicas,
            ray_actor_options={"num_cpus": ray_settings.replica_cpus},
        )
        serve.run(deployment.bind(load, settings), name=APP_NAME, route_prefix="/")
        if stop.is_set():
            print("kirag serve: stopped while the deployment started", flush=True)
            return
        print(
            f"kirag serve: http://{host}:{port}/ on Ray Serve "
            f"({ray_settings.replicas} replica(s), {ray_settings.replica_cpus} CPU each)",
            flush=True,
        )
        signals.serving = True
        while not stop.wait(0.5):
            pass
    finally:
        signals.restore()
        serve.shutdown()
        if started:
            ray.shutdown()


class _StopSignals:
    """SIGTERM sets `stop` (a graceful shutdown, whenever it comes); SIGINT does too once the
    deployment serves, and before that interrupts the start (a replica may never load)."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.serving = False
        self._previous = {}
        if threading.current_thread() is threading.main_thread():  # only it may set handlers
            self._previous = {
                sig: signal.signal(sig, self._received) for sig in (signal.SIGTERM, signal.SIGINT)
            }

    def _received(self, number: int, frame: object) -> None:
        self.stop.set()
        if number == signal.SIGINT and not self.serving:
            raise KeyboardInterrupt

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
