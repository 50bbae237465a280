"""The framework adapters need their framework: a missing one is one line naming the extra."""

from __future__ import annotations

import importlib
import sys

import pytest

from kirag.errors import MissingExtraError


@pytest.mark.parametrize(
    ("module", "framework", "extra"),
    [
        ("kirag.integrations.llama_index", "llama_index.core", "llama-index"),
        ("kirag.integrations.haystack", "haystack", "haystack"),
    ],
)
def test_missing_framework_names_the_extra(monkeypatch, module, framework, extra):
    monkeypatch.setitem(sys.modules, framework, None)  # its import fails as when not installed
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(MissingExtraError, match=rf"pip install 'kirag\[{extra}\]'"):
        importlib.import_module(module)


def test_importing_the_package_imports_no_framework():
    import subprocess

    code = (
        "import sys, kirag.integrations, kirag.integrations.common; "
        "print([m for m in ('llama_index', 'haystack', 'langchain_core') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
