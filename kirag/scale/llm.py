"""GPU stages through Ray Data's vLLM processor (`ray.data.llm`, stable in Ray 2.60): a
processor config and builder shared by Rank1 and triple extraction, which bring their own
prompts (preprocess) and parsers (postprocess). Generation needs vLLM and a GPU on the workers
(one per engine copy); building the processor needs neither (checked on CPU here)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kirag.core.optional import require
from kirag.errors import SettingsError


@dataclass
class VLLMStage:
    """How a vLLM stage runs on Ray: the model, engine copies (`workers`; vLLM takes one GPU per
    tensor-parallel rank of each), rows per batch, and vLLM engine options (dtype,
    quantization, max_model_len, tensor_parallel_size)."""

    model: str
    workers: int = 1
    batch_size: int = 64
    engine_kwargs: dict[str, Any] = field(default_factory=dict)
    chat_template: bool = False  # True: rows carry "messages", the model's template applies

    def config(self):
        """The `vLLMEngineProcessorConfig` of this stage."""
        llm = require("ray.data.llm", "ray", "vLLM stages on Ray (the ray executor, engine vllm)")
        if self.workers < 1 or self.batch_size < 1:
            raise SettingsError(
                "workers and batch_size must be >= 1", parameters=("workers", "batch_size")
            )
        engine_kwargs = {"enable_prefix_caching": True, **self.engine_kwargs}
        return llm.vLLMEngineProcessorConfig(
            model_source=self.model,
            concurrency=self.workers,
            batch_size=self.batch_size,
            engine_kwargs=engine_kwargs,
            chat_template_stage=self.chat_template,
            tokenize_stage=True,
            detokenize_stage=True,
        )

    def processor(
        self,
        preprocess: Callable[[Mapping[str, Any]], dict[str, Any]],
        postprocess: Callable[[Mapping[str, Any]], dict[str, Any]],
    ):
        """A Ray Data processor: dataset in, dataset out (rows keep their own columns)."""
        llm = require("ray.data.llm", "ray", "vLLM stages on Ray (the ray executor, engine vllm)")
        return llm.build_processor(self.config(), preprocess=preprocess, postprocess=postprocess)


def final_logprobs(row: Mapping[str, Any]) -> dict[int, float]:
    """token id -> log-prob at the last generated position of a vLLM stage's output row."""
    steps = row.get("logprobs")
    if steps is None or len(steps) == 0:
        return {}
    last = steps[-1] or {}
    return {int(token): float(info["logprob"]) for token, info in last.items() if info}


def run_rows(processor, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows through a processor, back in input order (Ray Data does not keep it): each row
    carries its position in `_row`."""
    ray = require("ray", "ray")
    dataset = ray.data.from_items([{**row, "_row": i} for i, row in enumerate(rows)])
    out = processor(dataset).take_all()
    return sorted(out, key=lambda r: r["_row"])
