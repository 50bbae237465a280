"""The deterministic model fakes shared by kirag and the KiRAG reference (jyfang6/kirag) in the
differential test: models replaced at the boundary, everything else the real code of each side.

- a seeded-hash bi-encoder: a text's vector is drawn by a generator seeded with the token ids a
  real tokenizer gives (all-MiniLM's BERT-uncased WordPiece, E5's vocabulary), truncated to the
  length each side asks for — so prefixes and maximum lengths change vectors exactly as they
  would with E5;
- a scripted constructor/extractor LLM: canned outputs, one per call, on a real chat tokenizer
  (SmolLM2's, read from the packaged GGUF);
- a fixed dense document retriever: recorded hits per query.

benchmarks/reference/kirag_differential.py drives the reference with these; the replay test
(tests/test_reference_differential.py) drives kirag with the same ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache

import numpy as np

SEED = 26
DIMENSION = 32
SCALE = 64  # vectors are integer vectors of norm 64, divided by 64: unit length exactly


def _four_squares(n: int) -> list[int]:
    """Four non-negative integers whose squares sum to `n` (Lagrange: always possible)."""
    a = int(n**0.5)
    while a >= 0:
        b = int((n - a * a) ** 0.5)
        while b >= 0:
            rest = n - a * a - b * b
            c = int(rest**0.5)
            while c >= 0:
                d2 = rest - c * c
                d = round(d2**0.5)
                if d * d == d2:
                    return [a, b, c, d]
                c -= 1
            b -= 1
        a -= 1
    raise AssertionError(n)


@cache
def _embed(ids: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng([SEED, len(ids), *ids])
    while True:
        head = rng.integers(-14, 15, DIMENSION - 4)
        rest = SCALE * SCALE - int((head**2).sum())
        if rest >= 0:
            break
    tail = np.array(_four_squares(rest)) * rng.choice([-1, 1], 4)
    vector = rng.permutation(np.concatenate([head, tail]))
    return (vector / SCALE).astype(np.float32)


def embed_ids(ids: Sequence[int]) -> np.ndarray:
    """The bi-encoder's vector for a token id sequence: drawn by a generator seeded with the
    ids, with components k/64 and norm exactly 1 — so sums, means, norms and inner products
    are exact in float32 on both sides, whatever the order of summation: equal texts tie
    exactly and every comparison comes out the same in kirag and in the reference."""
    return _embed(tuple(int(i) for i in ids))


@lru_cache(maxsize=1)
def bert_tokenizer():
    """all-MiniLM-L6-v2's tokenizer (BERT uncased WordPiece, the vocabulary E5 uses)."""
    from transformers import AutoTokenizer

    from kirag.models import resolve_model

    return AutoTokenizer.from_pretrained(str(resolve_model("minilm", "embedder").location))


@lru_cache(maxsize=1)
def chat_tokenizer():
    """SmolLM2-135M-Instruct's tokenizer and chat template, from the packaged GGUF; left
    padding with EOS as the pad token (what the reference's Generator demands)."""
    import os
    from pathlib import Path

    from transformers import AutoTokenizer

    from kirag.models import packaged_path

    path = packaged_path("smollm2-135m")
    # reading the GGUF takes ~10 s: the tokenizer is saved once under $KIRAG_CACHE_DIR
    # (as kirag.llm.convert caches its conversions), named by the GGUF's size and mtime
    stat = path.stat()
    root = Path(os.environ.get("KIRAG_CACHE_DIR") or Path.home() / ".cache" / "kirag")
    saved = root / "tokenizers" / f"{path.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    if (saved / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(str(saved))
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        partial = saved.with_name(f"{saved.name}.{os.getpid()}.partial")
        tokenizer.save_pretrained(str(partial))
        try:
            partial.rename(saved)  # whole or not at all, also with parallel test runs
        except OSError:
            import shutil

            shutil.rmtree(partial, ignore_errors=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


class HashSentenceModel:
    """The seeded-hash bi-encoder behind sentence-transformers' surface (`encode`,
    `max_seq_length`, `tokenizer`): what kirag's aligner and demonstration ranker load."""

    def __init__(self, max_seq_length: int = 512, name: str = "hash-e5"):
        self.tokenizer = bert_tokenizer()
        self.max_seq_length = max_seq_length
        self.name = name

    def encode(
        self,
        sentences,
        batch_size: int = 32,
        normalize_embeddings: bool = True,
        convert_to_numpy: bool = True,
        show_progress_bar: bool = False,
        **_,
    ) -> np.ndarray:
        ids = self.tokenizer(list(sentences), max_length=self.max_seq_length, truncation=True)[
            "input_ids"
        ]
        return np.stack([embed_ids(row) for row in ids]) if ids else np.zeros((0, DIMENSION))


class ScriptedEngine:
    """kirag's LLM engine surface over a real chat tokenizer, answering from a script: the
    canned outputs in order, one per prompt; every prompt it was given is kept."""

    name = "scripted"
    model_id = "scripted"
    context_length = 8192  # SmolLM2's; the reference's prompts stay within 4096 + 512 anyway

    def __init__(self, outputs: Sequence[str] = ()):
        self.tokenizer = chat_tokenizer()
        self.outputs = list(outputs)
        self.prompts: list[str] = []

    def apply_chat_template(self, messages) -> str:
        return self.tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=True
        )

    def token_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def count_tokens(self, text: str) -> int:
        return len(self.token_ids(text))

    def truncate(self, text: str, max_tokens: int) -> str:
        ids = self.token_ids(text)
        return text if len(ids) <= max_tokens else self.tokenizer.decode(ids[:max_tokens])

    def generate(self, prompts, max_tokens: int, stop=None) -> list[str]:
        self.prompts += list(prompts)
        out, self.outputs = self.outputs[: len(prompts)], self.outputs[len(prompts) :]
        return out


class FixedDocRetriever:
    """kirag's document retriever surface returning recorded hits per query."""

    def __init__(self, hits: dict[str, list[tuple[str, float]]]):
        self.hits = hits
        self.queries: list[str] = []

    def search(self, query: str, k: int = 10, with_documents: bool = False):
        from kirag.types import Hit

        self.queries.append(query)
        return [
            Hit(doc_id, score, rank) for rank, (doc_id, score) in enumerate(self.hits[query][:k], 1)
        ]


class PromptKeyedEngine(ScriptedEngine):
    """A deterministic engine whose output depends only on the prompt (one of `outputs`, chosen
    by the prompt's SHA-256), whatever else is in the batch: batched and one-at-a-time
    generation are equal by construction, so a loop run both ways must give the same chains.
    Each `generate` call's batch size is kept."""

    def __init__(self, outputs: Sequence[str]):
        super().__init__()
        self.choices = list(outputs)
        self.batches: list[int] = []

    def generate(self, prompts, max_tokens: int, stop=None) -> list[str]:
        import hashlib

        self.prompts += list(prompts)
        self.batches.append(len(prompts))
        return [
            self.choices[int(hashlib.sha256(p.encode()).hexdigest(), 16) % len(self.choices)]
            for p in prompts
        ]
