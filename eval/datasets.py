"""Dataset loaders for the formats users download (nothing is downloaded here): MS MARCO
passage, TREC DL, BEIR folders for ranking; HotpotQA, 2WikiMultiHopQA, MuSiQue (and kirag's own
multi-hop JSONL) for multi-hop QA — all mapped to Query / Document / qrels plus gold answers and
gold supporting documents."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from kirag.errors import InputError
from kirag.io.corpus import CorpusReader, read_corpus
from kirag.io.lines import open_binary
from kirag.io.qrels import Qrels, read_qrels
from kirag.io.topics import read_topics
from kirag.types import Document, Query

QAFormat = Literal["auto", "hotpotqa", "2wikimultihopqa", "musique", "kirag"]
# Fields and question types that only one of the two datasets has ("comparison" is in both).
TWOWIKI_FIELDS = ("evidences", "evidences_id", "answer_id", "entity_ids")
TWOWIKI_ONLY_TYPES = {"inference", "compositional", "bridge_comparison"}
HOTPOT_FIELDS = ("level",)
HOTPOT_ONLY_TYPES = {"bridge"}


@dataclass
class RankingDataset:
    """A ranking task: a streamed corpus, queries and judgments. `rel_level` is the grade from
    which binary metrics count a document relevant (2 for TREC DL passage)."""

    name: str
    corpus: CorpusReader | None
    queries: dict[str, Query]
    qrels: Qrels
    rel_level: int | None = None


def load_msmarco_passage(folder: str | Path, split: str = "dev") -> RankingDataset:
    """An MS MARCO passage folder: collection.tsv, queries.{split}[.small].tsv,
    qrels.{split}[.small].tsv (the names of the official downloads)."""
    folder = Path(folder)
    queries = _first_existing(folder, [f"queries.{split}.small.tsv", f"queries.{split}.tsv"])
    qrels = _first_existing(
        folder, [f"qrels.{split}.small.tsv", f"qrels.{split}.tsv"], required=False
    )
    collection = _first_existing(
        folder, ["collection.tsv", "collection.tsv.gz", "collection.tsv.bz2"], required=False
    )
    return RankingDataset(
        f"msmarco-passage-{split}",
        read_corpus(collection) if collection else None,
        read_topics(queries),
        read_qrels(qrels) if qrels else {},
    )


def load_trec_dl(
    topics: str | Path, qrels: str | Path, corpus: str | Path | None = None
) -> RankingDataset:
    """TREC DL passage topics and graded qrels (binary metrics at grade >= 2)."""
    judgments = read_qrels(qrels)
    return RankingDataset(
        Path(topics).stem,
        read_corpus(corpus) if corpus else None,
        read_topics(topics),
        judgments,
        rel_level=2,
    )


def load_beir(folder: str | Path, split: str = "test") -> RankingDataset:
    """A BEIR folder: corpus.jsonl, queries.jsonl, qrels/{split}.tsv (queries kept: those judged)."""
    folder = Path(folder)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        raise InputError(f"no qrels for split {split!r}", qrels_path)
    judgments = read_qrels(qrels_path)
    queries = {
        qid: q for qid, q in read_topics(folder / "queries.jsonl").items() if qid in judgments
    }
    return RankingDataset(f"beir-{folder.name}-{split}", read_corpus(folder), queries, judgments)


def _first_existing(folder: Path, names: list[str], required: bool = True) -> Path | None:
    for name in names:
        if (folder / name).exists():
            return folder / name
    if required:
        raise InputError(f"none of {', '.join(names)} found", folder)
    return None


@dataclass
class MultiHopExample:
    """A multi-hop question with its gold answer aliases and gold supporting documents. In
    distractor settings `documents` holds the given context paragraphs."""

    id: str
    question: str
    answers: list[str]
    gold_doc_ids: list[str]
    dataset: str
    documents: list[Document] = field(default_factory=list)
    supporting_facts: list[tuple[str, int]] = field(default_factory=list)
    evidences: list[list[str]] = field(default_factory=list)
    answerable: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def query(self) -> Query:
        return Query(self.id, self.question)


def _context_documents(context: list, source: Path) -> list[Document]:
    """HotpotQA / 2Wiki context: [[title, [sentence, ...]], ...] -> one Document per title
    (id = title, sentences kept in metadata for supporting-fact prediction)."""
    documents = []
    for item in context:
        if not (isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[1], list)):
            raise InputError("context entries must be [title, [sentences]]", source)
        title, sentences = item
        documents.append(
            Document(
                str(title),
                " ".join(s.strip() for s in sentences),
                str(title),
                {"sentences": sentences},
            )
        )
    return documents


def _hotpot_like(records: list, source: Path, dataset: str) -> list[MultiHopExample]:
    examples = []
    for number, record in enumerate(records, 1):
        try:
            qid = str(record["_id"])
            facts = [(str(t), int(i)) for t, i in record.get("supporting_facts", [])]
            answer = record.get("answer")
            examples.append(
                MultiHopExample(
                    qid,
                    record["question"],
                    [answer] if isinstance(answer, str) else [],
                    list(dict.fromkeys(t for t, _ in facts)),
                    dataset,
                    _context_documents(record.get("context", []), source),
                    facts,
                    [list(e) for e in record.get("evidences", [])],
                    metadata={k: record[k] for k in ("type", "level") if k in record},
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"question #{number} is not a {dataset} record ({exc!r})", source
            ) from None
    return examples


def load_hotpotqa(path: str | Path) -> list[MultiHopExample]:
    """HotpotQA distractor or fullwiki JSON (a list of {_id, question, answer, supporting_facts,
    context}); fullwiki test files have no answers or supporting facts."""
    path = Path(path)
    return _hotpot_like(_read_json_list(path), path, "hotpotqa")


def load_2wikimultihopqa(
    path: str | Path, aliases: str | Path | None = None
) -> list[MultiHopExample]:
    """2WikiMultiHopQA JSON: HotpotQA's shape plus `evidences` ([subject, relation, object]).
    With the dataset's id_aliases.json (JSONL of {Q_id, aliases, demonyms}) the answer gains
    its aliases and each evidence the alias combinations of its subject and object, as the
    official evaluation does (metadata["evidence_alternatives"])."""
    path = Path(path)
    records = _read_json_list(path)
    examples = _hotpot_like(records, path, "2wikimultihopqa")
    if aliases is None:
        return examples
    table = _read_2wiki_aliases(Path(aliases))
    for number, (record, example) in enumerate(zip(records, examples, strict=True), 1):
        example.answers += sorted(table.get(record.get("answer_id"), set()) - set(example.answers))
        ids = record.get("evidences_id") or []
        if ids and len(ids) != len(example.evidences):
            raise InputError(
                f"question #{number}: evidences_id and evidences differ in length", path
            )
        alternatives = []
        for i, (subject, relation, obj) in enumerate(example.evidences):
            subjects, objects = {subject}, {obj}
            if ids and ids[i][1] != relation:
                raise InputError(
                    f"question #{number}: evidence {i + 1}'s relation is {relation!r} in "
                    f"evidences but {ids[i][1]!r} in evidences_id",
                    path,
                )
            if ids:
                subjects |= table.get(ids[i][0], set())
                objects |= table.get(ids[i][2], set())
            alternatives.append(
                [[s, relation, o] for s in sorted(subjects) for o in sorted(objects)]
            )
        example.metadata["evidence_alternatives"] = alternatives
    return examples


def _read_2wiki_aliases(path: Path) -> dict[str, set[str]]:
    table: dict[str, set[str]] = {}
    for lineno, record in _read_jsonl(path):
        try:
            table[str(record["Q_id"])] = set(record.get("aliases", [])) | set(
                record.get("demonyms", [])
            )
        except (KeyError, TypeError) as exc:
            raise InputError(f"not an id_aliases record ({exc!r})", path, lineno) from None
    return table


def load_musique(path: str | Path) -> list[MultiHopExample]:
    """MuSiQue JSONL: {id, question, answer, answer_aliases, answerable, paragraphs: [{idx,
    title, paragraph_text, is_supporting}]}; paragraph ids are "{id}#{idx}"."""
    path = Path(path)
    examples = []
    for lineno, record in _read_jsonl(path):
        try:
            qid = str(record["id"])
            documents = [
                Document(
                    f"{qid}#{p['idx']}",
                    p["paragraph_text"],
                    p["title"],
                    {"idx": int(p["idx"]), "is_supporting": bool(p.get("is_supporting", False))},
                )
                for p in record.get("paragraphs", [])
            ]
            answers = [
                a
                for a in [record.get("answer"), *record.get("answer_aliases", [])]
                if isinstance(a, str) and a
            ]
            examples.append(
                MultiHopExample(
                    qid,
                    record["question"],
                    answers,
                    [d.id for d in documents if d.metadata["is_supporting"]],
                    "musique",
                    documents,
                    answerable=bool(record.get("answerable", True)),
                    metadata={"question_decomposition": record.get("question_decomposition", [])},
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a MuSiQue record ({exc!r})", path, lineno) from None
    return examples


def load_kirag_questions(path: str | Path) -> list[MultiHopExample]:
    """kirag's multi-hop JSONL ({id, question, answers, supporting_ids}), e.g. the bundled
    bridge questions over the Wikipedia sample."""
    path = Path(path)
    examples = []
    for lineno, record in _read_jsonl(path):
        try:
            examples.append(
                MultiHopExample(
                    str(record["id"]),
                    record["question"],
                    list(record["answers"]),
                    list(record["supporting_ids"]),
                    "kirag",
                    metadata={"type": record["type"]} if "type" in record else {},
                )
            )
        except (KeyError, TypeError) as exc:
            raise InputError(f"not a kirag multi-hop record ({exc!r})", path, lineno) from None
    return examples


BUNDLED_QUESTIONS = "multihop_enwiki.jsonl"


def load_bundled_questions() -> list[MultiHopExample]:
    """The 31 bundled bridge questions over the Wikipedia sample (kirag's multi-hop JSONL)."""
    return load_kirag_questions(
        Path(str(resources.files("kirag.data").joinpath(BUNDLED_QUESTIONS)))
    )


def detect_qa_format(path: Path) -> str:
    """The format of a QA file: a JSON list is HotpotQA or 2WikiMultiHopQA (told apart over all
    its records, see `hotpot_or_2wiki`), JSONL is MuSiQue or kirag's own."""
    with open_binary(path) as fh:
        head = fh.read(4096).decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if head.startswith("["):
        return hotpot_or_2wiki(_read_json_list(path), path)
    first_line = head.splitlines()[0] if head else ""
    if '"paragraphs"' in first_line:
        return "musique"
    if '"supporting_ids"' in first_line:
        return "kirag"
    raise InputError(
        "not a HotpotQA / 2WikiMultiHopQA JSON list, a MuSiQue JSONL or a kirag multi-hop JSONL",
        path,
    )


def hotpot_or_2wiki(records: list, source: Path) -> str:
    """HotpotQA or 2WikiMultiHopQA from what only one of them has, looked for in every record:
    2Wiki's `evidences` (and its id fields) or types, HotpotQA's `level` or "bridge" type. Both
    share "comparison" questions, so the first record alone decides nothing. A file with no
    sign of 2Wiki is HotpotQA (its test files carry no type or level); one with signs of both
    is an error."""
    twowiki = hotpot = None
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            continue
        kind = record.get("type")
        if twowiki is None and (
            any(f in record for f in TWOWIKI_FIELDS) or kind in TWOWIKI_ONLY_TYPES
        ):
            twowiki = number
        if hotpot is None and (
            any(f in record for f in HOTPOT_FIELDS) or kind in HOTPOT_ONLY_TYPES
        ):
            hotpot = number
        if twowiki and hotpot:
            raise InputError(
                f"mixes HotpotQA (question #{hotpot}) and 2WikiMultiHopQA (question #{twowiki}) "
                "records",
                source,
            )
    return "2wikimultihopqa" if twowiki else "hotpotqa"


def qa_format_for_target(path: str | Path, target: str = "auto") -> str:
    """The format to load a QA dataset file in when predictions in `target`'s format are scored
    against it: the target's own for a HotpotQA / 2Wiki JSON list (the user decides what the
    detection cannot), kirag's multi-hop JSONL under the HotpotQA target, else the detected
    format, which must then be the target's."""
    path = Path(path)
    detected = detect_qa_format(path)
    if target == "auto" or target == detected:
        return detected
    if detected in ("hotpotqa", "2wikimultihopqa") and target in ("hotpotqa", "2wikimultihopqa"):
        return target
    if detected == "kirag" and target == "hotpotqa":
        return detected
    raise InputError(f"predictions for {target} cannot be scored against a {detected} file", path)


LOADERS = {
    "hotpotqa": load_hotpotqa,
    "2wikimultihopqa": load_2wikimultihopqa,
    "musique": load_musique,
    "kirag": load_kirag_questions,
}


def load_questions(
    path: str | Path, format: QAFormat = "auto", aliases: str | Path | None = None
) -> list[MultiHopExample]:
    """Multi-hop questions from any supported file; the format is detected when "auto".
    `aliases`: 2WikiMultiHopQA's id_aliases.json. Question ids are unique, except MuSiQue-Full,
    which holds each question twice (an answerable and an unanswerable version)."""
    path = Path(path)
    fmt = detect_qa_format(path) if format == "auto" else format
    if fmt not in LOADERS:
        raise InputError(f"unknown QA format {fmt!r}; known: {', '.join(LOADERS)}")
    if aliases is not None and fmt != "2wikimultihopqa":
        raise InputError(f"answer aliases files are for 2WikiMultiHopQA, not {fmt}", aliases)
    examples = load_2wikimultihopqa(path, aliases) if aliases else LOADERS[fmt](path)
    seen: dict[str, list[MultiHopExample]] = {}
    for example in examples:
        same = seen.setdefault(example.id, [])
        pair = fmt == "musique" and len(same) == 1 and same[0].answerable != example.answerable
        if same and not pair:
            raise InputError(f"duplicate question id {example.id!r}", path)
        same.append(example)
    return examples


def _read_json_list(path: Path) -> list:
    try:
        with open_binary(path) as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})", path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON ({exc.msg})", path, exc.lineno) from None
    if not isinstance(data, list):
        raise InputError("expected a JSON list of questions", path)
    return data


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict]]:
    from kirag.io.lines import parse_json_object, read_numbered_records

    return read_numbered_records(path, parse_json_object)
