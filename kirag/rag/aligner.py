"""The aligner of reference-mode KiRAG: a bi-encoder scoring candidate triples against
"question + chain so far", with the reference's input strings, prefixes and maximum lengths.

The reference (jyfang6/kirag, dataset/collators.py, knowledge_graph/models.py) encodes the query
"{question}\\nknowledge triples: {'. '.join(steps)}." (also when the chain is empty) at most 256
tokens and each triple's raw text `<h; r; t>` at most 128 tokens, with its family's prefixes:
E5 "query: " / "passage: ", BGE "Represent this sentence for searching relevant passages: " /
none. The family is read from the model, not guessed from a path: its name, the `_name_or_path`
its config.json was saved from, its tokenizer's `name_or_path`, or `--aligner-tokenizer`'s name
(a trained aligner saved from intfloat/e5-large-v2 is E5 wherever its folder lies); `family=`
overrides, and other models get no prefix and their own limit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kirag.knowledge.demonstrations import encode_prefixed

REFERENCE_QUERY_MAX = 256
REFERENCE_PASSAGE_MAX = 128
BGE_INSTRUCTION = "Represent this sentence for searching relevant passages: "
FAMILIES = ("e5", "bge", "none")


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
    def for_family(cls, family: str) -> AlignerSettings:
        """The reference's settings for an "e5" or "bge" aligner; none for "none"."""
        if family == "e5":
            return cls("query: ", "passage: ", REFERENCE_QUERY_MAX, REFERENCE_PASSAGE_MAX)
        if family == "bge":
            return cls(BGE_INSTRUCTION, "", REFERENCE_QUERY_MAX, REFERENCE_PASSAGE_MAX)
        if family == "none":
            return cls()
        from kirag.errors import SettingsError

        raise SettingsError(f"unknown aligner family {family!r}; known: {', '.join(FAMILIES)}")

    @classmethod
    def for_model(cls, model, tokenizer: str | None = None) -> AlignerSettings:
        """The settings of the family `aligner_family` reads from the model."""
        return cls.for_family(aligner_family(model, tokenizer))


def _saved_names(folder: Path) -> list[str]:
    """The base-model names a saved folder records: config.json's `_name_or_path`,
    tokenizer_config.json's `name_or_path` (also in a sentence-transformers 0_Transformer/)."""
    names = []
    for sub in (folder, folder / "0_Transformer"):
        for file, key in (
            ("config.json", "_name_or_path"),
            ("tokenizer_config.json", "name_or_path"),
        ):
            try:
                value = json.loads((sub / file).read_text("utf-8")).get(key)
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(value, str):
                names.append(value)
    return names


def aligner_family(model, tokenizer: str | None = None) -> str:
    """ "e5", "bge" or "none", from what the model says it is: its name or path, the base-model
    names its saved folder records, its loaded tokenizer's `name_or_path`, `tokenizer`'s name.
    The reference decides by `"e5" in name` / `"bge" in name` (models.py load_aligner)."""
    names = [str(tokenizer or "")]
    if isinstance(model, (str, Path)):
        names.append(str(model))
        if Path(model).is_dir():
            names += _saved_names(Path(model))
    else:
        inner = getattr(model, "tokenizer", None)
        names.append(str(getattr(inner, "name_or_path", "") or ""))
    for family in ("e5", "bge"):
        if any(family in name.lower() for name in names):
            return family
    return "none"


class Aligner:
    """A sentence-transformers bi-encoder with separate query/passage prefixes and lengths.

    `model` is a name/path or an already loaded model object (anything with
    sentence-transformers' `encode` and `max_seq_length`). `tokenizer` names the base model
    whose tokenizer to use for a fine-tuned folder saved with `save_pretrained` without one (the
    reference's trained aligners are saved that way). `family` ("e5", "bge", "none") overrides
    the family read from the model; `settings` overrides everything."""

    def __init__(
        self,
        model,
        settings: AlignerSettings | None = None,
        tokenizer: str | None = None,
        device: str | None = None,
        batch_size: int = 32,
        family: str | None = None,
    ):
        self.model_name = str(model) if isinstance(model, (str, Path)) else type(model).__name__
        self.family = family or aligner_family(model, tokenizer)
        self.settings = settings or AlignerSettings.for_family(self.family)
        self.batch_size = batch_size
        self.model = (
            _load(str(model), tokenizer, device) if isinstance(model, (str, Path)) else model
        )

    def config(self) -> dict:
        """What was used (recorded with a run's configuration)."""
        return {"model": self.model_name, "family": self.family, **asdict(self.settings)}

    def _encode(self, texts: Sequence[str], prefix: str, max_length: int | None) -> np.ndarray:
        return encode_prefixed(self.model, texts, prefix, max_length, self.batch_size)

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
    from kirag.core.optional import require
    from kirag.errors import KiragError
    from kirag.models import resolve_model

    require("sentence_transformers", "kirag", "the aligner")
    from sentence_transformers import SentenceTransformer, models

    if not Path(model).is_dir():
        raise KiragError(f"aligner {model}: a folder is needed with aligner_tokenizer")
    base = resolve_model(tokenizer, "embedder").location
    word = models.Transformer(str(model), tokenizer_name_or_path=str(base))
    dimension = getattr(word, "get_embedding_dimension", None) or word.get_word_embedding_dimension
    pooling = models.Pooling(dimension(), pooling_mode="mean")
    return SentenceTransformer(modules=[word, pooling], device=device)
