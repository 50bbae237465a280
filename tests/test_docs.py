"""The documentation site builds with `mkdocs build --strict` (what CI runs): every page in the
nav exists, no link or anchor is broken, every `::: name` of the API reference resolves; pages
added without a nav entry still build. `make docs` serves the same site."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def nav_pages(entries) -> list[str]:
    """The page files a mkdocs nav lists, depth first."""
    pages = []
    for entry in entries:
        for value in entry.values() if isinstance(entry, dict) else [entry]:
            pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_the_nav_lists_the_guides_and_every_listed_page_exists():
    yaml = pytest.importorskip("yaml", reason="the docs extra (mkdocs)")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = nav_pages(config["nav"])
    for guide in ("retrieval.md", "reranking.md", "kirag.md", "evaluation.md", "scale.md",
                  "frameworks.md", "measurements.md", "api.md"):  # fmt: skip
        assert guide in pages
    assert [p for p in pages if not (ROOT / "docs" / p).is_file()] == []


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra (mkdocs-material, mkdocstrings)")
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=os.environ | {"NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert "Rank1Reranker" in api and "thinking_budget" in api  # docstrings were rendered
    assert (site / "reranking" / "index.html").is_file()
