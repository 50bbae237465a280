"""The aligner of reference-mode KiRAG: a bi-encoder scoring candidate triples against
"question + chain so far", with the reference's input strings, prefixes and maximum lengths.

The reference (jyfang6/kirag, dataset/collators.py, knowledge_graph/models.py) encodes the query
"{question}\\nknowledge triples: {'. '.join(steps)}." (also when the chain is empty) with the E5
prefix "query: " at most 256 tokens, and each triple's raw text `<h; r; t>` with "passage: " at
most 128 tokens. These are settings here, defaulting to the reference's when the model name
contains "e5" and to no prefix / the model's own limit otherwise (MiniLM).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REFERENCE_QUERY_MAX = 256
REFERENCE_PASSAGE_MAX = 128


def aligner_query(question: str, steps: Sequence[str]) -> str:
    """The reference's aligner query string, with the chain's steps as written."""
    return "{}\nknowledge triples: {}.".format(question, ". ".join(steps))


@dataclass(frozen=True)
class AlignerSettings:
    """Prefixes and maximum token lengths of the aligner's two inputs (None: the model's)."""

    query_prefix: str = ""
    passage_prefix: str = ""
    query_max_length: int | None = None
    passage_max_length: int | None = None

    @classmethod
    def for_model(cls, model: str) -> AlignerSettings:
        """The reference's settings for an E5 model, none otherwise."""
        if "e5" in str(model).lower():
            return cls("query: ", "passage: ", REFERENCE_QUERY_MAX, REFERENCE_PASSAGE_MAX)
        return cls()


class Aligner:
    """A sentence-transformers bi-encoder with separate query/passage prefixes and lengths.

    `tokenizer` names the base model whose tokenizer to use for a fine-tuned folder saved with
    `save_pretrained` without one (the reference's trained aligners are saved that way)."""

    def __init__(
        self,
        model: str,
        settings: AlignerSettings | None = None,
        tokenizer: str | None = None,
        device: str | None = None,
        batch_size: int = 32,
    ):
        self.model_name = str(model)
        self.settings = settings or AlignerSettings.for_model(self.model_name)
        self.batch_size = batch_size
        self.model = _load(self.model_name, tokenizer, device)
        self._default_max = self.model.max_seq_length

    def _encode(self, texts: Sequence[str], prefix: str, max_length: int | None) -> np.ndarray:
        self.model.max_seq_length = max_length or self._default_max
        vectors = self.model.encode(
            [prefix + t for t in texts],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        s = self.settings
        return self._encode(texts, s.query_prefix, s.query_max_length)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        s = self.settings
        return self._encode(texts, s.passage_prefix, s.passage_max_length)


def _load(model: str, tokenizer: str | None, device: str | None):
    """A SentenceTransformer; with `tokenizer`, a bare transformers folder plus that tokenizer
    (mean pooling, as E5 uses)."""
    from kirag.models import load_sentence_transformer

    if tokenizer is None:
        return load_sentence_transformer(model, device=device)
    from kirag.errors import KiragError
    from kirag.models import resolve_model
    from kirag.optional import require

    require("sentence_transformers", "kirag", "the aligner")
    from sentence_transformers import SentenceTransformer, models

    if not Path(model).is_dir():
        raise KiragError(f"aligner {model}: a folder is needed with aligner_tokenizer")
    base = resolve_model(tokenizer, "embedder").location
    word = models.Transformer(str(model), tokenizer_name_or_path=str(base))
    dimension = getattr(word, "get_embedding_dimension", None) or word.get_word_embedding_dimension
    pooling = models.Pooling(dimension(), pooling_mode="mean")
    return SentenceTransformer(modules=[word, pooling], device=device)
