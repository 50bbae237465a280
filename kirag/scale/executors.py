"""The two executors of sharded work: SerialExecutor (this process, the default) and RayExecutor
(a pool of long-lived Ray actors, each loading the task's model once). Both take the same
(Shard, rows) stream, skip shards whose output is complete, and leave the merge to the caller.

RayExecutor: work folders must be on storage every node sees (outputs are written by the
workers); a failed shard stops new submissions, the shards in flight finish and keep their
outputs, and the failure is raised as the task raised it — a rerun computes only what is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from kirag.core.cost import CostMeter
from kirag.core.optional import require
from kirag.core.progress import progress
from kirag.core.ranges import COUNT, NON_NEGATIVE
from kirag.core.settings import check_settings, setting
from kirag.errors import KiragError
from kirag.scale.shards import Shard, ShardReport, ShardTask, pending

log = logging.getLogger(__name__)

# shards queued per Ray worker: the next one starts without a round trip to the driver
IN_FLIGHT_PER_WORKER = 2


class Executor(Protocol):
    """Runs a ShardTask over a stream of (Shard, rows)."""

    name: str
    remote: bool  # True when tasks run in other processes (the task and rows are pickled)

    def run(
        self,
        task: ShardTask,
        pieces: Iterable[tuple[Shard, list[Any]]],
        total: int | None = None,
        desc: str = "shards",
        unit: str = "row",
    ) -> ShardReport: ...

    def describe(self) -> dict[str, Any]: ...


class _Bar:
    """A progress bar counted in rows, advanced shard by shard; with the task's `cost_hint`
    (the settings that make it faster), the estimated time of the rest once a shard is done."""

    def __init__(self, total: int | None, desc: str, unit: str, task: ShardTask | None = None):
        self._bar = progress(total=total, desc=desc, unit=unit)
        hint = getattr(task, "cost_hint", None)
        self._meter = CostMeter(desc, total, unit, hint) if hint and total else None

    def skip(self, shard: Shard) -> None:
        """A shard finished by an earlier run."""
        self._bar.update(shard.size)
        if self._meter is not None:
            self._meter.skip(shard.size)

    def advance(self, shard: Shard) -> None:
        self._bar.update(shard.size)
        if self._meter is not None:
            self._meter.update(shard.size)

    def close(self) -> None:
        self._bar.close()


class SerialExecutor:
    """Shards one after another in this process; the task's setup runs once, at the first shard
    that needs computing (a fully finished run loads no model)."""

    name = "serial"
    remote = False

    def run(
        self,
        task: ShardTask,
        pieces: Iterable[tuple[Shard, list[Any]]],
        total: int | None = None,
        desc: str = "shards",
        unit: str = "row",
    ) -> ShardReport:
        report = ShardReport()
        bar = _Bar(total, desc, unit, task)
        worker = _ShardWorker(task)  # the same lazy setup as each Ray actor's
        try:
            for shard, rows in pending(task, pieces, report, bar.skip):
                report.results[shard.index] = worker.run(shard, rows)
                report.computed.append(shard.index)
                bar.advance(shard)
        finally:
            bar.close()
        return report

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name}


class _ShardWorker:
    """The body of one long-lived Ray actor: holds the task, sets it up before its first shard."""

    def __init__(self, task: ShardTask):
        self.task = task
        self.ready = False

    def run(self, shard: Shard, rows: list[Any]) -> Any:
        if not self.ready:
            self.task.setup()
            self.ready = True
        return self.task.run(shard, rows)


@dataclass(frozen=True)
class RayExecutorSettings:
    """Where a command's sharded work runs on Ray and how wide (none of it changes results:
    shards are the same units whichever worker runs them)."""

    ray_address: str | None = setting(
        None,
        "auto (the cluster this node belongs to) or HOST:PORT; default: RAY_ADDRESS, else a "
        "local cluster",
        option="address",
        affects="nothing",
    )
    workers: int = setting(1, "Ray workers (model copies)", range=COUNT, affects="nothing")
    cpus_per_worker: float = setting(
        1.0, "CPUs per Ray worker", range=NON_NEGATIVE, affects="nothing"
    )
    gpus_per_worker: float = setting(
        0.0, "GPUs per Ray worker", range=NON_NEGATIVE, affects="nothing"
    )

    def __post_init__(self) -> None:
        check_settings(self)


RAY_DEFAULTS = RayExecutorSettings()


class RayExecutor:
    """A pool of `workers` Ray actors (each `cpus_per_worker` CPUs, `gpus_per_worker` GPUs) on the
    cluster at `address` ("auto", "HOST:PORT"; None: RAY_ADDRESS, else a local cluster), or on
    the Ray this process has already initialised."""

    name = "ray"
    remote = True

    def __init__(
        self,
        address: str | None = RAY_DEFAULTS.ray_address,
        workers: int = RAY_DEFAULTS.workers,
        cpus_per_worker: float = RAY_DEFAULTS.cpus_per_worker,
        gpus_per_worker: float = RAY_DEFAULTS.gpus_per_worker,
    ):
        """The settings are RayExecutorSettings' (`address` is its ray_address)."""
        RayExecutorSettings(address, workers, cpus_per_worker, gpus_per_worker)
        self.address = address
        self.workers = workers
        self.cpus_per_worker = cpus_per_worker
        self.gpus_per_worker = gpus_per_worker
        self._started = False

    def describe(self) -> dict[str, Any]:
        return {
            "executor": self.name,
            "address": self.address,
            "workers": self.workers,
            "cpus_per_worker": self.cpus_per_worker,
            "gpus_per_worker": self.gpus_per_worker,
        }

    def _ray(self):
        ray = require("ray", "ray", "running on a Ray cluster (the ray executor)")
        if not ray.is_initialized():
            try:
                ray.init(address=self.address)
            except ConnectionError as exc:
                raise KiragError(
                    f"cannot reach the Ray cluster at {self.address or 'RAY_ADDRESS'}: {exc}; "
                    "start it with `ray start --head` (see docs/scale.md) or give no address "
                    "for a local cluster"
                ) from None
            self._started = True
        return ray

    def close(self) -> None:
        """Shut down the Ray this executor started (a Ray initialised by the caller stays)."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def run(
        self,
        task: ShardTask,
        pieces: Iterable[tuple[Shard, list[Any]]],
        total: int | None = None,
        desc: str = "shards",
        unit: str = "row",
    ) -> ShardReport:
        report = ShardReport()
        bar = _Bar(total, desc, unit, task)
        todo = pending(task, pieces, report, bar.skip)
        ray = None
        actors: list[Any] = []
        load: dict[int, int] = {}  # actor number -> shards in flight
        in_flight: dict[Any, tuple[int, Shard]] = {}
        failure: BaseException | None = None
        exhausted = False
        try:
            while True:
                while not exhausted and failure is None:
                    if actors and min(load.values()) >= IN_FLIGHT_PER_WORKER:
                        break
                    piece = next(todo, None)
                    if piece is None:
                        exhausted = True
                        break
                    if not actors:  # the pool starts at the first shard that needs computing
                        ray = self._ray()
                        actors = self._start_pool(ray, task)
                        load = dict.fromkeys(range(len(actors)), 0)
                    number = min(load, key=load.__getitem__)
                    shard, rows = piece
                    in_flight[actors[number].run.remote(shard, rows)] = (number, shard)
                    load[number] += 1
                if not in_flight:
                    break
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                number, shard = in_flight.pop(ready[0])
                load[number] -= 1
                try:
                    report.results[shard.index] = ray.get(ready[0])
                except Exception as exc:
                    failure = failure or _task_failure(exc, shard)
                    continue
                report.computed.append(shard.index)
                bar.advance(shard)
        finally:
            bar.close()
            for actor in actors:
                ray.kill(actor)
        if failure is not None:
            raise failure
        report.computed.sort()
        return report

    def _start_pool(self, ray, task: ShardTask) -> list[Any]:
        worker = ray.remote(_ShardWorker).options(
            num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker
        )
        return [worker.remote(task) for _ in range(self.workers)]


def _task_failure(exc: BaseException, shard: Shard) -> BaseException:
    """The error a failed shard raised on its worker, as the task raised it (a RayTaskError's
    cause), or a KiragError when the worker itself died."""
    from ray.exceptions import RayActorError, RayTaskError

    if isinstance(exc, RayTaskError) and exc.cause is not None:
        return exc.cause
    if isinstance(exc, RayActorError):
        return KiragError(
            f"a Ray worker died while computing {shard.name} (rows {shard.start}-{shard.stop}): "
            f"{exc}; rerun the same command to resume (finished shards are kept)"
        )
    return exc


def make_executor(
    ray: bool = False,
    address: str | None = RAY_DEFAULTS.ray_address,
    workers: int = RAY_DEFAULTS.workers,
    cpus_per_worker: float = RAY_DEFAULTS.cpus_per_worker,
    gpus_per_worker: float = RAY_DEFAULTS.gpus_per_worker,
) -> SerialExecutor | RayExecutor:
    """The serial executor, or with `ray` a Ray executor with these settings."""
    if not ray:
        return SerialExecutor()
    return RayExecutor(address, workers, cpus_per_worker, gpus_per_worker)
