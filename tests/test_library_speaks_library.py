"""The library speaks library: its errors name Python parameters (`thinking_budget`,
`overwrite=True`), never command-line flags; the CLI prints the flags, mapped from its own
parser (a flag's dest, or the rename it declares with `passes_to`)."""

from __future__ import annotations

import argparse
import ast
import re
import tomllib
from pathlib import Path

import pytest

from kirag.cli import build_parser, main
from kirag.cli.arguments import as_flags, parameter_flags, subcommand_parsers
from kirag.core.settings import passes_to
from kirag.errors import OutputExistsError, SettingsError

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
# the command line and the benchmarks wing speak flags: they are the CLI
CLI_PACKAGES = ("kirag/cli", "kirag/bench")
FLAG = re.compile(r"(?<![\w`-])--[a-z][a-z0-9-]*")
SHELL_COMMAND = re.compile(r"`[^`]* [^`]*`")  # `ray start --head`: another program's command


def _library_files() -> list[Path]:
    files = set()
    for folder in FOLDERS.values():
        for path in (ROOT / folder).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if not relative.startswith(CLI_PACKAGES):
                files.add(path)
    return sorted(files)


def _text(node: ast.AST) -> str:
    """The text a string expression writes: constants and f-string pieces in order ("{}" for a
    formatted value), concatenations joined."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else ""
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp):
        return _text(node.left) + _text(node.right)
    return " ".join(_text(child) for child in ast.iter_child_nodes(node))


def _assigned(function: ast.AST) -> dict[str, list[ast.AST]]:
    """What each local name of a function is assigned (a message built in pieces)."""
    out: dict[str, list[ast.AST]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out.setdefault(target.id, []).append(node.value)
    return out


def error_texts(source: str) -> list[tuple[int, str]]:
    """(line, text) of every error a module raises: the arguments of each `raise X(...)`, with
    the local variables they use, and the purpose given to `require` / `check_extra`."""
    tree = ast.parse(source)
    found = {}
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    for scope in [*reversed(functions), tree]:  # innermost first: each error read once
        local = _assigned(scope)
        for node in ast.walk(scope):
            if id(node) in found:
                continue
            call = None
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                call = node.exc
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in (
                "require",
                "check_extra",
            ):
                call = node
            if call is None:
                continue
            parts = [*call.args, *(k.value for k in call.keywords)]
            names = {n.id for p in parts for n in ast.walk(p) if isinstance(n, ast.Name)}
            parts += [value for name in names for value in local.get(name, [])]
            found[id(node)] = (node.lineno, " ".join(_text(p) for p in parts))
    return sorted(found.values())


def flags_in(text: str) -> list[str]:
    """The command-line flags a message names (another program's command in backticks aside)."""
    return FLAG.findall(SHELL_COMMAND.sub("", text))


def test_the_walk_finds_flags_in_raised_errors():
    source = """
def f(budget):
    fixes = "shorten it" + (", lower --thinking-budget" if budget else "")
    if budget < 0:
        raise SettingsError(f"query: {fixes} or raise --context")
    raise KiragError("start it with `ray start --head`; a range -1--2 is no flag")
require("ray", "ray", "running on Ray (--ray)")
"""
    texts = [text for _, text in error_texts(source)]
    assert [flags_in(t) for t in texts] == [["--context", "--thinking-budget"], [], ["--ray"]]


def test_no_library_error_names_a_command_line_flag():
    files = _library_files()
    assert any(p.match("rerank/rank1.py") for p in files)
    assert not any("kirag/cli" in p.as_posix() for p in files)
    wrong = [
        f"{path.relative_to(ROOT)}:{line}: {', '.join(flags_in(text))}"
        for path in files
        for line, text in error_texts(path.read_text(encoding="utf-8"))
        if flags_in(text)
    ]
    assert wrong == []


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--thinking-budget", type=int)
    parser.add_argument("--context", type=int)
    parser.add_argument("--beam", type=int)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--index")
    passes_to(parser, {"context": "context_length", "beam": "num_beams"})
    return parser


def test_parameters_print_as_flags_with_values():
    parser = _parser()
    message = (
        "lower thinking_budget or raise context_length; beam 1 only (num_beams=1); pass "
        "overwrite=True; index=/tmp/index/a: no docs.sqlite; thinking_budget_used stays; workers"
    )
    named = ("thinking_budget", "context_length", "num_beams", "overwrite", "index", "workers")
    assert as_flags(message, named, parser) == (
        "lower --thinking-budget or raise --context; beam 1 only (--beam 1); pass --overwrite; "
        "--index /tmp/index/a: no docs.sqlite; thinking_budget_used stays; workers"
    )
    # only the parameters an error lists are rewritten
    assert as_flags("index and overwrite", (), parser) == "index and overwrite"


def test_every_flag_of_every_command_maps_from_its_dest():
    parser = build_parser()
    for words, sub in subcommand_parsers(parser):
        flags = parameter_flags(sub)
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert flags[action.dest] is action, (words, action.dest)
    answer = dict(subcommand_parsers(parser))[("answer",)]
    named = {p: parameter_flags(answer)[p].option_strings[0] for p in ("beam_size", "max_turns")}
    assert named == {"beam_size": "--beam", "max_turns": "--turns"}


def test_an_api_error_names_the_parameter_and_the_cli_the_flag(tmp_path, enwiki_slice, capsys):
    from kirag.retrieval.bm25 import BM25Retriever

    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(OutputExistsError) as api:
        BM25Retriever.build(str(enwiki_slice), existing)
    assert "pass overwrite=True" in str(api.value) and "--" not in str(api.value)
    assert api.value.parameters == ("overwrite",)
    argv = ["index", "bm25", "--corpus", str(enwiki_slice), "--index", str(existing)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("kirag index: error: ") and "pass --overwrite" in err
    assert "overwrite=True" not in err and err.count("\n") == 1


def test_a_rank1_setting_error_names_the_parameter():
    from kirag.rerank.rank1 import Rank1Reranker

    with pytest.raises(
        SettingsError, match=r"^thinking_budget must be an integer >= 0 \(got -1\)$"
    ) as api:
        Rank1Reranker(thinking_budget=-1)
    assert api.value.parameters == ("thinking_budget",)


def test_reference_mode_beam_error_names_beam_size_and_the_cli_beam():
    from kirag.rag.reference import ReferenceSettings

    with pytest.raises(SettingsError) as api:
        ReferenceSettings(beam_size=2)
    assert "(beam_size=1)" in str(api.value)
    answer = dict(subcommand_parsers(build_parser()))[("answer",)]
    assert as_flags(str(api.value), api.value.parameters, answer).endswith("beam 1 only (--beam 1)")
