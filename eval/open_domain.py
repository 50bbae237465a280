"""The open-domain setup of the multi-hop QA datasets, as KiRAG's reference builds it
(jyfang6/kirag, preprocessing/construct_odqa_for_multihop_qa.py and preprocessing/dataset.md):
one retrieval corpus per dataset, the original dev set as test, 500 seeded-sampled train
questions as dev, the rest as train, and qrels pointing at corpus ids.

- HotpotQA: the corpus is the official abstracts dump
  (enwiki-20171001-pages-meta-current-withlinks-abstracts: a tar.bz2 of folders of bz2 JSON-lines
  files, one {id, url, title, text: [sentences]} per line), ids the Wikipedia page ids, sorted by
  id; a supporting title is the document with that title (the highest id when titles repeat).
- 2WikiMultiHopQA / MuSiQue: the corpus is every paragraph of every question of train, dev and
  test (as IRCoT builds it), deduplicated by (title, text), numbered "0", "1", ... in order of
  first appearance over train, dev, test (the reference's ids, so its published KG corpora line
  up); a supporting paragraph is the question's own context paragraph (2Wiki: the first whose
  title matches the supporting fact's, case-insensitively; MuSiQue: each decomposition step's
  `paragraph_support_idx`). MuSiQue uses the answerable (`musique_ans_v1.0_*`) files.

Everything streams: the dump is read member by member (tarfile stream mode, bz2 per member, one
JSON line at a time) into a SQLite staging table beside the output (resumable per member), the
question files one element at a time. Outputs, in one folder written atomically: corpus.jsonl,
train/dev/test.jsonl (kirag's multi-hop JSONL), qrels.{train,dev,test}.txt (TREC), manifest.json.
"""

from __future__ import annotations

import bz2
import functools
import hashlib
import json
import sqlite3
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from kirag.core.atomic import WORK_MARK, atomic_directory, build_lock, write_json
from kirag.core.progress import progress
from kirag.errors import InputError, OutputExistsError, SettingsError
from kirag.io.ids import check_id
from kirag.io.json_array import iter_json_array
from kirag.io.lines import parse_json_object, read_numbered_records

KIND = "open-domain-qa"
DEFAULT_NUM_DEV = 500
DEFAULT_SEED = 0  # the reference's seed_everything(0)
SPLITS = ("train", "dev", "test")
HOTPOT_ABSTRACTS = "enwiki-20171001-pages-meta-current-withlinks-abstracts"

Record = dict[str, Any]


@dataclass(frozen=True)
class DatasetSpec:
    """The official file names of a dataset: its train and dev question files, and the files
    (in order) whose paragraphs make the corpus when it is built from the questions."""

    name: str
    train: str
    dev: str
    corpus_files: tuple[str, ...] = ()


DATASETS = {
    "hotpotqa": DatasetSpec("hotpotqa", "hotpot_train_v1.1.json", "hotpot_dev_distractor_v1.json"),
    "2wikimultihopqa": DatasetSpec(
        "2wikimultihopqa", "train.json", "dev.json", ("train.json", "dev.json", "test.json")
    ),
    "musique": DatasetSpec(
        "musique",
        "musique_ans_v1.0_train.jsonl",
        "musique_ans_v1.0_dev.jsonl",
        (
            "musique_ans_v1.0_train.jsonl",
            "musique_ans_v1.0_dev.jsonl",
            "musique_ans_v1.0_test.jsonl",
        ),
    ),
}


@dataclass
class PrepareStats:
    """What a preparation produced (written in manifest.json)."""

    dataset: str
    documents: int = 0
    questions: dict[str, int] = field(default_factory=dict)
    qrels: dict[str, int] = field(default_factory=dict)
    duplicates_skipped: int = 0
    dump_files_read: int = 0
    unmatched_supporting: int = 0
    unmatched_examples: list[str] = field(default_factory=list)


def split_train_dev(train: list, num_dev: int, seed: int = DEFAULT_SEED) -> tuple[list, list]:
    """The reference's split of the original train set: a seeded permutation (NumPy's legacy
    generator, as `np.random.seed(seed); np.random.permutation(n)`), its last `num_dev` as dev,
    the rest (in permuted order) as train."""
    import numpy as np

    if not 0 < num_dev < len(train):
        raise SettingsError(
            f"num_dev={num_dev}: needs 0 < num_dev < the {len(train)} train questions",
            parameters=("num_dev",),
        )
    order = np.random.RandomState(seed).permutation(len(train))
    return [train[i] for i in order[:-num_dev]], [train[i] for i in order[-num_dev:]]


def paragraph_text(sentences: list[str]) -> str:
    """A paragraph given as sentences, as one text (the reference joins stripped sentences)."""
    return " ".join(s.strip() for s in sentences)


def _fail(path: Path, line: int, exc: Exception, what: str) -> InputError:
    return InputError(f"not a {what} record ({exc!r})", path, line)


def _records(path: Path) -> Iterator[tuple[int, Record]]:
    """(line, record) of a JSON-array or JSONL question file, streamed."""
    if not path.is_file():
        raise InputError("no such file (expected the dataset's official file here)", path)
    if path.name.removesuffix(".gz").removesuffix(".bz2").endswith(".jsonl"):
        yield from read_numbered_records(path, parse_json_object)
        return
    for line, record in iter_json_array(path):
        if not isinstance(record, dict):
            raise InputError(f"expected a JSON object, got {type(record).__name__}", path, line)
        yield line, record


class ParagraphCorpus:
    """Paragraphs deduplicated by (title, content), numbered "0", "1", ... in order of first
    appearance and written to `out` as corpus JSONL as they come."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._ids: dict[bytes, str] = {}
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._ids)

    @staticmethod
    def key(title: str, content: Any) -> bytes:
        data = json.dumps([title, content], ensure_ascii=False).encode()
        return hashlib.blake2b(data, digest_size=16).digest()

    def add(self, title: str, text: str, content: Any, sentences: list[str] | None = None) -> str:
        """The id of this paragraph, written now if it is new. `content` is what identifies
        it besides the title (2Wiki: its sentence list, as the reference hashes it)."""
        key = self.key(title, content)
        found = self._ids.get(key)
        if found is not None:
            self.duplicates += 1
            return found
        doc_id = self._ids[key] = str(len(self._ids))
        record: Record = {"id": doc_id, "title": title, "text": text}
        if sentences is not None:
            record["sentences"] = sentences
        self._out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return doc_id


def _question(record: Record, qid_field: str, supporting: list[str], **extra: Any) -> Record:
    """kirag's multi-hop JSONL record (id, question, answers, supporting_ids) plus extras."""
    answer = record.get("answer")
    out = {
        "id": check_id(str(record[qid_field]), "question id"),
        "question": record["question"],
        "answers": [answer] if isinstance(answer, str) else [],
        "supporting_ids": list(dict.fromkeys(supporting)),
    }
    out.update(extra)
    return out


def _twowiki_questions(
    path: Path, corpus: ParagraphCorpus, stats: PrepareStats, with_questions: bool
) -> list[Record]:
    """Add a 2Wiki file's paragraphs to the corpus; its questions with supporting ids."""
    questions = []
    for line, record in progress(_records(path), desc=path.name, unit="q"):
        try:
            ids_by_title: dict[str, str] = {}
            for title, sentences in record["context"]:
                if not isinstance(title, str) or not isinstance(sentences, list):
                    raise TypeError("context entries must be [title, [sentences]]")
                doc_id = corpus.add(title, paragraph_text(sentences), sentences, sentences)
                ids_by_title.setdefault(title.strip().lower(), doc_id)
            if not with_questions:
                continue
            facts, supporting = [], []
            for title, index in record["supporting_facts"]:
                doc_id = ids_by_title.get(str(title).strip().lower())
                if doc_id is None:
                    _unmatched(stats, f"{record['_id']}: {title}")
                    continue
                facts.append([doc_id, int(index)])
                supporting.append(doc_id)
            questions.append(
                _question(
                    record, "_id", supporting, supporting_facts=facts, type=record.get("type")
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(path, line, exc, "2WikiMultiHopQA") from None
    return questions


def _musique_questions(
    path: Path, corpus: ParagraphCorpus, stats: PrepareStats, with_questions: bool
) -> list[Record]:
    """Add a MuSiQue file's paragraphs to the corpus; its questions with supporting ids."""
    questions = []
    for line, record in progress(_records(path), desc=path.name, unit="q"):
        try:
            ids = []
            for paragraph in record["paragraphs"]:
                title, text = paragraph["title"], paragraph["paragraph_text"]
                if not isinstance(title, str) or not isinstance(text, str):
                    raise TypeError("paragraph title and paragraph_text must be strings")
                ids.append(corpus.add(title, text, text))
            if not with_questions:
                continue
            supporting = []
            for step in record.get("question_decomposition", []):
                index = step.get("paragraph_support_idx")
                if index is None:
                    continue
                if not 0 <= int(index) < len(ids):
                    _unmatched(stats, f"{record['id']}: paragraph {index}")
                    continue
                supporting.append(ids[int(index)])
            aliases = [a for a in record.get("answer_aliases", []) if isinstance(a, str)]
            questions.append(
                _question(
                    record,
                    "id",
                    supporting,
                    answer_aliases=aliases,
                    answerable=bool(record.get("answerable", True)),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _fail(path, line, exc, "MuSiQue") from None
    return questions


def _unmatched(stats: PrepareStats, what: str) -> None:
    stats.unmatched_supporting += 1
    if len(stats.unmatched_examples) < 10:
        stats.unmatched_examples.append(what)


# --- HotpotQA: the abstracts dump, staged in SQLite ------------------------------------------


class AbstractsStage:
    """The abstracts dump staged in SQLite (one row per page, keyed by its integer id), filled
    one dump file (tar member) per transaction: an interrupted run resumes after the last
    finished member. Identical repeats of a page are skipped; a page id with two different
    contents is an error."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS docs (
        id INTEGER PRIMARY KEY, title TEXT NOT NULL, sentences TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS members (name TEXT PRIMARY KEY, documents INTEGER NOT NULL);
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path)
        self._db.executescript(self.SCHEMA)
        self.duplicates = 0

    def done(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT name FROM members")}

    def add_member(self, name: str, pages: Iterable[tuple[int, str, list[str], str]]) -> int:
        """Stage one dump file's pages (id, title, sentences, where) in one transaction."""
        count = 0
        with self._db:
            for page_id, title, sentences, where in pages:
                encoded = json.dumps(sentences, ensure_ascii=False)
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO docs VALUES (?, ?, ?)", (page_id, title, encoded)
                )
                if cursor.rowcount == 0:
                    old = self._db.execute(
                        "SELECT title, sentences FROM docs WHERE id = ?", (page_id,)
                    ).fetchone()
                    if tuple(old) != (title, encoded):
                        raise InputError(
                            f"page id {page_id} appears twice with different contents "
                            f"({old[0]!r} and {title!r})",
                            where,
                        )
                    self.duplicates += 1
                    continue
                count += 1
            self._db.execute("INSERT INTO members VALUES (?, ?)", (name, count))
        return count

    def finish(self) -> None:
        self._db.execute("CREATE INDEX IF NOT EXISTS docs_title ON docs (title, id)")
        self._db.commit()

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]

    def documents(self) -> Iterator[Record]:
        for page_id, title, sentences in self._db.execute(
            "SELECT id, title, sentences FROM docs ORDER BY id"
        ):
            sentences = json.loads(sentences)
            yield {
                "id": str(page_id),
                "title": title,
                "text": paragraph_text(sentences),
                "sentences": sentences,
            }

    def id_of_title(self, title: str) -> str | None:
        """The page titled `title` (the reference's title map keeps the last, i.e. highest id)."""
        row = self._db.execute(
            "SELECT id FROM docs WHERE title = ? ORDER BY id DESC LIMIT 1", (title,)
        ).fetchone()
        return str(row[0]) if row else None

    def close(self) -> None:
        self._db.close()


def _abstract_pages(stream: IO[bytes], where: str) -> Iterator[tuple[int, str, list[str], str]]:
    """(id, title, sentences, where) of each JSON line of one bz2-compressed dump file."""
    lineno = 0
    try:
        with stream, bz2.open(stream, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                at = f"{where}:{lineno}"
                try:
                    record = json.loads(raw)
                    page_id, title, sentences = int(record["id"]), record["title"], record["text"]
                except (ValueError, KeyError, TypeError) as exc:
                    raise InputError(f"not an abstracts record ({exc!r})", at) from None
                if not isinstance(title, str) or not (
                    isinstance(sentences, list) and all(isinstance(s, str) for s in sentences)
                ):
                    raise InputError("title must be a string and text a list of sentences", at)
                yield page_id, title, sentences, at
    except (OSError, EOFError) as exc:
        raise InputError(f"bz2 data is truncated or corrupt ({exc})", where, lineno + 1) from None


def _dump_members(dump: Path) -> Iterator[tuple[str, Callable[[], IO[bytes]]]]:
    """(name, opener) of each .bz2 file of the dump: a tar.bz2 read in stream mode (one pass,
    nothing extracted to disk), or the folder it extracts to (sorted)."""
    if dump.is_dir():
        for path in sorted(dump.rglob("*.bz2")):
            yield str(path.relative_to(dump)), functools.partial(path.open, "rb")
        return
    if not dump.is_file():
        raise InputError(
            f"no abstracts dump here (the {HOTPOT_ABSTRACTS}.tar.bz2 download, or the folder it "
            "extracts to); pass it as abstracts",
            dump,
            parameters=("abstracts",),
        )
    try:
        with tarfile.open(dump, mode="r|*") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".bz2"):
                    yield member.name, lambda member=member, tar=tar: tar.extractfile(member)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(f"not a readable tar archive ({exc})", dump) from None


def stage_abstracts(dump: Path, stage: AbstractsStage) -> int:
    """Stage every page of the dump not staged yet; returns the number of dump files read."""
    done = stage.done()
    read = 0
    bar = progress(desc=f"{dump.name} (files)", unit="file")
    try:
        for name, opener in _dump_members(dump):
            if name not in done:
                stage.add_member(name, _abstract_pages(opener(), f"{dump}:{name}"))
                read += 1
            bar.update(1)
    except (tarfile.TarError, EOFError) as exc:  # the archive itself ends early or is damaged
        raise InputError(f"tar archive is truncated or corrupt ({exc})", dump) from None
    finally:
        bar.close()
    stage.finish()
    return read


def _hotpot_questions(path: Path, stage: AbstractsStage, stats: PrepareStats) -> list[Record]:
    questions = []
    for line, record in progress(_records(path), desc=path.name, unit="q"):
        try:
            facts, supporting = [], []
            for title, index in record["supporting_facts"]:
                doc_id = stage.id_of_title(str(title))
                if doc_id is None:
                    _unmatched(stats, f"{record['_id']}: {title}")
                    continue
                facts.append([doc_id, int(index)])
                supporting.append(doc_id)
            questions.append(
                _question(
                    record,
                    "_id",
                    supporting,
                    supporting_facts=facts,
                    type=record.get("type"),
                    level=record.get("level"),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(path, line, exc, "HotpotQA") from None
    return questions


# --- the whole preparation -------------------------------------------------------------------


def _write_jsonl(path: Path, records: Iterable[Record]) -> int:
    count = 0
    with open(path, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def _write_qrels(path: Path, questions: list[Record]) -> int:
    """TREC qrels (`qid 0 docid 1`) of the questions' supporting documents."""
    count = 0
    with open(path, "w", encoding="utf-8") as fh:
        for question in questions:
            for doc_id in question["supporting_ids"]:
                fh.write(f"{question['id']} 0 {doc_id} 1\n")
                count += 1
    return count


def check_prepared(path: Path) -> None:
    """--overwrite replaces only a folder this preparation wrote (its manifest's kind)."""
    manifest = path / "manifest.json"
    try:
        kind = json.loads(manifest.read_text("utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        kind = None
    if kind != KIND:
        raise OutputExistsError(
            f"{path} is not a prepared dataset folder (no manifest.json of kind {KIND}); "
            "overwrite=True only replaces those: choose another folder or remove it yourself",
            parameters=("overwrite",),
        )


def work_folder(output: Path, dump: Path) -> Path:
    """The resumable staging folder of a HotpotQA preparation, beside the output and keyed by
    the dump (path, size, modification time), so another dump never reuses it."""
    info = dump.stat()
    key = hashlib.sha256(f"{dump.resolve()}|{info.st_size}|{info.st_mtime_ns}".encode())
    return output.parent / f".{output.name}{WORK_MARK}{key.hexdigest()[:16]}"


def prepare_dataset(
    dataset: str,
    raw: str | Path,
    output: str | Path,
    abstracts: str | Path | None = None,
    num_dev: int = DEFAULT_NUM_DEV,
    seed: int = DEFAULT_SEED,
    overwrite: bool = False,
) -> PrepareStats:
    """Build the open-domain setup of `dataset` from the official files in `raw` into the
    folder `output` (written atomically; see the module docstring). HotpotQA's abstracts dump
    is `abstracts`, by default looked for in `raw` (the .tar.bz2 or its extracted folder)."""
    if dataset not in DATASETS:
        raise SettingsError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    spec, raw, output = DATASETS[dataset], Path(raw), Path(output)
    if not raw.is_dir():
        raise InputError("no such folder (the dataset's official files go here)", raw)
    for name in (spec.train, spec.dev, *spec.corpus_files):
        if not (raw / name).is_file():
            raise InputError(f"missing {name}, one of {dataset}'s official files", raw)
    if num_dev <= 0:
        raise SettingsError(f"num_dev={num_dev}: must be positive", parameters=("num_dev",))
    stats = PrepareStats(dataset)
    with build_lock(output):
        if output.exists():  # decided before the (long) staging of a dump
            if not overwrite:
                raise OutputExistsError(
                    f"{output} already exists; pass overwrite=True to replace it",
                    parameters=("overwrite",),
                )
            check_prepared(output)
        if dataset == "hotpotqa":
            dump = Path(abstracts) if abstracts else _default_dump(raw)
            work = work_folder(output, dump)
            stage = AbstractsStage(work / "abstracts.sqlite")
            try:
                stats.dump_files_read = stage_abstracts(dump, stage)
            except BaseException:
                stage.close()
                raise
        with atomic_directory(output, overwrite=overwrite, check_replace=check_prepared) as tmp:
            if dataset == "hotpotqa":
                stats.documents = _write_jsonl(
                    tmp / "corpus.jsonl",
                    progress(stage.documents(), total=len(stage), desc="corpus.jsonl", unit="doc"),
                )
                stats.duplicates_skipped = stage.duplicates
                try:
                    train = _hotpot_questions(raw / spec.train, stage, stats)
                    test = _hotpot_questions(raw / spec.dev, stage, stats)
                finally:
                    stage.close()
            else:
                read = _twowiki_questions if dataset == "2wikimultihopqa" else _musique_questions
                with open(tmp / "corpus.jsonl", "w", encoding="utf-8") as fh:
                    corpus = ParagraphCorpus(fh)
                    found = {
                        name: read(raw / name, corpus, stats, name in (spec.train, spec.dev))
                        for name in spec.corpus_files
                    }
                stats.documents, stats.duplicates_skipped = len(corpus), corpus.duplicates
                train, test = found[spec.train], found[spec.dev]
            train, dev = split_train_dev(train, num_dev, seed)
            for split, questions in zip(SPLITS, (train, dev, test), strict=True):
                stats.questions[split] = _write_jsonl(tmp / f"{split}.jsonl", questions)
                stats.qrels[split] = _write_qrels(tmp / f"qrels.{split}.txt", questions)
            write_json(
                tmp / "manifest.json",
                {"kind": KIND, "num_dev": num_dev, "seed": seed, **asdict(stats)},
            )
        if dataset == "hotpotqa":
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    return stats


def _default_dump(raw: Path) -> Path:
    for candidate in (raw / f"{HOTPOT_ABSTRACTS}.tar.bz2", raw / HOTPOT_ABSTRACTS):
        if candidate.exists():
            return candidate
    raise InputError(
        f"no abstracts dump: expected {HOTPOT_ABSTRACTS}.tar.bz2 (or the folder it extracts to) "
        "here, or pass abstracts=PATH",
        raw,
        parameters=("abstracts",),
    )
