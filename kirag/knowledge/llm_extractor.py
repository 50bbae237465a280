"""Triple extraction with an instruct LLM (the KiRAG reference): prompted as a knowledge-graph
constructor with few-shot examples, greedy, output parsed with the tolerant triple parser and
each triple linked to the sentence it shares most words with."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources

from kirag.core.ranges import COUNT, COUNT_OR_ZERO
from kirag.core.settings import check_settings, same_as, setting
from kirag.knowledge.sentences import SentenceSplitter, link_sentence
from kirag.knowledge.triples import Triple, dedupe_triples, parse_triples
from kirag.llm.base import LLMEngine, chat_generate, room_for_text
from kirag.llm.settings import EngineSettings
from kirag.models import DEFAULT_LLM
from kirag.types import Document

PROMPT_FILE = "triple_extraction.json"


@dataclass(frozen=True)
class LLMExtractorSettings:
    """How an LLM extracts triples (`--extractor llm`; the reference extractor's settings share
    the model, engine and batches). The extraction cache's id holds the engine, model, prompt
    version, examples and new tokens (LLMTripleExtractor.id)."""

    model: str = setting(
        DEFAULT_LLM,
        "LLM for --extractor llm|reference (short name, .gguf or HF folder, hub id)",
    )
    engine_name: str = same_as(EngineSettings, "engine")
    max_tokens: int = setting(256, "new tokens of a document's triples", range=COUNT, cli=False)
    num_examples: int = setting(
        2, "few-shot examples in the prompt", range=COUNT_OR_ZERO, cli=False
    )
    # a document's triples move with its batch-mates on llama.cpp (float rounding)
    batch_size: int = setting(
        8, "documents per engine call", range=COUNT, affects="rounding", cli=False
    )
    sentence_pipeline: str = setting(
        "blank", "spaCy pipeline of the sentences triples are linked to", cli=False
    )

    def __post_init__(self) -> None:
        check_settings(self)


LLM_EXTRACTION = LLMExtractorSettings()


def load_extraction_prompt() -> dict:
    return json.loads(
        resources.files("kirag.knowledge").joinpath("prompts", PROMPT_FILE).read_text("utf-8")
    )


def system_message(prompt: dict, examples: list[dict]) -> str:
    """The system message: the instruction, then the few-shot examples."""
    shots = [
        prompt["input_template"].format(title=ex["title"], text=ex["text"])
        + f"\nKnowledge Triples: {ex['triples']}"
        for ex in examples
    ]
    return "\n\n".join([prompt["instruction"], *shots])


def extraction_messages(prompt: dict, system: str, title: str, text: str) -> list[dict]:
    """The chat messages that ask for one document's triples."""
    user = prompt["input_template"].format(title=title, text=text)
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": user + "\nKnowledge Triples:"},
    ]


class LLMTripleExtractor:
    """Few-shot `<head; relation; tail>` extraction through any LLMEngine."""

    name = "llm"
    loose_parsing = True  # "head; relation; tail" lines without brackets count too

    def __init__(
        self,
        engine: LLMEngine | None = None,
        model: str = LLM_EXTRACTION.model,
        engine_name: str = LLM_EXTRACTION.engine_name,
        max_tokens: int = LLM_EXTRACTION.max_tokens,
        num_examples: int = LLM_EXTRACTION.num_examples,
        batch_size: int = LLM_EXTRACTION.batch_size,
        sentence_pipeline: str = LLM_EXTRACTION.sentence_pipeline,
        engine_options: Mapping | None = None,
    ):
        self.settings = LLMExtractorSettings(
            model, engine_name, max_tokens, num_examples, batch_size, sentence_pipeline
        )  # checked before an engine loads
        if engine is None:
            from kirag.llm.factory import load_engine

            engine = load_engine(model, engine=engine_name, **dict(engine_options or {}))
        self.engine = engine
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.prompt = load_extraction_prompt()
        self.examples = self.prompt["examples"][:num_examples]
        self.splitter = SentenceSplitter(sentence_pipeline)
        self.truncated_documents = 0
        model_id = getattr(engine, "model_id", getattr(engine, "name", "engine"))
        self.id = (
            f"llm:{getattr(engine, 'name', 'engine')}:{model_id}:{self.prompt['version']}"
            f":shots{len(self.examples)}:max{max_tokens}"
        )

    @cached_property
    def system_message(self) -> str:
        return system_message(self.prompt, self.examples)

    def build_prompt(self, document: Document) -> str:
        """The chat prompt for one document (its messages through the chat template)."""
        return self.engine.apply_chat_template(self.build_messages(document))

    def build_messages(self, document: Document) -> list[dict]:
        """The chat messages for one document; a text too long for the context with the
        few-shot examples and the generation budget is cut to fit (counted in
        `truncated_documents`)."""
        text = document.text
        room = self._text_room(document.title or "")
        if self.engine.count_tokens(text) > room:
            text = self.engine.truncate(text, room)
            self.truncated_documents += 1
        return self._messages(document.title or "", text)

    def _text_room(self, title: str) -> int:
        used = self.engine.count_tokens(self._render(title, "")) + self.max_tokens
        return room_for_text(
            self.engine, used, f"the extraction prompt with {self.max_tokens} new tokens"
        )

    def _render(self, title: str, text: str) -> str:
        return self.engine.apply_chat_template(self._messages(title, text))

    def _messages(self, title: str, text: str) -> list[dict]:
        return extraction_messages(self.prompt, self.system_message, title, text)

    def extract(self, documents: Sequence[Document]) -> list[list[Triple]]:
        results: list[list[Triple]] = []
        for start in range(0, len(documents), self.batch_size):
            batch = documents[start : start + self.batch_size]
            outputs = chat_generate(self.engine, self._conversations(batch), self.max_tokens)
            sentences = self.splitter.split_many([d.text for d in batch])
            for document, output, doc_sentences in zip(batch, outputs, sentences, strict=True):
                results.append(self._to_triples(document, output, doc_sentences))
        return results

    def _prompts(self, batch: Sequence[Document]) -> list[str]:
        return [self.engine.apply_chat_template(m) for m in self._conversations(batch)]

    def _conversations(self, batch: Sequence[Document]) -> list[list[dict]]:
        return [self.build_messages(d) for d in batch]

    def _to_triples(self, document: Document, output: str, sentences: list[str]) -> list[Triple]:
        triples = []
        for fact in parse_triples(output, loose=self.loose_parsing):
            index = link_sentence(" ".join(fact), sentences)
            sentence = sentences[index] if index >= 0 else ""
            triples.append(Triple.in_document(fact, document, index, sentence, self.id))
        return dedupe_triples(triples)
