"""The README's and the docs' examples run as written, and every command the README shows is a
real one. A ```python block placed right after a `<!-- readme-test -->` line is run as a script
of its own (each is self-contained: it builds its index in a temporary folder from the bundled
sample and uses the packaged tiny models): the README's tour, and the examples of the "Use it in
your RAG app" page (docs/frameworks.md). A block whose framework is not installed is skipped,
naming it. Every `kirag ...` line of the README's shell blocks parses with the real parser (the
quick ones also run), and every `make` target it names exists."""

from __future__ import annotations

import ast
import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
FRAMEWORKS = ROOT / "docs" / "frameworks.md"  # the README's "Use it in your RAG app", moved
SECTION = "## Use it in your RAG app"
MARKER = "<!-- readme-test -->"


def section_text(readme: str, heading: str) -> str:
    """The text under `heading` up to the next heading of the same level."""
    start = readme.index(heading + "\n")
    following = re.search(r"^## ", readme[start + len(heading) :], flags=re.MULTILINE)
    end = start + len(heading) + following.start() if following else len(readme)
    return readme[start:end]


def marked_blocks(text: str) -> list[str]:
    """The python code blocks that come right after a marker line."""
    pattern = re.escape(MARKER) + r"\n```python\n(.*?)^```$"
    return re.findall(pattern, text, flags=re.MULTILINE | re.DOTALL)


def imported_modules(code: str) -> list[str]:
    """The modules a block imports (dotted names), in order of first appearance."""
    modules: list[str] = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        else:
            names = []
        modules += [n for n in names if n not in modules]
    return modules


def missing_framework(code: str) -> str | None:
    """Why a block cannot run here (a module it imports, e.g. an adapter whose framework is not
    installed, fails to import), else None."""
    for module in imported_modules(code):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            return f"{module}: {exc}"
    return None


BLOCKS = marked_blocks(FRAMEWORKS.read_text(encoding="utf-8"))
README_BLOCKS = marked_blocks(README.read_text(encoding="utf-8"))


def _block_id(code: str) -> str:
    """The block's framework adapter, e.g. "langchain" for kirag.integrations.langchain."""
    found = re.search(r"kirag\.integrations\.(\w+)", code)
    return found.group(1) if found else "kirag"


def test_the_section_has_marked_examples():
    assert BLOCKS, f"no python block after a {MARKER} line in {FRAMEWORKS}"
    assert "langchain" in [_block_id(code) for code in BLOCKS]
    assert README_BLOCKS, f"no python block after a {MARKER} line in the README"


@pytest.mark.slow
@pytest.mark.parametrize(
    "code",
    BLOCKS + README_BLOCKS,
    ids=[_block_id(c) for c in BLOCKS] + [f"readme-{i}" for i, _ in enumerate(README_BLOCKS)],
)
def test_readme_example_runs(code, tmp_path):
    missing = missing_framework(code)
    if missing:
        pytest.skip(f"the example cannot import {missing}")
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    env = os.environ | {"KIRAG_PROGRESS": "0", "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip(), "the example printed nothing"
    assert "Traceback" not in done.stderr


def test_only_marked_blocks_of_the_section_are_picked():
    readme = (
        "## Python quickstart\n<!-- readme-test -->\n```python\nprint('other section')\n```\n"
        f"{SECTION}\n<!-- readme-test -->\n```python\nfrom llama_index.core import Document\n"
        "import kirag.integrations.llama_index\n```\n```python\nprint('not marked')\n```\n"
        "## Command line\n<!-- readme-test -->\n```python\nprint('after')\n```\n"
    )
    blocks = marked_blocks(section_text(readme, SECTION))
    assert blocks == [
        "from llama_index.core import Document\nimport kirag.integrations.llama_index\n"
    ]
    assert imported_modules(blocks[0]) == ["llama_index.core", "kirag.integrations.llama_index"]
    assert _block_id(blocks[0]) == "llama_index"
    assert missing_framework("import kirag.no_such_adapter").startswith("kirag.no_such_adapter:")
    assert missing_framework("import json\nfrom kirag.integrations import common") is None


# --- every command the README shows --------------------------------------------------------------


def shell_commands(markdown: str) -> list[str]:
    """The commands of the ```bash blocks: continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```$", markdown, flags=re.MULTILINE | re.DOTALL):
        for command in block.replace("\\\n", " ").splitlines():
            command = command.split(" #")[0].strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


README_COMMANDS = shell_commands(README.read_text(encoding="utf-8"))
# quick enough to run here (the rest run, on smaller data, in their own tests: test_rerank_cli.py,
# test_kirag_pipeline.py, test_doctor.py)
RUN_HERE = ("kirag index bm25", "kirag search")


def test_every_readme_command_is_a_real_command():
    from kirag.cli import build_parser

    assert any(c.startswith("kirag ") for c in README_COMMANDS)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for command in README_COMMANDS:
        words = shlex.split(command)
        if words[0] == "kirag":
            try:
                build_parser().parse_args(words[1:])
            except SystemExit as exc:
                pytest.fail(f"the README's {command!r} does not parse (exit {exc.code})")
        elif words[0] == "make":
            for target in words[1:]:
                assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.MULTILINE), command
        else:
            pytest.fail(f"the README shows {command!r}: add a check for this kind of command")


def test_the_readme_quick_commands_run(tmp_path, monkeypatch):
    from kirag.cli import main

    monkeypatch.chdir(tmp_path)
    data = str(ROOT / "kirag" / "data") + "/"
    quick = [c for c in README_COMMANDS if c.startswith(RUN_HERE)]
    assert len(quick) >= 3
    for command in quick:
        words = shlex.split(command.replace("kirag/data/", data))
        assert main(["-q", *words[1:]]) == 0, command
    run = (tmp_path / "runs" / "bm25.trec").read_text().splitlines()
    assert len(run) == 31 * 20  # the 31 bundled questions, 20 hits each
