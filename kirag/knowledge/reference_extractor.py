"""Triple extraction as KiRAG's reference does it (jyfang6/kirag, knowledge_graph/kg_generator.py):
the knowledge-graph-constructor instruction and 5 demonstrations chosen per document by embedding
similarity from a dataset's pool ("passage: Title: …\\nText: …", 256 tokens, as the reference's
untrained E5 ranks them), dropped until the prompt fits the reference's 4096-token context, in the
system message; "Title: …\\nText: …" as the user message; greedy decoding of 512 new tokens;
triples parsed with `<([^>]*)>` exactly as written (placeholders dropped, nothing normalised or
deduplicated), each linked to the sentence in which most of its whitespace tokens occur (the
document's own sentence list when it has one, else NLTK punkt's split of its text)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kirag.core.ranges import COUNT, COUNT_OR_ZERO
from kirag.core.settings import check_settings, other_default, same_as, setting
from kirag.knowledge.demonstrations import (
    NUM_DEMONSTRATIONS,
    SHIPPED,
    DemonstrationEncoder,
    ExtractionDemonstration,
    ExtractionDemonstrationSelector,
    extraction_messages,
    fit_extraction_demonstrations,
    load_pools,
)
from kirag.knowledge.llm_extractor import LLMExtractorSettings, LLMTripleExtractor
from kirag.knowledge.sentences import punkt_sentences, reference_sentence_link
from kirag.knowledge.triples import Triple, raw_triple, raw_triple_texts
from kirag.llm.base import LLMEngine, chat_generate
from kirag.types import Document


@dataclass(frozen=True)
class ReferenceExtractorSettings:
    """How the reference extracts triples (`--extractor reference`): the model, engine and batches
    are the LLM extractor's settings, the numbers the reference's. The extraction cache's id
    holds the engine, model, pool, demonstrations, their ranker, new tokens and context
    (ReferenceTripleExtractor.id)."""

    model: str = same_as(LLMExtractorSettings, "model")
    engine_name: str = same_as(LLMExtractorSettings, "engine_name")
    max_tokens: int = other_default(LLMExtractorSettings, "max_tokens", 512)
    batch_size: int = same_as(LLMExtractorSettings, "batch_size")
    num_demonstrations: int = setting(
        NUM_DEMONSTRATIONS,
        "demonstrations chosen per document by similarity from the pool",
        range=COUNT_OR_ZERO,
        cli=False,
    )
    encoder: str = setting(
        "minilm",
        "--extractor reference: the model ranking demonstrations with the reference's E5 "
        "settings ('passage: Title: …', 256 tokens; the reference: intfloat/e5-large-v2)",
        flag="--demonstration-encoder",
    )
    # kg_generator.py, KGGenerator max_length
    context: int = setting(
        4096,
        "tokens the prompt fits in: demonstrations are dropped until instruction, demonstrations "
        "and document fit",
        range=COUNT,
        cli=False,
    )

    def __post_init__(self) -> None:
        check_settings(self)


REFERENCE_EXTRACTION = ReferenceExtractorSettings()


def document_text(document: Document) -> str:
    """A document as the reference shows it to the demonstration selector and the model."""
    return f"Title: {document.title or ''}\nText: {document.text}"


def reference_sentences(document: Document) -> list[str]:
    """The sentences the reference links triples to: the document's own list (HotpotQA-style
    `sentences` metadata, as given) or NLTK punkt's split of its text."""
    sentences = document.metadata.get("sentences") if document.metadata else None
    if isinstance(sentences, list):
        return list(sentences)
    return punkt_sentences(document.text)


def reference_triples(document: Document, output: str, source: str) -> list[Triple]:
    """The reference's triples of one generation: every parsed `<…>` kept as written, in
    order, each linked to its sentence."""
    sentences = reference_sentences(document)
    triples = []
    for text in raw_triple_texts(output):
        index = reference_sentence_link(text, sentences)
        sentence = sentences[index] if index >= 0 else ""
        triples.append(raw_triple(text, document, index, sentence, source))
    return triples


def reference_token_count(engine: LLMEngine, text: str) -> int:
    """Tokens as the reference counts a prompt (`tokenizer.encode`, special tokens included)
    when the engine holds a Hugging Face tokenizer; the engine's own count otherwise."""
    tokenizer = getattr(engine, "tokenizer", None)
    if tokenizer is not None and hasattr(tokenizer, "encode"):
        return len(tokenizer.encode(text))
    return engine.count_tokens(text)


class ReferenceTripleExtractor(LLMTripleExtractor):
    """The reference's few-shot extractor over adaptive demonstrations (`--extractor reference`),
    as its settings (ReferenceExtractorSettings) say."""

    name = "reference"
    loose_parsing = False  # the reference's parser: `<([^>]*)>` only

    def __init__(
        self,
        engine: LLMEngine | None = None,
        *,
        settings: ReferenceExtractorSettings | None = None,
        demonstrations: str | None = None,
        dataset: str = SHIPPED,
        encoder: Any = None,
        engine_options: Mapping | None = None,
        **options: Any,
    ):
        """`settings` (the reference's by default), with `options`: any of its fields by name,
        over it. `demonstrations`: a pool file (default: the shipped pool), `dataset` its
        section. `encoder` ranks the demonstrations with the reference's E5 settings: a model
        name or path (the `encoder` setting) or a loaded sentence-transformers model or ranker
        object (the settings then name it as the id does)."""
        if isinstance(encoder, str | Path):
            options["encoder"], encoder = str(encoder), None
        settings = replace(settings or REFERENCE_EXTRACTION, **options)  # checked: frozen
        super().__init__(
            engine,
            settings.model,
            settings.engine_name,
            settings.max_tokens,
            0,
            settings.batch_size,
            engine_options=engine_options,
        )
        pool = load_pools(demonstrations).documents(dataset)
        if encoder is None:
            encoder = settings.encoder
        ranker = encoder if hasattr(encoder, "encode_passages") else DemonstrationEncoder(encoder)
        self.settings = settings = replace(
            settings, encoder=getattr(ranker, "model_name", type(ranker).__name__)
        )
        self.selector = ExtractionDemonstrationSelector(pool, ranker, settings.num_demonstrations)
        self._demonstrations: list[ExtractionDemonstration] = []
        digest = hashlib.sha256(
            json.dumps([d.document() + "\n" + "\n".join(d.triples) for d in pool]).encode()
        ).hexdigest()[:12]
        model_id = getattr(self.engine, "model_id", getattr(self.engine, "name", "engine"))
        self.id = (
            f"reference:{getattr(self.engine, 'name', 'engine')}:{model_id}:{dataset}:{digest}"
            f":k{settings.num_demonstrations}:{settings.encoder}:max{settings.max_tokens}"
            f":ctx{settings.context}:raw"
        )

    def messages(
        self, document: Document, demonstrations: Sequence[ExtractionDemonstration]
    ) -> list[dict[str, str]]:
        """What the engine's chat template receives for `document`."""
        return extraction_messages(document.title or "", document.text, demonstrations)

    def demonstrations_for(self, documents: Sequence[Document]) -> list[list]:
        """Per document: the chosen demonstrations, after the reference's fit to its context."""
        chosen = self.selector.select_many([document_text(d) for d in documents])
        return [
            fit_extraction_demonstrations(
                demos,
                d.title or "",
                d.text,
                lambda text: reference_token_count(self.engine, text),
                self.settings.context,
            )
            for d, demos in zip(documents, chosen, strict=True)
        ]

    def _messages(self, title: str, text: str) -> list[dict]:
        return extraction_messages(title, text, self._demonstrations)

    def _conversations(self, batch: Sequence[Document]) -> list[list[dict]]:
        conversations = []
        for document, demonstrations in zip(batch, self.demonstrations_for(batch), strict=True):
            self._demonstrations = demonstrations
            conversations.append(self.build_messages(document))
        return conversations

    def extract(self, documents: Sequence[Document]) -> list[list[Triple]]:
        results: list[list[Triple]] = []
        for start in range(0, len(documents), self.batch_size):
            batch = documents[start : start + self.batch_size]
            outputs = chat_generate(self.engine, self._conversations(batch), self.max_tokens)
            results += [
                reference_triples(d, o, self.id) for d, o in zip(batch, outputs, strict=True)
            ]
        return results
