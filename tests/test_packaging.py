"""The package layout: top-level folders mapped as kirag subpackages, optional extras lazy."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

from kirag.errors import MissingExtraError
from kirag.optional import require

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
