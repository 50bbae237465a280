"""Faster CPU encoding: a sentence-transformers model's transformer run by ONNX Runtime or
OpenVINO, in float32 or int8 (or OpenVINO's bfloat16 arithmetic), exported once and cached.

sentence-transformers' own `backend="onnx"|"openvino"` goes through Optimum (optimum-onnx,
optimum-intel), whose releases require transformers < 4.58 / < 5.6: they cannot be installed
beside kirag's transformers 5.x. The same steps are done here with the underlying libraries:
the transformer is exported with `torch.onnx.export` (what Optimum does), int8 ONNX is ONNX
Runtime's dynamic quantisation (what `export_dynamic_quantized_onnx_model` runs), OpenVINO reads
the ONNX file, and int8 OpenVINO is NNCF's post-training static quantisation with 300
calibration passages (what `export_static_quantized_openvino_model` runs, with kirag's bundled
passages instead of GLUE from the hub, so it works offline). OpenVINO bf16 is the float32 export
compiled with `INFERENCE_PRECISION_HINT=bf16` (kirag's own option, not sentence-transformers').
OpenVINO int8-mixed (kirag's own too) is NNCF's static int8 with the MatMuls that lose most in
int8 left out (MIXED_KEPT_FLOAT: the feed-forward block and attention's probabilities x values)
and compiled with the bf16 hint, so those run in bfloat16: between int8 and bf16 in speed and
agreement (docs/retrieval.md has the measured figures).
Only the transformer is replaced;
pooling and normalisation stay sentence-transformers' own modules.

Exports live in a fixed folder per model, backend and quantisation under kirag's cache
(`$KIRAG_CACHE_DIR`, default ~/.cache/kirag/encoders), written atomically and reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kirag.core.atomic import atomic_directory
from kirag.core.interrupts import kept_signal_stack
from kirag.core.optional import require
from kirag.errors import InputError, OutputExistsError

BACKENDS = ("torch", "onnx", "openvino")
QUANTIZATIONS = ("int8", "bf16", "int8-mixed")
# bf16 is not a separate export: OpenVINO runs the float32 model with bfloat16 arithmetic where
# the CPU has it (AVX512_BF16 or AMX) and float32 elsewhere
ARITHMETIC_ONLY = {"bf16"}
# what only the openvino backend runs; int8-mixed is compiled with bfloat16 arithmetic for the
# operations it keeps out of int8
OPENVINO_ONLY = {"bf16", "int8-mixed"}
BF16_ARITHMETIC = {"bf16", "int8-mixed"}
EXPORT_VERSION = 1  # bump when the export steps change: old cache folders are then not reused
CALIBRATION_SAMPLES = 300  # as sentence-transformers' OpenVINO static quantisation
# int8-mixed: NNCF static int8 with these MatMuls (full-match regular expressions over the names
# torch.onnx.export gives a BERT encoder's operations) kept in float and run in bfloat16: the
# feed-forward block's two products and attention's probabilities x values. Measured on MiniLM
# (held-out passages, mean 1 - cosine to float32 per role left alone in int8, the rest bfloat16:
# Q.K^T 2.6e-4, attention output 3.3e-4, Q/K/V projections 4.1e-4, feed-forward input 6.9e-4;
# all int8 3.4e-3, of which the feed-forward output 42% and probabilities x values 22%), int8
# stays where it costs least: Q/K/V, Q.K^T and the attention output (a third of the products)
MIXED_KEPT_FLOAT: tuple[str, ...] = (
    r".*/layer\.\d+/intermediate/dense/MatMul",
    r".*/layer\.\d+/output/dense/MatMul",
    r".*/attention/self/MatMul_1",
)
# its calibration passages: the bundled sample's passages after the first `skip` (outside the
# first 2,000 that `kirag bench scale --sections encoding` measures on)
MIXED_CALIBRATION = {"corpus": "enwiki-sample", "skip": 3500, "samples": 300}
# the order the exported graph takes its inputs in (the ones the tokenizer produces)
INPUT_ORDER = ("input_ids", "attention_mask", "token_type_ids")
MODEL_FILES = ("config.json", "model.safetensors", "pytorch_model.bin")
# what each backend imports (the export goes through ONNX for both)
EXTRA_MODULES = {
    "onnx": ("onnx", "onnxruntime"),
    "onnx-int8": ("onnx", "onnxruntime", "onnxruntime.quantization"),
    "openvino": ("onnx", "openvino"),
    "openvino-int8": ("onnx", "openvino", "nncf"),
    "openvino-bf16": ("onnx", "openvino"),
    "openvino-int8-mixed": ("onnx", "openvino", "nncf"),
}


@dataclass(frozen=True)
class EncoderBackend:
    """Which runtime encodes (torch, onnx, openvino) and whether its weights are int8."""

    backend: str = "torch"
    quantize: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise InputError(
                f"unknown encoder backend {self.backend!r}; known: {', '.join(BACKENDS)}"
            )
        if self.quantize is not None and self.quantize not in QUANTIZATIONS:
            raise InputError(
                f"unknown quantisation {self.quantize!r}; known: {', '.join(QUANTIZATIONS)}"
            )
        if self.quantize in OPENVINO_ONLY and self.backend != "openvino":
            raise InputError(
                f"{self.quantize} runs on the openvino encoder backend "
                f"(backend=openvino with quantize={self.quantize})",
                parameters=("backend", "quantize"),
            )
        if self.quantize and self.backend == "torch":
            raise InputError(
                "int8 quantisation runs on the onnx or openvino encoder backend "
                "(backend=onnx|openvino with quantize=int8)",
                parameters=("backend", "quantize"),
            )

    @property
    def export(self) -> EncoderBackend:
        """The export this choice runs: bf16 runs the float32 export."""
        if self.quantize in ARITHMETIC_ONLY:
            return EncoderBackend(self.backend)
        return self

    @property
    def label(self) -> str:
        """A short name: torch, onnx, onnx-int8, openvino, openvino-int8."""
        return f"{self.backend}-{self.quantize}" if self.quantize else self.backend

    def check_installed(self) -> None:
        """Raise MissingExtraError naming the extra (onnx, openvino) when its libraries are
        missing, before any model is loaded."""
        for module in EXTRA_MODULES.get(self.label, ()):
            require(module, self.backend, f"the {self.label} encoder backend")


def cache_root() -> Path:
    """kirag's cache folder (`$KIRAG_CACHE_DIR`, default ~/.cache/kirag)."""
    return Path(os.environ.get("KIRAG_CACHE_DIR") or Path.home() / ".cache" / "kirag")


def model_stamp(location: str) -> str:
    """Names a model's exports: its location plus the size and time of its weight files, so an
    updated model is exported again."""
    parts = [str(EXPORT_VERSION), location]
    path = Path(location)
    for name in MODEL_FILES:
        file = path / name
        if file.is_file():
            stat = file.stat()
            parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def export_folder(location: str, choice: EncoderBackend, root: Path | None = None) -> Path:
    """The fixed cache folder of one model's export for one backend and quantisation."""
    slug = Path(location).name.replace("/", "--") or "model"
    if not Path(location).exists():  # a hub id
        slug = location.replace("/", "--")
    name = f"{choice.backend}-{choice.quantize or 'fp32'}"
    if choice.quantize == "int8-mixed":  # its recipe is part of its name
        name += f"-{mixed_recipe_key()}"
    return (root or cache_root()) / "encoders" / f"{slug}.{model_stamp(location)}" / name


def _model_file(folder: Path, backend: str) -> Path:
    return folder / ("model.onnx" if backend == "onnx" else "openvino_model.xml")


def _input_names(transformer) -> list[str]:
    """The tokenizer outputs the transformer takes, in INPUT_ORDER."""
    produced = set(transformer.tokenizer("a b", return_tensors="pt").keys())
    return [name for name in INPUT_ORDER if name in produced]


def _export_onnx(st_model, out: Path) -> None:
    """Export the transformer of `st_model` to ONNX (last_hidden_state, dynamic batch/length)."""
    import torch

    require("onnx", "onnx", "exporting an encoder to ONNX")
    transformer = st_model[0]
    names = _input_names(transformer)

    class _Hidden(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            return self.model(**dict(zip(names, tensors, strict=True))).last_hidden_state

    example = transformer.tokenizer(
        ["an example passage", "a second, longer example passage for the export"],
        padding=True,
        return_tensors="pt",
    )
    dynamic = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
    model = transformer.model.to("cpu").eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape checks it freezes
        torch.onnx.export(
            _Hidden(model),
            tuple(example[name].to("cpu") for name in names),
            str(out),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,  # the TorchScript exporter: one pass, no torch.export of the model
        )


def _quantize_onnx(source: Path, out: Path) -> None:
    """Dynamic int8 quantisation of an ONNX model (weights int8 per channel, activations
    quantised at run time), as ONNX Runtime's quantize_dynamic does it."""
    quantization = require("onnxruntime.quantization", "onnx", "int8 ONNX quantisation")
    quantization.quantize_dynamic(
        str(source),
        str(out),
        per_channel=True,
        weight_type=quantization.QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
    )


def _convert_openvino(source: Path, out: Path) -> None:
    """An OpenVINO IR (float32 weights) read from the ONNX export."""
    ov = require("openvino", "openvino", "the OpenVINO encoder backend")
    ov.save_model(ov.convert_model(str(source)), str(out), compress_to_fp16=False)


def calibration_texts(count: int | None = None, skip: int = 0) -> list[str]:
    """`count` (default CALIBRATION_SAMPLES) passages of the bundled enwiki sample after its
    first `skip` (offline calibration data)."""
    from kirag.io.corpus import read_corpus

    count = count or CALIBRATION_SAMPLES
    texts = []
    for index, document in enumerate(read_corpus("enwiki-sample")):
        if index < skip:
            continue
        texts.append(document.contents)
        if len(texts) == count:
            break
    return texts


def mixed_recipe_key() -> str:
    """Names an int8-mixed export: a hash of everything in its recipe (the operations kept out of
    int8, the calibration passages, the nncf version), so a changed recipe is exported again."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        nncf_version = version("nncf")
    except PackageNotFoundError:
        nncf_version = "absent"
    recipe = json.dumps([MIXED_KEPT_FLOAT, MIXED_CALIBRATION, nncf_version], sort_keys=True)
    return hashlib.sha256(recipe.encode()).hexdigest()[:8]


def _quantize_openvino(st_model, source: Path, out: Path, mixed: bool = False) -> dict:
    """Post-training static int8 quantisation of an OpenVINO IR with NNCF (transformer preset),
    calibrated on bundled passages tokenized as the model tokenizes them. `mixed`: the MatMuls
    named by MIXED_KEPT_FLOAT stay out of int8, and the calibration passages are
    MIXED_CALIBRATION's. Returns what the export record adds (the operations kept float)."""
    import re

    ov = require("openvino", "openvino", "the OpenVINO encoder backend")
    nncf = require("nncf", "openvino", "int8 OpenVINO quantisation")
    transformer = st_model[0]
    names = _input_names(transformer)
    if mixed:
        texts = calibration_texts(MIXED_CALIBRATION["samples"], MIXED_CALIBRATION["skip"])
    else:
        texts = calibration_texts()
    items = []
    for text in texts:
        encoded = transformer.tokenizer(
            [text],
            truncation=True,
            max_length=st_model.max_seq_length,
            return_tensors="np",
        )
        items.append({name: encoded[name].astype(np.int64) for name in names})
    model = ov.Core().read_model(str(source))
    options: dict[str, Any] = {}
    record: dict[str, Any] = {"calibration_passages": len(items)}
    if mixed:
        matmuls = [
            op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == "MatMul"
        ]
        kept = [n for n in matmuls if any(re.fullmatch(p, n) for p in MIXED_KEPT_FLOAT)]
        if not kept:
            warnings.warn(
                "int8-mixed: no MatMul of this model matches the operations it keeps in float "
                "(named as torch.onnx.export names a BERT encoder's): every MatMul is int8",
                stacklevel=2,
            )
        else:
            options["ignored_scope"] = nncf.IgnoredScope(names=kept)
        record.update(
            calibration=MIXED_CALIBRATION,
            matmuls=len(matmuls),
            matmuls_kept_float=kept,
            recipe=mixed_recipe_key(),
        )
    with kept_signal_stack():  # nncf compiles the model to collect its statistics
        quantized = nncf.quantize(
            model,
            nncf.Dataset(items),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(items),
            **options,
        )
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    return record


def cached_export(
    st_model, location: str, choice: EncoderBackend, root: Path | None = None
) -> Path:
    """The exported model file for `choice`, made once in its cache folder (atomically: a
    crashed export leaves nothing a later run would take for finished) and reused after."""
    choice = choice.export
    folder = export_folder(location, choice, root)
    target = _model_file(folder, choice.backend)
    if target.is_file():
        return target
    # each step starts from the previous one's cached export: onnx -> int8 / openvino -> int8
    record: dict[str, Any] = {}
    if choice == EncoderBackend("onnx"):
        source = None
    elif choice.backend == "openvino" and choice.quantize:
        source = cached_export(st_model, location, EncoderBackend("openvino"), root)
    else:
        source = cached_export(st_model, location, EncoderBackend("onnx"), root)
    started = time.perf_counter()
    try:
        with atomic_directory(folder) as tmp:
            out = _model_file(tmp, choice.backend)
            if source is None:
                _export_onnx(st_model, out)
            elif choice.backend == "onnx":
                _quantize_onnx(source, out)
            elif choice.quantize:
                record = _quantize_openvino(
                    st_model, source, out, mixed=choice.quantize == "int8-mixed"
                )
            else:
                _convert_openvino(source, out)
            (tmp / "export.json").write_text(
                json.dumps(
                    {
                        "model": location,
                        "backend": choice.backend,
                        "quantize": choice.quantize,
                        "from": str(source) if source else "torch.onnx.export",
                        "seconds": round(time.perf_counter() - started, 1),
                        **record,
                    },
                    indent=1,
                ),
                "utf-8",
            )
    except OutputExistsError:  # another process finished the same export first
        pass
    return target


def _threads() -> int:
    import torch

    return max(1, torch.get_num_threads())


class ExportedTransformer:
    """Runs an exported transformer; called like a transformers model (keyword tensors in,
    `last_hidden_state` out) so sentence-transformers' pooling modules work unchanged."""

    def __init__(self, config, names: list[str]):
        self.config = config
        self.names = names

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, **inputs: Any) -> dict[str, Any]:
        import torch

        device = inputs["input_ids"].device
        feeds = {
            name: inputs[name].detach().cpu().numpy().astype(np.int64)
            for name in self.names
            if name in inputs
        }
        hidden = np.ascontiguousarray(self.run(feeds), dtype=np.float32)
        return {"last_hidden_state": torch.from_numpy(hidden).to(device)}


class OnnxTransformer(ExportedTransformer):
    """An ONNX Runtime session on the CPU, with as many threads as torch uses."""

    def __init__(self, path: Path, config, names: list[str]):
        super().__init__(config, names)
        ort = require("onnxruntime", "onnx", "the ONNX encoder backend")
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(["last_hidden_state"], feeds)[0]


class OpenVinoTransformer(ExportedTransformer):
    """An OpenVINO model compiled for the CPU in float32 arithmetic (int8 where quantised), or
    with `precision="bf16"` in bfloat16 where the CPU has it (`self.precision` says which ran)."""

    def __init__(self, path: Path, config, names: list[str], precision: str = "f32"):
        super().__init__(config, names)
        ov = require("openvino", "openvino", "the OpenVINO encoder backend")
        with kept_signal_stack():  # see there: a freed signal stack turns Ctrl-C into a segfault
            self.compiled = ov.Core().compile_model(
                str(path),
                "CPU",
                {
                    "INFERENCE_NUM_THREADS": _threads(),
                    "INFERENCE_PRECISION_HINT": precision,
                    # no per-shape executor cache: with it, RSS kept growing with every new input
                    # shape (int8 MiniLM, +560 MB over 6k passages after the first 2k); without
                    # it +120 MB, at the same speed (measured on 2,800 passages: 29.7 s vs 30.5 s)
                    "CPU_RUNTIME_CACHE_CAPACITY": "0",
                },
            )
        ran = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = ran.get_type_name() if hasattr(ran, "get_type_name") else str(ran)
        if precision == "bf16" and self.precision != "bf16":
            warnings.warn(
                "this CPU has no bfloat16 instructions (AVX512_BF16 or AMX): the openvino "
                "encoder's bfloat16 arithmetic runs in float32",
                stacklevel=2,
            )

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        request = self.compiled.create_infer_request()  # one per call: safe across threads
        return next(iter(request.infer(feeds).values()))


def _as_module(runtime: ExportedTransformer):
    """Wrap a runtime as a torch Module so it can take the transformer's place in the model."""
    import torch

    class _Module(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.runtime = runtime
            self.config = runtime.config

        def forward(self, **inputs):
            return self.runtime(**inputs)

    return _Module()


def attach_backend(st_model, location: str, choice: EncoderBackend) -> None:
    """Replace the transformer inside `st_model` by its export for `choice` (no-op for torch)."""
    if choice.backend == "torch":
        return
    choice.check_installed()
    from sentence_transformers.base.modules.transformer import Transformer

    transformer = st_model[0]
    if not isinstance(transformer, Transformer):
        raise InputError(
            f"the {choice.backend} encoder backend needs a model whose first module is a "
            f"sentence-transformers Transformer, not {type(transformer).__name__}"
        )
    path = cached_export(st_model, location, choice)
    names = _input_names(transformer)
    config = transformer.model.config
    if choice.backend == "onnx":
        runtime: ExportedTransformer = OnnxTransformer(path, config, names)
    else:
        precision = "bf16" if choice.quantize in BF16_ARITHMETIC else "f32"
        runtime = OpenVinoTransformer(path, config, names, precision)
    transformer.model = _as_module(runtime)
    transformer.model_forward_params = None  # forward takes **inputs
    transformer._declared_forward_params = set(names)
