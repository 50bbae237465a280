"""The README's "Use it in your RAG app" examples run as written: every ```python block placed
right after a `<!-- readme-test -->` line in that section is run as a script of its own (each
is self-contained: it builds its index in a temporary folder from the bundled sample and uses
the packaged tiny models). A block whose framework is not installed is skipped, naming it."""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"
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


BLOCKS = marked_blocks(section_text(README.read_text(encoding="utf-8"), SECTION))


def _block_id(code: str) -> str:
    """The block's framework adapter, e.g. "langchain" for kirag.integrations.langchain."""
    found = re.search(r"kirag\.integrations\.(\w+)", code)
    return found.group(1) if found else "kirag"


def test_the_section_has_marked_examples():
    assert BLOCKS, f"no python block after a {MARKER} line under {SECTION!r} in the README"
    assert "langchain" in [_block_id(code) for code in BLOCKS]


@pytest.mark.slow
@pytest.mark.parametrize("code", BLOCKS, ids=[_block_id(c) for c in BLOCKS])
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
