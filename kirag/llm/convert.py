"""Model format conversion: a GGUF file dequantized into an HF folder (what vLLM needs; the
same weights the transformers engine computes with, in fp32)."""

from __future__ import annotations

import warnings
from pathlib import Path

from kirag.core.atomic import atomic_directory
from kirag.core.cpus import usable_cpus
from kirag.core.optional import require
from kirag.errors import KiragError, OutputExistsError
from kirag.models import hub_offline


def gguf_to_hf(gguf_path: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Load a GGUF with transformers (dequantizing to fp32), drop its quantizer so the weights
    save as plain tensors, and save model + tokenizer as an HF folder (atomically)."""
    torch = require("torch", "rerank", "converting a GGUF to a transformers folder")
    transformers = require("transformers", "rerank", "converting a GGUF to a transformers folder")
    AutoModelForCausalLM = transformers.AutoModelForCausalLM
    AutoTokenizer = transformers.AutoTokenizer

    gguf_path = Path(gguf_path)
    with hub_offline(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
        )
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_directory(out_dir, overwrite=overwrite, check_replace=_check_hf_folder) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return Path(out_dir)


def _check_hf_folder(path: Path) -> None:
    """Overwrite only what looks like a model folder (a config.json), never any folder."""
    if not (path / "config.json").is_file():
        raise OutputExistsError(
            f"{path} is not a model folder (no config.json); refusing to replace it"
        )


# the GGUF weight types llama.cpp can requantize to that are worth offering for CPU inference
# (f32: the dequantized weights exactly, computed in full precision — the reference a quantized
# type is compared with inside llama.cpp)
GGUF_TYPES = ("f32", "f16", "q8_0", "q6_k", "q5_0", "q5_1", "q4_0", "q4_1", "q4_k_m", "iq4_nl")


def requantize_gguf(
    gguf_path: str | Path, out_path: str | Path, weight_type: str, threads: int | None = None
) -> Path:
    """Write `gguf_path` with its weights in another GGUF type through llama.cpp's own quantizer
    (`llama_model_quantize`, requantizing an already quantized file). On CPUs, llama.cpp's
    fastest prompt kernels are for Q4_0 and Q8_0 (repacked / tinyBLAS), not Q4_1. Atomic: the
    file is written beside `out_path` and renamed."""
    import ctypes
    import os

    from kirag.core.atomic import TMP_MARK

    llama_cpp = require("llama_cpp", "llamacpp", "requantizing a GGUF")
    key = weight_type.lower()
    ftype = (
        llama_cpp.LLAMA_FTYPE_ALL_F32
        if key == "f32"
        else getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{key.upper()}", None)
    )
    if key not in GGUF_TYPES or ftype is None:
        raise KiragError(
            f"unknown GGUF type {weight_type!r} for the llama.cpp engine; known: "
            f"{', '.join(GGUF_TYPES)} (int8 is the transformers engine's dynamic quantization)"
        )
    gguf_path, out_path = Path(gguf_path), Path(out_path)
    if not gguf_path.is_file():
        raise KiragError(f"{gguf_path}: no such GGUF file")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}{TMP_MARK}{os.getpid()}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = threads or usable_cpus()
    from llama_cpp._logger import set_verbose

    set_verbose(False)  # llama.cpp logs every tensor it converts
    try:
        status = llama_cpp.llama_model_quantize(
            str(gguf_path).encode(), str(tmp).encode(), ctypes.byref(params)
        )
        if status != 0 or not tmp.is_file():
            raise KiragError(
                f"llama.cpp could not requantize {gguf_path} to {key} (status {status})"
            )
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path


def requantized_gguf(
    gguf_path: str | Path, weight_type: str, cache_dir: str | Path | None = None
) -> Path:
    """The `weight_type` version of a GGUF file, made once and kept in kirag's cache
    (`$KIRAG_CACHE_DIR`, default ~/.cache/kirag/gguf), named by the source's path, size and
    modification time so an updated source is requantized again."""
    gguf_path = Path(gguf_path).resolve()
    out = _cache_entry(gguf_path, "gguf", f"{weight_type.lower()}.gguf", cache_dir)
    return out if out.is_file() else requantize_gguf(gguf_path, out, weight_type)


# GGUF files up to this size (models up to ~1.5B parameters at 4-5 bits) are dequantized once
# into kirag's cache; a larger one is dequantized on every load rather than copied to disk in fp32
DEQUANTIZED_CACHE_MAX_BYTES = 2**30


def dequantized_folder(gguf_path: str | Path, cache_dir: str | Path | None = None) -> Path | None:
    """The HF folder of a GGUF file's fp32 dequantization (gguf_to_hf), made once and kept in
    kirag's cache (`$KIRAG_CACHE_DIR`, default ~/.cache/kirag/hf), named as requantized_gguf
    names its files: loading it takes a second where dequantizing the GGUF again takes ~15.
    None for a file over DEQUANTIZED_CACHE_MAX_BYTES, while another process makes it, or where
    the cache cannot be written (read-only, full): the caller then dequantizes in memory, as
    before the cache existed."""
    gguf_path = Path(gguf_path).resolve()
    if gguf_path.stat().st_size > DEQUANTIZED_CACHE_MAX_BYTES:
        return None
    out = _cache_entry(gguf_path, "hf", "fp32", cache_dir)
    if (out / "config.json").is_file():
        return out
    try:
        return gguf_to_hf(gguf_path, out)
    except (KiragError, OSError):  # another process holds its build lock; or no room to write
        return None


def _cache_entry(gguf_path: Path, folder: str, suffix: str, cache_dir: str | Path | None) -> Path:
    """Where kirag's cache keeps a form of `gguf_path`: named by its path, size and modification
    time, so an updated source is converted again."""
    import hashlib
    import os

    stat = gguf_path.stat()
    stamp = hashlib.sha256(f"{gguf_path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    root = Path(cache_dir or os.environ.get("KIRAG_CACHE_DIR") or Path.home() / ".cache" / "kirag")
    return root / folder / f"{gguf_path.stem}.{stamp[:12]}.{suffix}"
