"""Lazy imports: package exports and registry targets name their classes ("module:Class")
without importing their heavy modules (torch, FAISS, llama.cpp) until first use, so `import
kirag` stays fast and a registry lists backends whose extras are not installed."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` that imports `exports[name]` (a module) on first access."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def check_target(target: str) -> str:
    """A registry target must read "module:Class"."""
    module_name, _, class_name = target.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"registry target {target!r} is not 'module:Class'")
    return target


def import_target(target: str) -> Any:
    """The object a "module:Class" registry target names, its module imported now."""
    module_name, class_name = check_target(target).split(":")
    return getattr(importlib.import_module(module_name), class_name)
