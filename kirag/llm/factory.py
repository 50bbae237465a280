"""Choose and load an LLM engine by name, or infer it from the model; each (model, engine,
options) loads once per process and is reused."""

from __future__ import annotations

import atexit
import inspect
import logging
import threading

from kirag.core.lazy import import_target
from kirag.core.optional import check_extra, is_available
from kirag.errors import KiragError
from kirag.llm.base import LLMEngine
from kirag.models import DEFAULT_LLM, resolve_model

log = logging.getLogger(__name__)

# engine name -> (module:class, module that must be importable, extra)
ENGINES = {
    "transformers": ("kirag.llm.transformers_engine:TransformersEngine", "transformers", "rerank"),
    "llamacpp": ("kirag.llm.llamacpp_engine:LlamaCppEngine", "llama_cpp", "llamacpp"),
    "vllm": ("kirag.llm.vllm_engine:VLLMEngine", "vllm", "vllm"),
    # a model behind an OpenAI-compatible server: `model` is the served model's name
    "openai": ("kirag.llm.openai_engine:OpenAIEngine", "httpx", "openai"),
}
REMOTE_ENGINES = ("openai",)

_cache: dict[tuple, LLMEngine] = {}
_lock = threading.Lock()


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def choose_engine(model_format: str, engine: str = "auto") -> str:
    """The engine for a model: a .gguf goes to llama.cpp when installed (else transformers,
    which dequantizes it); other models go to vLLM on a GPU machine that has it, else to
    transformers."""
    if engine != "auto":
        if engine not in ENGINES:
            raise KiragError(f"unknown engine {engine!r}; known: auto, {', '.join(ENGINES)}")
        return engine
    if model_format == "gguf":
        return "llamacpp" if is_available("llama_cpp") else "transformers"
    if is_available("vllm") and _cuda_available():
        return "vllm"
    return "transformers"


def load_engine(model: str = DEFAULT_LLM, engine: str = "auto", **options) -> LLMEngine:
    """An engine for `model` (short name, .gguf / HF folder path, or hub id), cached."""
    if engine in ENGINES:  # named: its extra is checked before the model is looked up
        check_extra(ENGINES[engine][2], f"the {engine} engine")
    if engine in REMOTE_ENGINES:
        return _load_remote(model, engine, options)
    spec = resolve_model(model, "llm")
    name = choose_engine(spec.format, engine)
    target, _, extra = ENGINES[name]
    check_extra(extra, f"the {name} engine")
    key = (name, spec.location, tuple(sorted(options.items())))
    with _lock:
        if key not in _cache:
            cls = import_target(target)
            check_options(cls, name, options, chosen_by_auto=engine == "auto")
            extra_args = {"model_id": spec.name}
            if name == "transformers":
                extra_args["local"] = spec.is_local
            log.info("loading %s with the %s engine", spec.location, name)
            _cache[key] = cls(spec.location, **extra_args, **options)
        return _cache[key]


def _load_remote(model: str, name: str, options: dict) -> LLMEngine:
    """A served model (cached like a local one): `model` is the name the server knows it by."""
    key = (name, model, tuple(sorted(options.items())))
    with _lock:
        if key not in _cache:
            cls = import_target(ENGINES[name][0])
            check_options(cls, name, options)
            _cache[key] = cls(model, **options)
        return _cache[key]


# options that belong to one engine, to say where an option went wrong
OPTION_HOMES = {
    "dtype": "transformers or vllm",
    "quantize": "transformers (dynamic int8 on CPU) or llamacpp (a GGUF type: q4_0, q8_0, ...)",
    "device": "transformers",
    "min_shared_prefix": "transformers",
    "scoring_min_shared_prefix": "transformers",
    "quantization": "vllm (AWQ/GPTQ/FP8 checkpoints on a GPU)",
    "tensor_parallel_size": "vllm (several GPUs)",
    "enable_prefix_caching": "vllm",
    "gpu_memory_utilization": "vllm",
    "n_threads": "llamacpp",
    "reuse_prefix": "llamacpp",
    "n_parallel": "llamacpp",
    "kv_cells": "llamacpp",
    "flash_attn": "llamacpp",
    "kv_type": "llamacpp",
    "base_url": "openai",
    "api_key_env": "openai",
    "concurrency": "openai",
    "timeout": "openai",
    "retries": "openai",
    "tokenizer": "openai",
}
_INTERNAL = {"self", "model_path", "model_id", "local"}


def engine_parameters(cls) -> list[str]:
    """The options an engine class accepts (its constructor's keyword parameters)."""
    return [p for p in inspect.signature(cls.__init__).parameters if p not in _INTERNAL]


def check_options(cls, name: str, options: dict, chosen_by_auto: bool = False) -> None:
    """A clear error for options this engine does not take (instead of a TypeError deep inside),
    naming the engine each one belongs to."""
    accepted = engine_parameters(cls)
    unknown = [o for o in options if o not in accepted]
    if not unknown:
        return
    homes = "; ".join(f"{o} is an option of {OPTION_HOMES.get(o, 'no engine')}" for o in unknown)
    how = f" ('auto' chose {name} for this model: name another engine)" if chosen_by_auto else ""
    raise KiragError(
        f"the {name} engine does not take {', '.join(unknown)}{how}: {homes}. "
        f"It takes: {', '.join(accepted)}"
    )


def served_models() -> list[dict]:
    """What the server of each loaded remote engine said about itself (kind, version, served
    model): recorded in run configs."""
    with _lock:
        return [e.server_info for e in _cache.values() if hasattr(e, "server_info")]


def clear_engines() -> None:
    """Close and forget the cached engines."""
    with _lock:
        for engine in _cache.values():
            close = getattr(engine, "close", None)
            if close is not None:
                close()
        _cache.clear()


# llama-cpp-python frees its model in __del__, which fails noisily at interpreter exit once its
# module globals are gone: close cached engines while everything is still alive.
atexit.register(clear_engines)
