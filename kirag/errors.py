"""Errors kirag raises on purpose: each one says what went wrong and what to do about it.

The library speaks library: a message names Python parameters (`thinking_budget`,
`overwrite=True`), never command-line flags, and lists the parameters it names in `parameters`;
the CLI prints each as its flag (`--thinking-budget`, `--overwrite`), see kirag.cli.arguments."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class KiragError(Exception):
    """Base class of kirag's own errors (the CLI prints these without a traceback).
    `parameters`: the Python parameters the message names, as `name` or `name=value`."""

    parameters: tuple[str, ...] = ()

    def __init__(self, *args, parameters: Sequence[str] = ()):
        super().__init__(*args)
        if parameters:
            self.parameters = tuple(parameters)


class InputError(KiragError, ValueError):
    """Bad user input: a malformed file, a duplicate id, an unknown query id...

    When the problem sits on a line of a file, the message starts with `path:line:` so editors
    and terminals can jump to it.
    """

    def __init__(
        self,
        message: str,
        path: str | Path | None = None,
        line: int | None = None,
        parameters: Sequence[str] = (),
    ):
        self.path = str(path) if path is not None else None
        self.line = line
        self.reason = message
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(where + message, parameters=parameters)


class MissingExtraError(KiragError, ImportError):
    """An optional dependency is not installed; the message names the pip extra."""


class ModelNotFoundError(KiragError, FileNotFoundError):
    """A model could not be found offline; the message names the package to install or the path
    to pass."""


class IndexLoadError(KiragError):
    """An index folder is missing, partial, or was built for something else."""


class OutputExistsError(KiragError, FileExistsError):
    """An output (index folder, run file) already exists and overwriting was not asked for."""


class UnknownPromptError(KiragError, ValueError):
    """A prompt name (e.g. a Rank1 dataset prompt) that kirag does not ship; the message lists
    the known names."""


class ContextError(KiragError, ValueError):
    """A prompt, query or setting does not fit the model's context; the message names what to
    change (the query id, `context_length`, `thinking_budget`)."""


class SettingsError(KiragError, ValueError):
    """A setting that cannot work (a negative budget, an unknown policy); names the parameter."""


class ServerError(KiragError, ConnectionError):
    """An OpenAI-compatible LLM server that cannot be reached, does not serve the model, or
    refuses a request; the message names the URL and the parameter to change."""


class ServerAuthError(ServerError):
    """The server refused the API key; the message names the environment variable it came from
    (never the key)."""
