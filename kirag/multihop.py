"""Multi-hop evaluation harness: KiRAG and the baselines on the same questions and corpus,
scored with the same metrics (supporting-passage Recall@k, answer EM/F1), with their cost
(questions per minute, LLM calls per question)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from kirag.errors import InputError
from kirag.types import Hit

BUNDLED_QUESTIONS = "multihop_enwiki.jsonl"


@dataclass(slots=True)
class MultiHopQuestion:
    id: str
    question: str
    answers: list[str]
    supporting_ids: list[str]


def load_fixture(path: str | Path | None = None) -> list[MultiHopQuestion]:
    """The bundled bridge questions over the Wikipedia sample, or a JSONL file of the same shape
    (`id`, `question`, `answers`, `supporting_ids`)."""
    if path is None:
        text = resources.files("kirag.data").joinpath(BUNDLED_QUESTIONS).read_text("utf-8")
        source = BUNDLED_QUESTIONS
    else:
        text, source = Path(path).read_text("utf-8"), str(path)
    questions = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            questions.append(
                MultiHopQuestion(
                    str(record["id"]),
                    record["question"],
                    list(record["answers"]),
                    list(record["supporting_ids"]),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"not a multi-hop question record ({exc!r})", source, lineno) from None
    return questions


@dataclass
class SystemOutput:
    """What a system produced for one question."""

    hits: list[Hit]
    answer: str = ""
    llm_calls: int = 0
    reused_seconds: float = 0.0  # work done earlier for another system and reused here


@dataclass
class SystemScores:
    name: str
    recall: dict[int, float]
    em: float | None
    f1: float | None
    questions_per_minute: float
    llm_calls_per_question: float
    per_question: list[dict] = field(default_factory=list)

    def row(self) -> dict:
        out = {"system": self.name}
        out.update({f"R@{k}": round(v, 4) for k, v in self.recall.items()})
        out["EM"] = None if self.em is None else round(self.em, 4)
        out["F1"] = None if self.f1 is None else round(self.f1, 4)
        out["questions/min"] = round(self.questions_per_minute, 1)
        out["LLM calls/question"] = round(self.llm_calls_per_question, 2)
        return out


def evaluate_system(
    name: str,
    run: Callable[[Sequence[MultiHopQuestion]], list[SystemOutput]],
    questions: Sequence[MultiHopQuestion],
    ks: Sequence[int] = (3, 5, 10),
    answers: bool = True,
) -> SystemScores:
    """Run `run` on all questions and score it."""
    from kirag.eval.qa import exact_match, f1_score, support_recall

    start = time.perf_counter()
    outputs = run(questions)
    elapsed = time.perf_counter() - start + sum(o.reused_seconds for o in outputs)
    per_question = []
    for question, output in zip(questions, outputs, strict=True):
        ranked = [h.doc_id for h in output.hits]
        record = {"id": question.id, "ranked": ranked[: max(ks)], "answer": output.answer}
        record.update({f"R@{k}": support_recall(ranked, question.supporting_ids, k) for k in ks})
        if answers:
            record["EM"] = exact_match(output.answer, question.answers)
            record["F1"] = f1_score(output.answer, question.answers)
        per_question.append(record)
    n = max(len(questions), 1)
    recall = {k: sum(r[f"R@{k}"] for r in per_question) / n for k in ks}
    em = sum(r["EM"] for r in per_question) / n if answers else None
    f1 = sum(r["F1"] for r in per_question) / n if answers else None
    calls = sum(o.llm_calls for o in outputs) / n
    return SystemScores(
        name, recall, em, f1, 60.0 * len(questions) / max(elapsed, 1e-9), calls, per_question
    )


def format_table(rows: Sequence[dict]) -> str:
    """A Markdown table of score rows (same keys in every row)."""
    if not rows:
        return ""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join("" if row[k] is None else str(row[k]) for k in keys) + " |")
    return "\n".join(lines)
