"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import contextlib
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kirag.cli.arguments import INPUT
from kirag.core.ranges import COUNT, COUNT_OR_ZERO, POSITIVE, SEED
from kirag.core.seeding import DEFAULT_SEED
from kirag.core.settings import (
    add_arguments,
    changed_flags,
    changed_options,
    from_args,
    passes_to,
)
from kirag.scale.executors import RayExecutorSettings


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each flag's default and keeps the line breaks of descriptions and epilogs; says
    nothing for a flag without one (None), a switch, or a help text that states its own."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            action.default is None
            or isinstance(action.default, bool)
            or _STATES_DEFAULT.search(text)
        ):
            return action.help
        return super()._get_help_string(action)


_STATES_DEFAULT = re.compile(r"\bdefault\b|%\(default\)", re.IGNORECASE)


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
    parser.add_argument("--seed", type=SEED, default=DEFAULT_SEED, help="random seed")


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
    add_arguments(parser, RayExecutorSettings, into=group)


def check_ray_flags(args: argparse.Namespace) -> None:
    """Refuse a Ray flag given without --ray (it would be silently ignored)."""
    from kirag.errors import SettingsError

    if not args.ray:
        given = changed_flags(from_args(RayExecutorSettings, args))
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
    executor = RayExecutor(**changed_options(from_args(RayExecutorSettings, args)))
    try:
        yield executor
    finally:
        executor.close()


# the openai engine's flags: (flag, engine option, type, help); defaults come from the engine
SERVER_FLAGS = (
    ("--base-url", "base_url", str, "the server's OpenAI API root, e.g. "
     "http://127.0.0.1:8000/v1 (default: OPENAI_BASE_URL)"),
    ("--api-key-env", "api_key_env", str, "environment variable holding the API key (the key "
     "itself is never written to run configs or logs)"),
    ("--concurrency", "concurrency", COUNT, "requests in flight at once"),
    ("--request-timeout", "timeout", POSITIVE, "seconds one request may take"),
    ("--retries", "retries", COUNT_OR_ZERO, "retries of a request after 429 / 5xx / timeouts / "
     "refused connections, with exponential backoff"),
    ("--tokenizer", "tokenizer", INPUT, "the served model's tokenizer (GGUF file or Hugging Face "
     "folder): for servers without a tokenize endpoint, and for assistant prefills where the "
     "server cannot continue one"),
)  # fmt: skip


def server_defaults() -> dict:
    """The openai engine's defaults, read from its constructor (defined there only)."""
    import inspect

    from kirag.llm.openai_engine import OpenAIEngine

    parameters = inspect.signature(OpenAIEngine.__init__).parameters
    return {option: parameters[option].default for _, option, *_ in SERVER_FLAGS}


def add_server(parser: argparse.ArgumentParser, rename: dict[str, str] | None = None) -> None:
    """The flags of `--engine openai`: a model behind an OpenAI-compatible server. `rename`
    gives a flag another name where the command has one of the same name for another purpose
    (kirag serve's own --api-key-env: --engine-api-key-env there)."""
    group = parser.add_argument_group("--engine openai (an OpenAI-compatible server)")
    defaults = server_defaults()
    names = {}
    for flag, option, kind, text in SERVER_FLAGS:
        names[option] = (rename or {}).get(flag, flag)
        group.add_argument(names[option], type=kind, default=defaults[option], help=text)
    passes_to(parser, {_dest(name): option for option, name in names.items()})
    parser.set_defaults(server_flags=names)


def server_options(args: argparse.Namespace) -> dict:
    """The openai engine's options from its flags (their types check the ranges); a server flag
    given with another engine is refused (it would be silently ignored)."""
    from kirag.errors import SettingsError

    flags = getattr(args, "server_flags", None)  # option -> the flag the command declared
    if not flags:  # a command without them
        return {}
    defaults = server_defaults()
    values = {option: getattr(args, _dest(flag)) for option, flag in flags.items()}
    given = {o: v for o, v in values.items() if v != defaults[o]}
    if getattr(args, "engine", None) != "openai":
        if given:
            raise SettingsError(f"{flags[next(iter(given))]} only applies with --engine openai")
        return {}
    return given


def _dest(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def served_settings() -> dict:
    """For a run config: the servers of the remote engines this run used (kind, version,
    served model), when any."""
    from kirag.llm.factory import served_models

    servers = served_models()
    return {"servers": servers} if servers else {}
