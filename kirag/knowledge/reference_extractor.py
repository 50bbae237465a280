"""Triple extraction as KiRAG's reference does it (jyfang6/kirag, knowledge_graph/kg_generator.py):
the knowledge-graph-constructor instruction and 5 demonstrations chosen per document by embedding
similarity from a dataset's pool in the system message, "Title: …\\nText: …" as the user message,
greedy decoding of 512 new tokens, triples parsed with `<([^>]*)>` (placeholders dropped), each
linked to the sentence it shares most words with."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from kirag.knowledge.demonstrations import (
    EXTRACTION_MAX_TOKENS,
    NUM_DEMONSTRATIONS,
    SHIPPED,
    ExtractionDemonstration,
    ExtractionDemonstrationSelector,
    extraction_messages,
    load_pools,
)
from kirag.knowledge.llm_extractor import LLMTripleExtractor
from kirag.llm.base import LLMEngine
from kirag.models import DEFAULT_LLM
from kirag.types import Document


def document_text(document: Document) -> str:
    """A document as the reference shows it to the demonstration selector and the model."""
    return f"Title: {document.title or ''}\nText: {document.text}"


class ReferenceTripleExtractor(LLMTripleExtractor):
    """The reference's few-shot extractor over adaptive demonstrations (`--extractor reference`).
    The selector encodes documents with `encoder` (the reference uses an untrained E5)."""

    name = "reference"
    loose_parsing = False  # the reference's parser: `<([^>]*)>` only

    def __init__(
        self,
        engine: LLMEngine | None = None,
        model: str = DEFAULT_LLM,
        engine_name: str = "auto",
        max_tokens: int = EXTRACTION_MAX_TOKENS,
        batch_size: int = 8,
        sentence_pipeline: str = "blank",
        demonstrations: str | None = None,
        dataset: str = SHIPPED,
        encoder: str = "minilm",
        num_demonstrations: int = NUM_DEMONSTRATIONS,
    ):
        super().__init__(engine, model, engine_name, max_tokens, 0, batch_size, sentence_pipeline)
        from kirag.retrieval.dense import Encoder

        pool = load_pools(demonstrations).documents(dataset)
        self.selector = ExtractionDemonstrationSelector(pool, Encoder(encoder), num_demonstrations)
        self._demonstrations: list[ExtractionDemonstration] = []
        digest = hashlib.sha256(
            json.dumps([d.document() + "\n" + "\n".join(d.triples) for d in pool]).encode()
        ).hexdigest()[:12]
        model_id = getattr(self.engine, "model_id", getattr(self.engine, "name", "engine"))
        self.id = (
            f"reference:{getattr(self.engine, 'name', 'engine')}:{model_id}:{dataset}:{digest}"
            f":k{num_demonstrations}:{encoder}:max{max_tokens}"
        )

    def messages(
        self, document: Document, demonstrations: Sequence[ExtractionDemonstration]
    ) -> list[dict[str, str]]:
        """What the engine's chat template receives for `document`."""
        return extraction_messages(document.title or "", document.text, demonstrations)

    def _render(self, title: str, text: str) -> str:
        return self.engine.apply_chat_template(
            extraction_messages(title, text, self._demonstrations)
        )

    def _prompts(self, batch: Sequence[Document]) -> list[str]:
        prompts = []
        chosen = self.selector.select_many([document_text(d) for d in batch])
        for document, demonstrations in zip(batch, chosen, strict=True):
            self._demonstrations = demonstrations
            prompts.append(self.build_prompt(document))
        return prompts
