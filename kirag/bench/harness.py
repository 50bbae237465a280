"""What every benchmark shares: timing, rounding, child processes (each with its own peak
memory), ranking overlap, Markdown tables, and the multi-hop harness that scores KiRAG and its
baselines on the same questions with the same metrics (supporting-passage Recall@k, answer
EM/F1) and cost (questions per minute, LLM calls per question)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kirag.eval.datasets import MultiHopExample
from kirag.types import Hit


def timed(function, *args, **kwargs):
    """(value, seconds) of one call."""
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def rounded(values: dict, digits: int = 4) -> dict:
    return {k: round(v, digits) if isinstance(v, float) else v for k, v in values.items()}


def run_child(module: str, args: Sequence, what: str, env: dict | None = None) -> dict:
    """Run `python -m module args...` in a fresh process (its own peak RSS, no shared JVM or
    model; `env` added to this one's) and parse the JSON on the last line of its output; a
    failure raises with its stderr."""
    result = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "KIRAG_PROGRESS": "0", **(env or {})},
    )
    if result.returncode != 0:
        raise RuntimeError(f"{what} child failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def print_json(data: dict) -> None:
    """What a child process hands back: one JSON line on stdout."""
    print(json.dumps(data))


def top10_overlap(a: dict[str, list], b: dict[str, list], depth: int = 10) -> float:
    """Mean |top-depth(a) ∩ top-depth(b)| / depth over the queries of `a`."""
    values = []
    for qid, hits in a.items():
        left = {h.doc_id for h in hits[:depth]}
        right = {h.doc_id for h in b.get(qid, [])[:depth]}
        if left or right:
            values.append(len(left & right) / max(min(depth, max(len(left), len(right))), 1))
    return sum(values) / len(values) if values else 1.0


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
    run: Callable[[Sequence[MultiHopExample]], list[SystemOutput]],
    questions: Sequence[MultiHopExample],
    ks: Sequence[int] = (3, 5, 10),
    answers: bool = True,
) -> SystemScores:
    """Run `run` on all questions and score it."""
    from kirag.eval.qa_metrics import exact_match, f1_score, support_recall

    start = time.perf_counter()
    outputs = run(questions)
    elapsed = time.perf_counter() - start + sum(o.reused_seconds for o in outputs)
    per_question = []
    for question, output in zip(questions, outputs, strict=True):
        ranked = [h.doc_id for h in output.hits]
        record = {"id": question.id, "ranked": ranked[: max(ks)], "answer": output.answer}
        record.update({f"R@{k}": support_recall(ranked, question.gold_doc_ids, k) for k in ks})
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
