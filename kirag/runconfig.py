"""The resolved configuration of a run, written as JSON next to its outputs (reproducibility)."""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from kirag.atomic import write_json

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


def runtime_details() -> dict[str, Any]:
    """What ran in this process beyond package versions: the llama.cpp CPU-backend variant it
    loaded (AVX2, AVX-512, VNNI... chosen at run time), when llama.cpp ran."""
    if "llama_cpp" not in sys.modules:
        return {}
    from kirag.llm.llamacpp_backends import loaded_cpu_variant

    variant = loaded_cpu_variant()
    return {"llama_cpp_cpu_variant": variant} if variant else {}


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
        from kirag.io.lines import skipped_lines

        data = asdict(self)
        data["settings"] = _jsonable(self.settings)
        data["results"] = _jsonable(self.results)
        skipped = skipped_lines()
        if skipped:  # --skip-bad-lines: what was left out is part of what was run
            data["results"].setdefault("skipped_lines", skipped)
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
