"""Model format conversion: a GGUF file dequantized into an HF folder (what vLLM needs; the
same weights the transformers engine computes with, in fp32)."""

from __future__ import annotations

import warnings
from pathlib import Path

from kirag.atomic import atomic_directory
from kirag.models import hub_offline


def gguf_to_hf(gguf_path: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Load a GGUF with transformers (dequantizing to fp32), drop its quantizer so the weights
    save as plain tensors, and save model + tokenizer as an HF folder (atomically)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

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
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return Path(out_dir)
