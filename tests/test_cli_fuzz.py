"""Generated CLI fuzz (issue 25): every numeric flag of every subcommand, and every pair of path
flags of a command, found by walking the real argparse parser — a flag added later is fuzzed
without touching this file.

Runs in-process through `kirag.cli.main`. KIRAG_TEST_INTERRUPT_AT=command stops a command at
the point where its own work would start (every flag checked): an accepted value ends there as
`kirag CMD: interrupted` (130), a refused one as one line `kirag CMD: error: ...` (2). Either way
no case loads a model or reads a file, so the few hundred cases take seconds."""

from __future__ import annotations

import argparse
import itertools
import math
import os

import pytest

import kirag.cli
from kirag.cli import build_parser, main
from kirag.cli.arguments import (
    PathArg,
    flag_name,
    numeric_actions,
    path_actions,
    subcommand_parsers,
)
from kirag.core.interrupts import TEST_ENV
from kirag.core.ranges import Range

PARSER = build_parser()
LEAVES = {" ".join(words): parser for words, parser in subcommand_parsers(PARSER)}
VALUES = ("0", "-1", "1.5", "nan", "inf", "1e12", "")

NUMERIC_CASES = [
    (command, flag_name(action))
    for command, parser in LEAVES.items()
    for action in numeric_actions(parser)
]


def _exclusive(parser: argparse.ArgumentParser, a, b) -> bool:
    """Whether two flags sit in one mutually exclusive group (they cannot be given together)."""
    return any(
        a in g._group_actions and b in g._group_actions for g in parser._mutually_exclusive_groups
    )


PATH_PAIRS = [
    (command, flag_name(a), flag_name(b))
    for command, parser in LEAVES.items()
    for a, b in itertools.combinations(path_actions(parser), 2)
    if not (a.type.role == b.type.role == "input") and not _exclusive(parser, a, b)
]


def _action(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return next(a for a in parser._actions if flag_name(a) == flag)


def _valid(action: argparse.Action) -> str:
    """A value the flag accepts (its default, else its range's lower end, else a choice)."""
    if action.choices:
        return str(next(iter(action.choices)))
    if isinstance(action.type, Range):
        if action.default is not None:
            return str(action.default)
        low = action.type.low if action.type.low is not None else 1
        return str(int(low) + 1 if action.type.integer else low + 0.5)
    return "missing-" + action.dest


def _argv(command: str, given: dict[str, str]) -> list[str]:
    """The words of `command`, the flags in `given`, and a value for every other required flag
    or positional (paths that do not exist: nothing gets that far)."""
    parser = LEAVES[command]
    argv = command.split()
    positionals = []
    chosen = {id(_action(parser, flag)) for flag in given}
    for group in parser._mutually_exclusive_groups:
        if group.required and not any(id(a) in chosen for a in group._group_actions):
            first = group._group_actions[0]
            given = {**given, flag_name(first): _valid(first)}
    for action in parser._actions:
        flag = flag_name(action)
        if flag in given or isinstance(action, argparse._HelpAction):
            continue
        if not action.option_strings:
            positionals.append(_valid(action))
        elif action.required:
            argv += [flag, _valid(action)]
    for flag, value in given.items():
        if _action(parser, flag).option_strings:
            argv += [flag, value]
        else:
            positionals.append(value)
    return [*argv, *positionals]


def _run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own exit (status 2)
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.err


@pytest.fixture(autouse=True)
def stop_at_command(monkeypatch, tmp_path):
    monkeypatch.setenv(TEST_ENV, "command")
    monkeypatch.setattr(kirag.cli, "build_parser", lambda: PARSER)  # built once, not per case
    monkeypatch.chdir(tmp_path)


def test_the_walk_finds_every_command_and_flag():
    assert {"search", "eval", "rerank", "index bm25", "index dense", "answer"} <= set(LEAVES)
    assert ("search", "--k") in NUMERIC_CASES and ("index bm25", "--b") in NUMERIC_CASES
    assert ("eval", "--output", "--per-query") in PATH_PAIRS or (
        "eval",
        "--per-query",
        "--output",
    ) in PATH_PAIRS
    assert len(NUMERIC_CASES) >= 60


def test_every_numeric_flag_declares_its_range():
    """A raw type=int/float would let 0, -1, nan or inf through to the library."""
    raw = [
        f"kirag {command} {flag_name(a)}"
        for command, parser in LEAVES.items()
        for a in parser._actions
        if a.type in (int, float)
    ]
    assert raw == []


def test_every_output_flag_declares_its_role():
    """A flag that writes (by its name) is typed OUTPUT or CACHE, so the same-file check sees it."""
    writers = ("output", "cache", "explanations", "per_query", "plot", "checkpoints")
    untyped = [
        f"kirag {command} {flag_name(a)}"
        for command, parser in LEAVES.items()
        for a in parser._actions
        if any(w in a.dest for w in writers) and not isinstance(a.type, PathArg)
        if a.nargs != 0 and not a.choices and not isinstance(a.type, Range)  # not a switch/choice
    ]
    assert untyped == []


@pytest.mark.parametrize(("command", "flag"), NUMERIC_CASES)
def test_numeric_flag_values_end_as_one_line(command, flag, capsys):
    bounds = _action(LEAVES[command], flag).type
    for value in VALUES:
        code, err = _run(_argv(command, {flag: value}), capsys)
        lines = err.strip().splitlines()
        where = f"kirag {command} {flag} {value!r}"
        assert len(lines) == 1 and "Traceback" not in err, f"{where}: {err}"
        try:
            accepted = bounds.parse(value)
        except ValueError:
            accepted = None
        if accepted is None:
            assert code == 2, f"{where}: exit {code}: {err}"
            assert lines[0].startswith(f"kirag {command.split()[0]}") and flag in lines[0], where
            assert "must be" in lines[0], where
        else:  # in range: argparse and the path checks passed, the command's work was next
            assert math.isfinite(accepted)
            assert code == 130 and lines[0].endswith("interrupted"), f"{where}: {err}"


@pytest.mark.parametrize(("command", "first", "second"), PATH_PAIRS)
def test_two_path_flags_naming_one_file_are_refused(command, first, second, tmp_path, capsys):
    same = tmp_path / "same.txt"
    same.write_text("precious\n")
    code, err = _run(_argv(command, {first: str(same), second: str(same)}), capsys)
    assert code == 2, f"kirag {command} {first} {second}: exit {code}: {err}"
    line = err.strip()
    assert len(line.splitlines()) == 1 and first in line and second in line, line
    assert same.read_text() == "precious\n"
    assert os.listdir(tmp_path) == ["same.txt"]


def test_the_library_and_the_cli_say_the_same_words(capsys):
    """One range, one message: the CLI names the flag, the Python API the parameter."""
    from dataclasses import dataclass

    from kirag.core.ranges import COUNT, FRACTION
    from kirag.core.settings import check_settings, setting
    from kirag.errors import SettingsError

    code, err = _run(["search", "--index", "x", "--query", "y", "--k", "0"], capsys)
    assert code == 2 and "argument --k: must be an integer >= 1 (got 0)" in err
    with pytest.raises(SettingsError, match=r"^k must be an integer >= 1 \(got 0\)$"):
        COUNT.check(0, "k")

    @dataclass(frozen=True)
    class Settings:
        k: int = setting(10, "hits", range=COUNT)
        b: float = setting(0.4, "BM25 b", range=FRACTION)

        def __post_init__(self):
            check_settings(self)

    assert Settings().k == 10
    with pytest.raises(SettingsError, match=r"^b must be a finite number from 0 to 1 \(got nan\)$"):
        Settings(b=float("nan"))
