"""The reader: an LLM answers a question from the top-k documents (the KiRAG reference prompt),
through the engine seam. Offline, where the tiny LLM is a poor reader, the chain's last tail
entity can stand in as the answer (see KiRAG's answer modes)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from kirag.core.ranges import COUNT
from kirag.core.settings import check_settings, setting
from kirag.llm.base import LLMEngine, chat_generate
from kirag.types import Document


@dataclass(frozen=True)
class ReaderSettings:
    """What the reader reads and writes: the top documents it answers from, and the new tokens
    of its answer (both the reference's: 3 documents, 32 tokens)."""

    k: int = setting(
        3,
        "documents the reader reads (the reference's 3)",
        range=COUNT,
        flag="--reader-k",
        option="reader_k",
    )
    max_tokens: int = setting(
        32,
        "new tokens of the reader's answer (the reference's 32)",
        range=COUNT,
        flag="--reader-max-tokens",
    )

    def __post_init__(self) -> None:
        check_settings(self)


READER = ReaderSettings()


@cache
def load_reader_prompt() -> dict:
    return json.loads(
        resources.files("kirag.rag").joinpath("prompts", "reader.json").read_text("utf-8")
    )


def build_reader_messages(
    question: str, documents: Sequence[Document], chain_text: str | None = None
) -> list[dict[str, str]]:
    prompt = load_reader_prompt()
    context = "\n\n".join(
        prompt["context_template"].format(title=d.title or "", text=d.text) for d in documents
    )
    if chain_text:
        context += f"\n\nKnowledge triples: {chain_text}"
    return [
        {"role": "system", "content": prompt["instruction"]},
        {
            "role": "user",
            "content": prompt["input_template"].format(context=context, question=question),
        },
    ]


def clean_answer(text: str) -> str:
    """The first line of a generation, without an "Answer:" prefix or trailing period."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    line = lines[0] if lines else ""
    for prefix in ("answer:", "the answer is", "so the answer is"):
        if line.lower().startswith(prefix):
            line = line[len(prefix) :].strip(" :")
    return line.rstrip(".").strip()


class Reader:
    """Answers questions from documents with an LLM engine (batched): kirag's own prompt, with
    the reasoning chain in the context when one is given."""

    stop: tuple[str, ...] | None = ("\n\n",)

    def __init__(self, engine: LLMEngine, max_tokens: int = READER.max_tokens):
        self.engine = engine
        self.max_tokens = ReaderSettings(max_tokens=max_tokens).max_tokens  # checked
        self.calls = 0

    def messages(
        self, question: str, documents: Sequence[Document], chain: str | None
    ) -> list[dict[str, str]]:
        return build_reader_messages(question, documents, chain)

    def parse(self, text: str) -> str:
        return clean_answer(text)

    def answer(
        self,
        questions: Sequence[str],
        contexts: Sequence[Sequence[Document]],
        chains: Sequence[str | None] | None = None,
    ) -> list[str]:
        chains = chains or [None] * len(questions)
        conversations = [
            self.messages(q, docs, chain)
            for q, docs, chain in zip(questions, contexts, chains, strict=True)
        ]
        self.calls += len(conversations)
        stop = list(self.stop) if self.stop else None
        outputs = chat_generate(self.engine, conversations, self.max_tokens, stop)
        return [self.parse(o) for o in outputs]


REFERENCE_INSTRUCTION = (
    "Given some context and a question, please only output the answer to the question."
)
REFERENCE_NO_CONTEXT = "Given a question, please only output the answer to the question."


def reference_context_text(document: Document) -> str:
    """A document's text as the reference reader joins it: a paragraph given as sentences
    (`sentences` metadata, HotpotQA-style) is its raw sentences joined with " " (spacing inside
    them kept); otherwise the text."""
    sentences = document.metadata.get("sentences") if document.metadata else None
    if isinstance(sentences, list) and all(isinstance(s, str) for s in sentences):
        return " ".join(sentences)
    return document.text


def build_reference_reader_messages(
    question: str, documents: Sequence[Document], with_context: bool = True
) -> list[dict[str, str]]:
    """The reference reader's messages (jyfang6/kirag evaluation/qa_eval.py and its
    AnswerGenerator): numbered "title: T, text: X" contexts, no chain, "The answer is:" last.
    With `with_context` (the reference's k > 0) the context block is written even when no
    document came back."""
    contexts = [
        f"title: {d.title}, text: {reference_context_text(d)}"
        if d.title is not None
        else reference_context_text(d)
        for d in documents
    ]
    user = ""
    if with_context:
        numbered = "\n\n".join(f"{i}. {c}" for i, c in enumerate(contexts, 1))
        user += f"context:\n\n{numbered}\n\n"
    user += f"question: {question}\nThe answer is:"
    return [
        {
            "role": "system",
            "content": REFERENCE_INSTRUCTION if with_context else REFERENCE_NO_CONTEXT,
        },
        {"role": "user", "content": user},
    ]


def parse_reference_answer(text: str) -> str:
    """The reference's answer parsing: the first non-empty line, after "answer is" if present."""
    answer = next((line.strip() for line in (text or "").split("\n") if line.strip()), "")
    if "answer is" in answer:
        answer = answer[answer.find("answer is") + len("answer is") :].strip()
        if answer.startswith(":"):
            answer = answer[1:].strip()
    return answer


class ReferenceReader(Reader):
    """The reference reader: its prompt, 32 new tokens, no stop string, its answer parsing; it
    never sees the chain (accepted for the Reader interface, unused)."""

    stop = None

    def messages(
        self, question: str, documents: Sequence[Document], chain: str | None
    ) -> list[dict[str, str]]:
        return build_reference_reader_messages(question, documents)

    def parse(self, text: str) -> str:
        return parse_reference_answer(text)
