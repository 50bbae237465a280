"""Answering a set of questions with a KiRAG pipeline, as `kirag answer --questions` does: one
question at a time, or in reference mode chunks of REFERENCE_BATCH questions whose turns share
one engine call each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kirag.core.ranges import COUNT
from kirag.core.settings import check_settings, setting

REFERENCE_BATCH = 16  # reference mode: questions whose turns share one engine call


@dataclass(frozen=True)
class AnswerSettings:
    """What an answer returns with it: the documents ranked per question (the reader reads the
    first of them: ReaderSettings)."""

    k: int = setting(10, "documents ranked per question", range=COUNT)

    def __post_init__(self) -> None:
        check_settings(self)


ANSWER = AnswerSettings()


def answer_questions(kirag, questions: Sequence[str], k: int = ANSWER.k) -> list:
    """The Answer of each question, in order, with a progress bar (per question; per chunk in
    reference mode)."""
    from kirag.core.progress import progress

    if kirag.mode == "reference":  # each turn of a chunk of questions is one engine batch
        chunks = [
            questions[i : i + REFERENCE_BATCH] for i in range(0, len(questions), REFERENCE_BATCH)
        ]
        desc = f"answering ({REFERENCE_BATCH} at a time)"
        return [
            answer
            for chunk in progress(chunks, desc=desc, unit="batch")
            for answer in kirag.answer_many(list(chunk), k=k)
        ]
    return [kirag.answer(q, k=k) for q in progress(questions, desc="answering", unit="q")]
