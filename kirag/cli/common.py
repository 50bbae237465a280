"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kirag.seeding import DEFAULT_SEED


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults and keeps the line breaks of descriptions and epilogs."""


def add_command(
    subparsers, name: str, help: str, description: str | None = None, epilog: str | None = None
):
    return subparsers.add_parser(
        name,
        help=help,
        description=description or help,
        epilog=epilog,
        formatter_class=HelpFormatter,
    )


def add_seed(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")


def add_on_error(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skip-bad-lines",
        action="store_true",
        help="skip malformed input lines (counted and reported) instead of stopping at the first",
    )


def on_error(args: argparse.Namespace) -> str:
    return "skip" if getattr(args, "skip_bad_lines", False) else "raise"


def prepare_output(path: str | Path | None) -> None:
    """Create the parent folder of an output file and check it is writable, before any long
    work (model loads, reranking, benchmarks): an OSError naming the user's folder if not."""
    if not path:
        return
    parent = Path(path).absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(parent)) from None


def add_ray(parser: argparse.ArgumentParser) -> None:
    """The flags that run a command's sharded work on a Ray cluster (the `ray` extra)."""
    group = parser.add_argument_group("Ray cluster (the ray extra; see docs/scale.md)")
    group.add_argument(
        "--ray",
        action="store_true",
        help="run the shards on a pool of Ray workers (each loads the model once) instead of "
        "in this process; the work folder must be on storage every node sees",
    )
    group.add_argument(
        "--ray-address",
        default=None,
        help="auto (the cluster this node belongs to) or HOST:PORT; default: RAY_ADDRESS, else "
        "a local cluster",
    )
    group.add_argument("--workers", type=int, default=1, help="Ray workers (model copies)")
    group.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs per Ray worker")
    group.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per Ray worker")


def check_ray_flags(args: argparse.Namespace) -> None:
    """Refuse a Ray flag given without --ray (it would be silently ignored)."""
    from kirag.errors import SettingsError

    if not args.ray:
        given = [
            flag
            for flag, value, default in (
                ("--ray-address", args.ray_address, None),
                ("--workers", args.workers, 1),
                ("--cpus-per-worker", args.cpus_per_worker, 1.0),
                ("--gpus-per-worker", args.gpus_per_worker, 0.0),
            )
            if value != default
        ]
        if given:
            raise SettingsError(f"{given[0]} only applies with --ray")


@contextlib.contextmanager
def open_executor(args: argparse.Namespace) -> Iterator:
    """The executor the Ray flags ask for (None without --ray: the command's in-process path);
    a Ray the executor started is shut down at the end."""
    from kirag.scale import RayExecutor

    check_ray_flags(args)
    if not args.ray:
        yield None
        return
    executor = RayExecutor(
        args.ray_address, args.workers, args.cpus_per_worker, args.gpus_per_worker
    )
    try:
        yield executor
    finally:
        executor.close()
