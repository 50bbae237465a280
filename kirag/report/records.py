"""The report payloads, built from kirag's own outputs: KiRAG answers (`kirag answer --answers`
JSONL, or Answer objects), Rank1 explanations (`kirag rerank --explanations` JSONL) and runs with
judgments (the `kirag eval` metrics and paired significance). Pure data: page.py draws them."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from kirag.core.answers import exact_match, f1
from kirag.knowledge.sentences import link_sentence
from kirag.rag.records import chain_steps
from kirag.rerank.records import Rank1Judgement
from kirag.types import FIRST_STAGE_RANK, FIRST_STAGE_SCORE, Document

# a light sentence split for highlighting when the triple's own sentence is not recorded
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
Documents = Callable[[Sequence[str]], Mapping[str, Document]]


def no_documents(ids: Sequence[str]) -> dict[str, Document]:
    return {}


def store_documents(store) -> Documents:
    """Passages looked up by id in a DocStore (an index's docs.sqlite)."""

    def lookup(ids: Sequence[str]) -> dict[str, Document]:
        found = store.get_many(list(ids))
        return {i: d for i, d in zip(ids, found, strict=True) if d is not None}

    return lookup


def generated() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


def sentence_span(text: str, sentence: str, triple: str) -> list[int] | None:
    """Character span of the triple's sentence in `text`: the recorded sentence where it is
    found, else the sentence sharing most words with the triple."""
    if not text:
        return None
    if sentence:
        at = text.find(sentence)
        if at >= 0:
            return [at, at + len(sentence)]
    starts = [0] + [m.end() for m in _SENTENCE_END.finditer(text)]
    ends = [*starts[1:], len(text)]
    pieces = [text[s:e] for s, e in zip(starts, ends, strict=True)]
    best = link_sentence(triple, pieces)
    return [starts[best], starts[best] + len(pieces[best].rstrip())] if best >= 0 else None


def _steps(chain: dict, documents: Mapping[str, Document]) -> list[dict]:
    steps = []
    for step in chain_steps(chain):
        head, relation, tail = step.parts()
        doc = documents.get(step.doc_id)
        passage = doc.text if doc else ""
        steps.append(
            {
                "head": head,
                "relation": relation,
                "tail": tail,
                "score": step.score,
                "doc_id": step.doc_id,
                "passage": passage,
                "span": sentence_span(passage, step.sentence, f"{head} {relation} {tail}"),
            }
        )
    return steps


def kirag_item(record: dict, documents: Documents = no_documents, example=None) -> dict:
    """One question of a KiRAG report from its answers-JSONL record (`Answer.to_dict()` with
    an id), with gold answers and gold documents from `example` when known."""
    chains = record.get("chains", [])
    ranked = record.get("documents", [])
    wanted = {d["id"] for d in ranked} | {i for c in chains for i in c.get("documents", [])}
    docs = documents(sorted(wanted)) if wanted else {}
    why: dict[str, dict[str, float]] = {}
    for chain in chains:
        for step in chain_steps(chain):
            best = why.setdefault(step.doc_id, {})
            best[step.triple] = max(step.score, best.get(step.triple, float("-inf")))
    gold = set(example.gold_doc_ids) if example is not None and example.gold_doc_ids else None
    item = {
        "id": str(record.get("id", "")),
        "question": record.get("question", ""),
        "answer": record.get("answer", ""),
        "answered_by": record.get("answered_by", ""),
        "chains": [
            {
                "score": c.get("score"),
                "finished": c.get("finished", False),
                "answer": c.get("answer"),
                "steps": _steps(c, docs),
                "texts": c.get("steps", []),
            }
            for c in chains
        ],
        "documents": [
            {
                "rank": rank,
                "id": d["id"],
                "score": d.get("score"),
                "title": docs[d["id"]].title if d["id"] in docs else None,
                "gold": bool(gold and d["id"] in gold),
                "why": [
                    {"triple": t, "score": s}
                    for t, s in sorted(why.get(d["id"], {}).items(), key=lambda x: -x[1])
                ],
            }
            for rank, d in enumerate(ranked, 1)
        ],
        "gold_answers": list(example.answers) if example is not None and example.answers else None,
        "correct": None,
        "support_found": None,
    }
    if item["gold_answers"]:
        item["correct"] = {
            "em": exact_match(item["answer"], item["gold_answers"]),
            "f1": f1(item["answer"], item["gold_answers"]),
        }
    if gold:
        item["support_found"] = gold <= {d["id"] for d in ranked}
    return item


def answer_record(answer, id: str = "") -> dict:
    """An Answer object as its answers-JSONL record, plus each triple's own sentence (which the
    JSONL does not keep) so the report highlights exactly it."""
    record = {"id": id, **answer.to_dict()}
    for chain, out in zip(answer.result.chains, record["chains"], strict=True):
        out["sentences"] = [s.sentence for s in chain_steps(chain)]
    return record


def kirag_payload(items: list[dict], title: str = "KiRAG answers") -> dict:
    graded = [i for i in items if i["correct"] is not None]
    supported = [i for i in items if i["support_found"] is not None]
    summary = {"questions": len(items), "answered": sum(bool(i["answer"]) for i in items)}
    if graded:
        summary["correct (EM)"] = sum(int(i["correct"]["em"]) for i in graded)
        summary["wrong"] = len(graded) - summary["correct (EM)"]
    if supported:
        summary["support missed"] = sum(not i["support_found"] for i in supported)
    return {"kind": "kirag", "title": title, "generated": generated(), "summary": summary,
            "items": items}  # fmt: skip


def rank1_payload(
    rows: Iterable[dict],
    queries: Mapping[str, str] | None = None,
    qrels: Mapping[str, Mapping[str, int]] | None = None,
    documents: Documents = no_documents,
    title: str = "Rank1 reranking",
) -> dict:
    """Per query: the reranked list (rank, P(true), reasoning, fallback, move from the first
    stage) and the first-stage order it came from, from `kirag rerank --explanations` rows."""
    by_query: dict[str, list[dict]] = {}
    for row in rows:
        by_query.setdefault(str(row["qid"]), []).append(row)
    items = []
    for qid, hits in by_query.items():
        hits.sort(key=lambda r: r["rank"])
        docs = documents([str(h["docid"]) for h in hits])
        judged = (qrels or {}).get(qid)
        out = []
        for h in hits:
            first = h.get(FIRST_STAGE_RANK)
            doc = docs.get(str(h["docid"]))
            judgement = Rank1Judgement.from_metadata(h)  # None: another reranker's row
            out.append(
                {
                    "docid": str(h["docid"]),
                    "rank": h["rank"],
                    "score": h.get("score"),
                    "p_true": judgement.p_true if judgement else h.get("score"),
                    "first_stage_rank": first,
                    "first_stage_score": h.get(FIRST_STAGE_SCORE),
                    "move": None if first is None else first - h["rank"],
                    "fallback": judgement.fallback if judgement else None,
                    "truncated": bool(judgement and judgement.truncated),
                    "reasoning": judgement.reasoning if judgement else None,
                    "title": doc.title if doc else None,
                    "relevance": None if judged is None else judged.get(str(h["docid"]), 0),
                }
            )
        items.append(
            {
                "qid": qid,
                "query": (queries or {}).get(qid, ""),
                "docs": out,
                "fallbacks": sum(1 for d in out if d["fallback"] not in (None, "none")),
            }
        )
    summary = {
        "queries": len(items),
        "pairs": sum(len(i["docs"]) for i in items),
        "fallbacks": sum(i["fallbacks"] for i in items),
        "truncated passages": sum(d["truncated"] for i in items for d in i["docs"]),
    }
    return {"kind": "rank1", "title": title, "generated": generated(), "summary": summary,
            "items": items}  # fmt: skip


CURVE_DEPTHS = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)


def eval_payload(
    results: Mapping,
    curves: Mapping[str, Mapping] | None = None,
    queries: Mapping[str, str] | None = None,
    trials: int = 10_000,
    title: str = "Evaluation",
) -> dict:
    """Runs compared: aggregates, the paired tests of each run against the first (kirag.eval's
    comparisons), per-query values with the difference to the baseline, and curves."""
    from kirag.eval.report import comparisons

    runs = list(results)
    metrics = list(results[runs[0]].aggregate)
    qids = sorted({q for r in results.values() for q in r.per_query})
    rows = []
    for qid in qids:
        values = {run: results[run].per_query.get(qid, {}) for run in runs}
        diff = {}
        if len(runs) > 1:
            for m in metrics:
                a, b = values[runs[0]].get(m), values[runs[1]].get(m)
                diff[m] = None if a is None or b is None else b - a
        rows.append({"qid": qid, "query": (queries or {}).get(qid, ""), "values": values,
                     "diff": diff})  # fmt: skip
    return {
        "kind": "eval",
        "title": title,
        "generated": generated(),
        "summary": {"runs": len(runs), "queries": len(qids), "metrics": len(metrics)},
        "runs": runs,
        "metrics": metrics,
        "aggregate": {run: results[run].aggregate for run in runs},
        "queries": {run: results[run].queries for run in runs},
        "comparisons": comparisons(results, trials=trials) if len(runs) > 1 else [],
        "trials": trials,
        "curves": dict(curves) if curves else None,
        "per_query": rows,
    }


def curves_of(runs: Mapping[str, Mapping], qrels, rel_level: int | None = None) -> dict:
    """recall@k and nDCG@k of each run at the depths up to the deepest run's."""
    from kirag.eval.metrics import evaluate

    deepest = max((len(h) for run in runs.values() for h in run.values()), default=1)
    ks = [k for k in CURVE_DEPTHS if k <= deepest] or [1]
    out = {"recall@k": {"ks": ks, "values": {}}, "nDCG@k": {"ks": ks, "values": {}}}
    for name, run in runs.items():
        metrics = [f"R@{k}" for k in ks] + [f"nDCG@{k}" for k in ks]
        aggregate = evaluate(run, qrels, metrics, rel_level=rel_level).aggregate
        out["recall@k"]["values"][name] = [aggregate[f"R@{k}"] for k in ks]
        out["nDCG@k"]["values"][name] = [aggregate[f"nDCG@{k}"] for k in ks]
    return out
