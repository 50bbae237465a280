"""The engine a user chooses and the options they set (precision, quantization, parallelism,
context), declared once: the flags of every command that loads an engine (every `--engine`), the
options passed to `load_engine`, the run record and the keys of sharded work are derived from
`EngineSettings`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kirag.core.ranges import COUNT
from kirag.core.settings import changed_options, check_settings, setting
from kirag.llm.convert import GGUF_TYPES
from kirag.llm.factory import ENGINES
from kirag.llm.transformers_engine import DTYPES


@dataclass(frozen=True)
class EngineSettings:
    """The LLM engine and its options; only the options changed from their defaults reach the
    engine, which refuses the ones it does not take (e.g. a vLLM quantization on llama.cpp) with
    a clear error."""

    # the one --engine of every command (the extraction LLM's too: LLMExtractorSettings)
    engine: str = setting(
        "auto",
        "LLM engine; auto: llamacpp for a .gguf (transformers without llama-cpp-python), else "
        "vllm on a GPU machine that has it, else transformers",
        choices=("auto", *ENGINES),
        flag="--engine",
    )
    dtype: str | None = setting(
        None,
        "precision (transformers, vllm); default: float16 on a GPU (the Rank1 reference's), "
        "float32 on the CPU (float16 is slow there; float32 is the numerical reference)",
        choices=(*DTYPES, "auto"),
    )
    quantize: str | None = setting(
        None,
        "transformers on CPU: int8 (dynamic, measured accuracy loss); llamacpp: a GGUF weight "
        "type the model is requantized to once (q4_0: the fastest CPU prompt kernels)",
        choices=("int8", *GGUF_TYPES),
    )
    quantization: str | None = setting(
        None, "vLLM checkpoint quantization (awq, gptq, fp8): GPU only"
    )
    tensor_parallel: int = setting(
        1,
        "vLLM tensor parallelism (GPUs)",
        range=COUNT,
        option="tensor_parallel_size",
        affects="rounding",
    )
    context: int | None = setting(
        None,
        "context length in tokens (every engine's context_length option)",
        range=COUNT,
        option="context_length",
    )

    def __post_init__(self) -> None:
        check_settings(self)

    def options(self) -> dict[str, Any]:
        """The engine options these settings ask for, by the engines' parameter names (the
        engine's name is `load_engine`'s own argument, not an option)."""
        options = changed_options(self)
        options.pop("engine", None)
        return options
