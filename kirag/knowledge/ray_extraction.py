"""Triple extraction through Ray Data's vLLM processor (`kirag index triples --ray --engine
vllm --extractor llm`): kirag's extraction prompt (instruction + few-shot examples, the model's
chat template applied by the processor) as preprocess, its tolerant triple parser and sentence
linking as postprocess. An extractor like the others (`extract(documents)`): each call is one
dataset, so the extraction cache still resumes batch by batch (give a large --batch-size).
Generation on a GPU is unverified here; building the processor is tested on CPU."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kirag.knowledge.llm_extractor import (
    extraction_messages,
    load_extraction_prompt,
    system_message,
)
from kirag.knowledge.sentences import SentenceSplitter, link_sentence
from kirag.knowledge.triples import Triple, dedupe_triples, parse_triples
from kirag.scale.llm import VLLMStage, run_rows
from kirag.types import Document


class ExtractionPrompts:
    """Preprocess: a document row -> chat messages and greedy sampling of `max_tokens`."""

    def __init__(self, system: str, max_tokens: int):
        self.prompt = load_extraction_prompt()
        self.system = system
        self.max_tokens = max_tokens

    def __call__(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **row,
            "messages": extraction_messages(self.prompt, self.system, row["title"], row["text"]),
            "sampling_params": {"temperature": 0.0, "max_tokens": self.max_tokens},
        }


class ExtractionParse:
    """Postprocess: the generated text parsed into triples, each linked to its sentence."""

    def __init__(self, source: str):
        self.source = source
        self.splitter = SentenceSplitter("blank")

    def __call__(self, row: Mapping[str, Any]) -> dict[str, Any]:
        document = Document(row["id"], row["text"], row["title"] or None)
        sentences = self.splitter.split(document.text)
        triples = []
        for fact in parse_triples(row.get("generated_text", ""), loose=True):
            index = link_sentence(" ".join(fact), sentences)
            sentence = sentences[index] if index >= 0 else ""
            triples.append(Triple.in_document(fact, document, index, sentence, self.source))
        return {
            "_row": row["_row"],
            "id": row["id"],
            "triples": [t.to_dict() for t in dedupe_triples(triples)],
        }


class RayVLLMTripleExtractor:
    """kirag's LLM extraction prompt on a Ray cluster through vLLM (the TripleExtractor
    protocol)."""

    name = "llm"

    def __init__(self, stage: VLLMStage, max_tokens: int = 256, num_examples: int = 2):
        prompt = load_extraction_prompt()
        self.stage = VLLMStage(**{**stage.__dict__, "chat_template": True})
        self.id = (
            f"llm:ray-vllm:{stage.model}:{prompt['version']}:shots{num_examples}:max{max_tokens}"
        )
        system = system_message(prompt, prompt["examples"][:num_examples])
        self.processor = self.stage.processor(
            ExtractionPrompts(system, max_tokens), ExtractionParse(self.id)
        )

    def extract(self, documents: Sequence[Document]) -> list[list[Triple]]:
        rows = [{"id": d.id, "title": d.title or "", "text": d.text} for d in documents]
        out = run_rows(self.processor, rows)
        return [[Triple.from_dict(t) for t in row["triples"]] for row in out]
