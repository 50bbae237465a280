"""The resolved configuration of a run, written as JSON next to its outputs (reproducibility)."""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from kirag.core.atomic import write_json

CONFIG_SUFFIX = ".config.json"
DIR_CONFIG_NAME = "kirag-config.json"
TRACKED_PACKAGES = (
    "kirag",
    "torch",
    "transformers",
    "sentence-transformers",
    "faiss-cpu",
    "bm25s",
    "pyserini",
    "llama-cpp-python",
    "vllm",
    "spacy",
    "ir-measures",
)


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that decide a run's numbers (absent ones left out)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


# What a run adds to its record beyond its settings, contributed by the layer that knows it (core
# imports no layer above it): runtime details (the llama.cpp CPU variant that ran) and results
# (the lines --skip-bad-lines left out). Each hook returns {} when it has nothing to say.
RUNTIME_HOOKS: list[Callable[[], dict[str, Any]]] = []
RESULT_HOOKS: list[Callable[[], dict[str, Any]]] = []


def runtime_details() -> dict[str, Any]:
    """What ran in this process beyond package versions (from the registered RUNTIME_HOOKS)."""
    details: dict[str, Any] = {}
    for hook in RUNTIME_HOOKS:
        details.update(hook())
    return details


def config_path_for(output: str | Path) -> Path:
    """Where the config of a run that wrote `output` goes: inside a folder, beside a file."""
    output = Path(output)
    if output.is_dir():
        return output / DIR_CONFIG_NAME
    return output.with_name(output.name + CONFIG_SUFFIX)


@dataclass
class RunConfig:
    """What was run, with which resolved settings, on which software."""

    command: str
    settings: dict[str, Any]
    argv: list[str] = field(default_factory=lambda: list(sys.argv))
    started_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    python: str = field(default_factory=platform.python_version)
    platform: str = field(default_factory=platform.platform)
    packages: dict[str, str] = field(default_factory=package_versions)
    results: dict[str, Any] = field(default_factory=dict)
    runtime: dict[str, Any] = field(default_factory=lambda: runtime_details())

    def write(self, output: str | Path) -> Path:
        """Write next to `output` (see config_path_for) and return the path written."""
        data = asdict(self)
        data["settings"] = _jsonable(self.settings)
        data["results"] = _jsonable(self.results)
        for hook in RESULT_HOOKS:
            for key, value in hook().items():
                data["results"].setdefault(key, _jsonable(value))
        return write_json(config_path_for(output), data)


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
