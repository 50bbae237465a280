"""The import graph reads as the architecture: library packages never reach up into the CLI or
the benchmarks wing, the generic layers (retrieval, rerank, eval, llm, io) know nothing of KiRAG's
method packages, the method does not depend on the evaluation, and packages form no cycles."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAPPING = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
FOLDER_OF = {package: ROOT / folder for package, folder in MAPPING.items()}

UPPER = ("kirag.cli", "kirag.bench")
CORE = "kirag.core"
# the root holds the public API (and the `kirag` command's start); everything shared is in core
ROOT_MODULES = {
    "kirag",
    "kirag._startup",
    "kirag.doctor",
    "kirag.errors",
    "kirag.models",
    "kirag.types",
}
GENERIC = ("kirag.retrieval", "kirag.rerank", "kirag.eval", "kirag.llm", "kirag.io")
METHOD = ("kirag.knowledge", "kirag.rag")


def _modules() -> dict[str, Path]:
    """Every library module by its import name, with the package-dir mapping applied."""
    found = {}
    for package, folder in FOLDER_OF.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((package, *parts))
            # a mapped subpackage's folder is not also part of the root package
            if package == "kirag" and any(
                name == other or name.startswith(other + ".")
                for other in FOLDER_OF
                if other != "kirag"
            ):
                continue
            found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """kirag modules imported anywhere in the file (also inside functions: lazy imports count)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("kirag"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kirag"):
            out.add(node.module)
            out.update(
                f"{node.module}.{a.name}"
                for a in node.names
                if f"{node.module}.{a.name}" in MODULES
            )
    return out


def _package(module: str) -> str:
    """The unit a module belongs to: its subpackage of kirag, or itself for a root module."""
    parts = module.split(".")
    if (
        len(parts) >= 2
        and f"kirag.{parts[1]}" in MODULES
        and ((FOLDER_OF.get(f"kirag.{parts[1]}") or ROOT / "kirag" / parts[1]).is_dir())
    ):
        return f"kirag.{parts[1]}"
    return module


def _within(module: str, packages) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _violations(sources, targets) -> list[str]:
    """Imports from a module inside `sources` (packages) of a module inside `targets`."""
    return sorted(
        f"{module} imports {target}"
        for module, targets_of in GRAPH.items()
        if _within(module, sources)
        for target in targets_of
        if _within(target, targets)
    )


def test_the_scan_sees_the_whole_tree():
    assert {
        "kirag.types",
        "kirag.retrieval.bm25",
        "kirag.rerank.rank1",
        "kirag.eval.metrics",
    } <= set(MODULES)
    assert "kirag.retrieval.base" in GRAPH["kirag.retrieval.bm25"] or GRAPH["kirag.retrieval.bm25"]


def test_library_never_imports_the_cli_or_the_benchmarks():
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if not _within(module, UPPER)
        for target in targets
        if _within(target, UPPER)
    )
    assert wrong == []


def test_generic_layers_know_nothing_of_kirags_method():
    assert _violations(GENERIC, METHOD) == []


def test_the_method_does_not_depend_on_the_evaluation():
    assert _violations(METHOD, ("kirag.eval",)) == []


def test_no_import_cycles_between_packages():
    """Over the library: the CLI and the benchmarks wing sit above it (the eval benchmark drives
    the `kirag eval` command it measures), and the test above keeps the library from them."""
    edges: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        if _within(module, UPPER):
            continue
        source = _package(module)
        for target in targets:
            if target in MODULES and _package(target) != source:
                edges.setdefault(source, set()).add(_package(target))
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_core_is_a_leaf_layer():
    """kirag.core imports only itself and the root's leaf types/errors: every layer may use it,
    so it may use none of them."""
    allowed = (CORE, "kirag._startup", "kirag.errors", "kirag.types")
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if _within(module, (CORE,))
        for target in targets
        if target in MODULES and not _within(target, allowed)
    )
    assert wrong == []


def test_the_root_holds_only_the_public_api():
    folder = ROOT / "kirag"
    root = {name for name, path in MODULES.items() if path.parent == folder}
    assert root == ROOT_MODULES


@pytest.mark.parametrize("package", [*GENERIC, *METHOD, CORE, "kirag.bench"])
def test_each_layer_is_a_real_package(package):
    assert package in MODULES
