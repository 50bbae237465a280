"""`kirag report INPUT...`: which kind of report an input file makes, and the payload of it.

- answers JSONL of `kirag answer --answers` (records with "chains") -> KiRAG report;
- explanations JSONL of `kirag rerank --explanations` (records with "qid", "docid") -> Rank1;
- per-query JSON of `kirag eval --per-query` ({run: {qid: {metric: value}}}) -> evaluation;
- run files (TREC, MS MARCO TSV, JSONL) with --qrels -> evaluation with recall/nDCG curves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kirag.errors import InputError, KiragError
from kirag.io.lines import head_bytes, parse_json_object, read_numbered_records
from kirag.rerank.records import EXPLANATION_KEYS

Kind = Literal["kirag", "rank1", "per-query", "runs"]


@dataclass(frozen=True)
class ReportOptions:
    """What the inputs alone do not hold: judgments, query texts, passages, gold answers."""

    qrels: str | None = None
    topics: str | None = None
    index: str | None = None
    questions: str | None = None
    metrics: tuple[str, ...] = ("nDCG@10", "MRR@10", "R@100")
    rel_level: int | None = None
    trials: int = 10_000
    title: str | None = None


def detect_kind(path: str | Path) -> Kind:
    """The kind of one input file, from its first record."""
    head = head_bytes(path, 1 << 16).decode("utf-8", errors="replace").lstrip("\ufeff")
    first = head.lstrip().split("\n", 1)[0].strip()
    if head.lstrip().startswith("{"):
        try:
            record = json.loads(first)
        except json.JSONDecodeError:
            record = None  # a pretty-printed JSON document
        if isinstance(record, dict) and "chains" in record:
            return "kirag"
        if isinstance(record, dict) and {"qid", "docid"} <= set(record) and "rank" in record:
            if set(EXPLANATION_KEYS) & set(record):  # a reranker's explanations
                return "rank1"
            return "runs"  # a JSONL run
        return "per-query"  # one JSON document, maybe pretty-printed
    return "runs"


def _jsonl(path: str) -> list[dict]:
    return [record for _, record in read_numbered_records(path, parse_json_object)]


def _documents(options: ReportOptions):
    from kirag.report.records import no_documents, store_documents

    if not options.index:
        return no_documents, None
    from kirag.io.docstore import DocStore

    file = Path(options.index) / DocStore.FILENAME
    if not file.is_file():
        raise KiragError(
            f"index={options.index}: no {DocStore.FILENAME} there (an index folder)",
            parameters=("index",),
        )
    store = DocStore(file)
    return store_documents(store), store


def _queries(options: ReportOptions) -> dict[str, str]:
    if not options.topics:
        return {}
    from kirag.io.topics import read_topics

    return {qid: q.text for qid, q in read_topics(options.topics).items()}


def build_payload(inputs: list[str], options: ReportOptions) -> dict:
    """The report payload of the inputs (all of one kind)."""
    if not inputs:
        raise KiragError("give an input file")
    kinds = {path: detect_kind(path) for path in inputs}
    kind = kinds[inputs[0]]
    if len(set(kinds.values())) > 1:
        listing = ", ".join(f"{p} ({k})" for p, k in kinds.items())
        raise KiragError(f"the inputs are of different kinds: {listing}; make one report per kind")
    from kirag.report import records

    if kind == "kirag":
        documents, store = _documents(options)
        examples = {}
        if options.questions:
            from kirag.eval.datasets import load_questions

            examples = {e.id: e for e in load_questions(options.questions)}
        try:
            items = [
                records.kirag_item(r, documents, examples.get(str(r.get("id"))))
                for path in inputs
                for r in _jsonl(path)
            ]
        finally:
            if store is not None:
                store.close()
        return records.kirag_payload(items, options.title or "KiRAG answers")
    if kind == "rank1":
        qrels = None
        if options.qrels:
            from kirag.io.qrels import read_qrels

            qrels = read_qrels(options.qrels)
        documents, store = _documents(options)
        try:
            rows = [r for path in inputs for r in _jsonl(path)]
            for number, row in enumerate(rows, 1):
                if "rank" not in row:
                    raise InputError(
                        "an explanation record needs qid, docid, rank", inputs[0], number
                    )
            return records.rank1_payload(
                rows, _queries(options), qrels, documents, options.title or "Rank1 reranking"
            )
        finally:
            if store is not None:
                store.close()
    return _eval_payload(inputs, kind, options)


def _eval_payload(inputs: list[str], kind: Kind, options: ReportOptions) -> dict:
    from kirag.eval.metrics import EvalResult, evaluate
    from kirag.report import records

    title = options.title or "Evaluation"
    if kind == "per-query":
        results = {}
        for path in inputs:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
                raise InputError(
                    "expected `kirag eval --per-query` JSON: {run: {qid: {metric: value}}}", path
                )
            for name, per_query in data.items():
                metrics = list(dict.fromkeys(m for row in per_query.values() for m in row))
                aggregate = {
                    m: sum(r[m] for r in per_query.values() if m in r)
                    / max(1, sum(m in r for r in per_query.values()))
                    for m in metrics
                }
                results[name if name not in results else f"{name}#{len(results)}"] = EvalResult(
                    aggregate, per_query, len(per_query)
                )
        return records.eval_payload(results, None, _queries(options), options.trials, title)
    if not options.qrels:
        raise KiragError(
            "run files make an evaluation report: give qrels (the judgments)",
            parameters=("qrels",),
        )
    from kirag.eval.runs import read_run
    from kirag.io.qrels import read_qrels

    qrels = read_qrels(options.qrels)
    runs = {}
    for path in inputs:
        name = Path(path).name
        runs[name if name not in runs else f"{name}#{len(runs)}"] = read_run(path)
    results = {
        name: evaluate(run, qrels, list(options.metrics), rel_level=options.rel_level)
        for name, run in runs.items()
    }
    curves = records.curves_of(runs, qrels, options.rel_level)
    return records.eval_payload(results, curves, _queries(options), options.trials, title)
