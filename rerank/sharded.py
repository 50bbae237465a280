"""Reranking a run in shards of queries, through an executor (kirag.scale): each shard's
reranked hits are written under a fixed name (temp + rename) in a work folder, a rerun skips
finished shards, and the shards are merged back in the run's query order — the same code for
the serial and the Ray executor. A query's scores depend only on that query's pairs (Rank1
batches are cut per query), so sharding by query changes no score."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from kirag.rerank.base import Reranker, with_documents

from kirag.core.atomic import atomic_write
from kirag.core.settings import fingerprint
from kirag.errors import InputError
from kirag.io.docstore import DocStore
from kirag.scale import Executor, Shard, cut_into_shards
from kirag.types import Hit, Query

# queries per shard: the resume unit of a sharded rerank
DEFAULT_QUERIES_PER_SHARD = 8

Group = tuple[str, Query, list[Hit]]  # (qid, query, first-stage hits with their documents)


class RerankTask:
    """Reranks one shard of query groups into `work_dir/shard_NNNNN.jsonl`: a header line with
    the digest of the shard's input, then one line per query with its reranked hits (documents
    left out: the merge takes them from the corpus again)."""

    def __init__(
        self,
        factory: Callable[[], Reranker],
        work_dir: Path,
        reranker: Reranker | None = None,
    ):
        self.factory = factory
        self.work_dir = Path(work_dir)
        self.reranker = reranker

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "reranker": None}

    def setup(self) -> None:
        if self.reranker is None:
            self.reranker = self.factory()

    def path(self, shard: Shard) -> Path:
        return self.work_dir / f"{shard.name}.jsonl"

    def done(self, shard: Shard, rows: Sequence[Group]) -> bool:
        try:
            with open(self.path(shard), encoding="utf-8") as fh:
                header = json.loads(fh.readline())
        except (OSError, ValueError):
            return False
        return header.get("input") == group_digest(rows)

    def run(self, shard: Shard, rows: Sequence[Group]) -> int:
        check = getattr(self.reranker, "check_queries", None)
        if check is not None:  # Rank1: a query too long for the context fails before scoring
            check({qid: query for qid, query, _ in rows})
        with atomic_write(self.path(shard)) as fh:
            fh.write(json.dumps({"shard": shard.index, "input": group_digest(rows)}) + "\n")
            for qid, query, hits in rows:
                reranked = self.reranker.rerank(query, hits)
                record = {"qid": qid, "hits": [_hit_record(h) for h in reranked]}
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        return sum(len(hits) for _, _, hits in rows)


def group_digest(rows: Sequence[Group]) -> str:
    """A digest of a shard's input: queries, candidate ids, first-stage scores and passages."""
    digest = hashlib.sha256()
    for qid, query, hits in rows:
        digest.update(json.dumps([qid, query.text, query.instruction]).encode())
        for hit in hits:
            text = hit.document.contents if hit.document is not None else ""
            digest.update(json.dumps([hit.doc_id, hit.rank, hit.score, text]).encode())
    return digest.hexdigest()[:32]


def _hit_record(hit: Hit) -> dict[str, Any]:
    return {"id": hit.doc_id, "score": hit.score, "rank": hit.rank, "metadata": hit.metadata}


def work_dir_for(output: str | Path, settings: Mapping[str, Any]) -> Path:
    """The shard folder of one (output, reranker settings) pair, beside the output."""
    output = Path(output)
    return output.parent / f".{output.name}.rerank-{fingerprint(settings)}"


def rerank_sharded(
    executor: Executor,
    factory: Callable[[], Reranker],
    run: Mapping[str, Sequence[Hit]],
    queries: Mapping[str, Query],
    corpus: DocStore,
    work_dir: Path,
    k: int | None = None,
    queries_per_shard: int = DEFAULT_QUERIES_PER_SHARD,
    reranker: Reranker | None = None,
) -> dict[str, list[Hit]]:
    """As Reranker.rerank_run, cut into shards of `queries_per_shard` queries run by `executor`
    (`factory` builds the reranker on each worker; an in-process executor may use `reranker`).
    The work folder is removed once its shards are merged."""
    unknown = [q for q in run if q not in queries]
    if unknown:
        raise InputError(
            f"{len(unknown)} queries of the run are not in the topics (e.g. {unknown[0]!r})"
        )

    def groups() -> Iterator[Group]:
        for qid, hits in run.items():
            yield qid, queries[qid], with_documents(hits[:k] if k else hits, corpus, qid)

    task = RerankTask(factory, work_dir, None if executor.remote else reranker)
    work_dir.mkdir(parents=True, exist_ok=True)
    total = sum(len(h[:k] if k else h) for h in run.values())
    report = executor.run(
        task,
        cut_into_shards(groups(), queries_per_shard),
        total=len(run),
        desc=f"reranking {total} pairs in query shards",
        unit="query",
    )
    out: dict[str, list[Hit]] = {}
    for index in sorted(report.computed + report.skipped):
        with open(work_dir / f"shard_{index:05d}.jsonl", encoding="utf-8") as fh:
            fh.readline()  # the header
            for line in fh:
                record = json.loads(line)
                hits = [
                    Hit(h["id"], h["score"], h["rank"], None, h["metadata"]) for h in record["hits"]
                ]
                corpus.attach(hits)
                out[record["qid"]] = hits
    shutil.rmtree(work_dir, ignore_errors=True)
    return out
