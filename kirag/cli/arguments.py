"""The argument layer of every command: numbers and paths are checked here, by argparse and
right after it, before any file is read or model loaded.

- A numeric flag's `type=` is a `kirag.core.ranges.Range` (`type=COUNT`): argparse refuses a value
  out of range with one line naming the flag. A raw `type=int`/`float` is refused by the tests.
- A path flag's `type=` says its role: `INPUT` (read), `OUTPUT` (written or replaced), `CACHE`
  (read and appended). `check_paths` refuses, before the command runs, an output or cache that
  is the same file as any other path of the command (hard links and symlinks included), and an
  existing output that is not writable.
- `KiragArgumentParser` prints argparse's errors as one line, `kirag CMD: error: ...`.
- Library errors name Python parameters (kirag.errors); `as_flags` prints them as the flags of
  the command: a flag's dest is the parameter it sets, and a flag that passes its value on
  under another name declares it once with `passes_to`.
"""

from __future__ import annotations

import argparse
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kirag.core.ranges import Range
from kirag.errors import SettingsError


class KiragArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (`kirag search: error: argument --k: must be ...`), exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


@dataclass(frozen=True, slots=True)
class PathArg:
    """The `type=` of a path flag: its role in the command (input, output, cache)."""

    role: str  # "input" | "output" | "cache"

    @property
    def __name__(self) -> str:
        return f"{self.role} path"

    def __call__(self, text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError("needs a path (got an empty value)")
        return text


INPUT = PathArg("input")
OUTPUT = PathArg("output")
CACHE = PathArg("cache")


def subcommand_parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every leaf (sub)command parser with its words, e.g. (("index", "bm25"), parser)."""
    children = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not children:
        yield path, parser
        return
    for action in children:
        for name, sub in action.choices.items():
            yield from subcommand_parsers(sub, (*path, name))


def leaf_parser(parser: argparse.ArgumentParser, args: argparse.Namespace):
    """The parser of the subcommand `args` came from."""
    while True:
        children = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not children:
            return parser
        parser = children[0].choices[getattr(args, children[0].dest)]


def flag_name(action: argparse.Action) -> str:
    """How a user writes the flag: its long option, or the positional's name."""
    longs = [o for o in action.option_strings if o.startswith("--")]
    return (longs or action.option_strings or [action.metavar or action.dest])[0]


def parameter_flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The flag (its action) that sets each library parameter of one (sub)command: by dest,
    then the renames declared with `passes_to`."""
    flags = {a.dest: a for a in parser._actions if a.option_strings}
    for parameter, dest in getattr(parser, "kirag_parameters", {}).items():
        if dest in flags:
            flags.setdefault(parameter, flags[dest])
    return flags


def as_flags(message: str, parameters, parser: argparse.ArgumentParser) -> str:
    """A library message with the parameters it names written as the command's flags:
    `name` -> `--flag`, `name=value` -> `--flag value`, `name=True` -> `--flag` (a switch).
    A parameter the command has no flag for stays as written."""
    flags = parameter_flags(parser)
    for name in parameters:
        action = flags.get(name)
        if action is None:
            continue
        flag = flag_name(action)

        def write(match: re.Match, flag: str = flag, switch: bool = action.nargs == 0) -> str:
            value = match.group(1)
            if value is None or (switch and value in ("True", "False")):
                return flag
            return f"{flag} {value}"

        message = re.sub(
            rf"(?<![\w./-]){re.escape(name)}(?:=([^\s,;:)]+))?(?![\w/-])", write, message
        )
    return message


def numeric_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The flags of one parser that take a number (declared with a Range)."""
    return [a for a in parser._actions if isinstance(a.type, Range)]


def path_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The flags of one parser that take a path (declared with INPUT, OUTPUT or CACHE)."""
    return [a for a in parser._actions if isinstance(a.type, PathArg)]


def given_paths(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list:
    """(flag, role, path) of every path flag given, for `check_paths`."""
    found = []
    for action in path_actions(leaf_parser(parser, args)):
        value = getattr(args, action.dest, None)
        for item in value if isinstance(value, list) else [value]:
            if item:
                found.append((flag_name(action), action.type.role, item))
    return found


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: os.path.samefile when both exist (hard links and
    symlinks), else the resolved paths."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def check_paths(paths: list[tuple[str, str, str]]) -> None:
    """Refuse an output or cache that is the same file as another path of the command, and an
    existing output file that is not writable; SettingsError naming both flags."""
    for i, (flag, role, path) in enumerate(paths):
        if role != "input":
            _check_writable(flag, path)
        for other_flag, other_role, other in paths[i + 1 :]:
            if role == "input" and other_role == "input":
                continue  # two inputs may be one file
            if same_file(path, other):
                raise SettingsError(
                    f"{flag} {path} and {other_flag} {other} are the same file: "
                    f"writing {flag if role != 'input' else other_flag} would destroy the other; "
                    "give another path"
                )


def _check_writable(flag: str, path: str) -> None:
    try:
        info = os.stat(path)
    except OSError:
        return  # not there yet: the folder check comes with the write
    if stat.S_ISREG(info.st_mode) and (
        not info.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
        or not os.access(path, os.W_OK)
    ):
        raise SettingsError(
            f"{flag} {path} exists and is read-only: kirag does not replace it; make it "
            "writable (chmod u+w) or give another path"
        )
