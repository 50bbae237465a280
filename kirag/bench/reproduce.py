"""`kirag bench reproduce`: one row set of the paper's Table 1 on one prepared dataset.

Given a folder written by `kirag data prepare` (corpus.jsonl, {train,dev,test}.jsonl), this
builds (or reuses) the corpus's triple index with its BM25 and dense document indexes inside,
then scores KiRAG-reference and the baselines the paper compares on the same questions with the
same reader (the reference's): single-shot BM25 / dense retrieval + reader, and
retrieve-read-retrieve over BM25 (the IRCoT-like iterative baseline). It reports support recall
R@3/R@5 against the split's gold supporting ids and answer EM/F1, with every setting (models,
engine, extractor, aligner, demonstrations, index manifest) in the results.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from kirag.core.ranges import COUNT, COUNT_OR_ZERO
from kirag.models import DEFAULT_LLM

SYSTEMS = ("bm25", "dense", "iterative", "kirag")
KS = (3, 5)
REPRODUCED = {"extractor": ("spacy", "llm")}  # the extractors the benchmark builds with


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from kirag.core.settings import add_arguments as add_settings
    from kirag.knowledge.triple_index import TripleIndexSettings
    from kirag.llm.settings import EngineSettings
    from kirag.rag.reader import ReaderSettings
    from kirag.rag.reference import ReferenceSettings

    parser.add_argument(
        "--dataset", required=True, help="a prepared dataset folder (kirag data prepare)"
    )
    parser.add_argument("--split", choices=["test", "dev"], default="test")
    parser.add_argument("--limit", type=COUNT_OR_ZERO, default=0, help="first N questions (0: all)")
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"comma-separated, of: {', '.join(SYSTEMS)}"
    )
    parser.add_argument(
        "--model", default=DEFAULT_LLM, help="LLM of every role (constructor, reader)"
    )
    add_settings(parser, EngineSettings, only=("engine",), title="LLM engine (every role)")
    # the triple index's extractor and encoder (the encoder also embeds the dense index); the
    # benchmark runs only the extractors it can rebuild an index with
    add_settings(parser, TripleIndexSettings, only=("extractor", "encoder"), restrict=REPRODUCED)
    parser.add_argument("--extractor-model", help="LLM of the llm extractor (default: --model)")
    parser.add_argument("--aligner", help="aligner model (default: the index's encoder)")
    parser.add_argument(
        "--aligner-tokenizer", help="tokenizer of a saved aligner without one (e5-large-v2's)"
    )
    parser.add_argument(
        "--demonstrations", help="chain demonstration pool file (default: the shipped one)"
    )
    parser.add_argument(
        "--demonstrations-dataset",
        help="pool section to use (default: the dataset's name with --demonstrations, "
        "else the shipped 'wikipedia')",
    )
    # KiRAG-reference's turns, demonstrations and constructor tokens: the reference's
    add_settings(
        parser,
        ReferenceSettings,
        only=("max_turns", "num_demonstrations", "max_new_tokens"),
    )
    parser.add_argument("--rounds", type=COUNT, default=3, help="retrieve-read-retrieve rounds")
    add_settings(parser, ReaderSettings)  # --reader-k, --reader-max-tokens: the reference's
    parser.add_argument(
        "--index",
        help="an existing triple index of the corpus to use instead (e.g. one built with "
        "`kirag index triples --import` from the authors' KG corpus)",
    )
    parser.add_argument(
        "--workdir",
        default="indexes/reproduce",
        help="where the indexes go (reused when already built with the same settings)",
    )


# ---------------------------------------------------------------- inputs


def dataset_name(folder: Path) -> str:
    """The dataset a prepared folder holds (its manifest), else the folder's name."""
    try:
        return str(json.loads((folder / "manifest.json").read_text("utf-8"))["dataset"])
    except (OSError, ValueError, KeyError, TypeError):
        return folder.name


def parse_systems(text: str) -> list[str]:
    """The chosen systems, in the table's order; an unknown name is an error naming the known."""
    from kirag.errors import SettingsError

    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SYSTEMS]
    if unknown or not chosen:
        raise SettingsError(
            f"--systems {text!r}: unknown {', '.join(unknown) or '(none given)'}; "
            f"known: {', '.join(SYSTEMS)}"
        )
    return [s for s in SYSTEMS if s in chosen]


def index_name(dataset: str, extractor: str, extractor_model: str | None, encoder: str) -> str:
    """One index folder per (dataset, extractor, encoder): other settings never reuse it."""
    parts = [dataset, extractor, *([extractor_model] if extractor == "llm" else []), encoder]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts))


def build_index(
    corpus: Path,
    index_dir: Path,
    extractor: str,
    encoder: str,
    extractor_options: dict | None = None,
) -> Path:
    """The corpus's triple index with BM25 and dense document indexes inside (built once)."""
    from kirag.knowledge.triple_index import build_from_corpus

    if not (index_dir / "manifest.json").exists():
        index_dir.parent.mkdir(parents=True, exist_ok=True)
        build_from_corpus(
            corpus,
            index_dir,
            extractor=extractor,
            extractor_options=extractor_options,
            encoder=encoder,
            overwrite=True,
            cache=index_dir.parent / f"{index_dir.name}.extraction-cache.sqlite",
        )
    return index_dir


# ---------------------------------------------------------------- systems


def reproduce_systems(index_dir: Path, chosen: list[str], settings: dict) -> dict:
    """name -> factory of function(questions) -> list[SystemOutput], all with the reference
    reader; a factory loads its models only when called (a resumed run skips finished ones)."""
    from kirag.bench.harness import SystemOutput
    from kirag.bench.multihop import kirag_system
    from kirag.knowledge.triple_index import TripleIndex
    from kirag.llm.factory import load_engine
    from kirag.rag.baselines import RetrieveReadRetrieve, SingleShotRAG
    from kirag.rag.reader import ReferenceReader

    documents = TripleIndex(index_dir).document_retrievers()
    reader_k = settings["reader_k"]

    def reader():
        engine = load_engine(settings["model"], engine=settings["engine"])
        return ReferenceReader(engine, max_tokens=settings["reader_max_tokens"])

    def single(name):
        def run(questions):
            rag = SingleShotRAG(documents[name], reader(), reader_k=reader_k)
            results = rag.run([q.question for q in questions], k=10)
            return [SystemOutput(r.hits, r.answer, r.llm_calls) for r in results]

        return run

    def iterative(questions):
        rag = RetrieveReadRetrieve(
            documents["bm25"], reader(), rounds=settings["rounds"], reader_k=reader_k
        )
        results = rag.run([q.question for q in questions], k=10)
        return [SystemOutput(r.hits, r.answer, r.llm_calls) for r in results]

    rows = {
        "bm25": ("BM25 + reader (single-shot)", lambda: single("bm25")),
        "dense": ("dense + reader (single-shot)", lambda: single("dense")),
        "iterative": (
            f"retrieve-read-retrieve (BM25, {settings['rounds']} rounds; IRCoT-like)",
            lambda: iterative,
        ),
        "kirag": (
            f"KiRAG reference ({settings['turns']} turns)",
            lambda: kirag_system(
                index_dir,
                mode="reference",
                constructor_model=settings["model"],
                engine=settings["engine"],
                aligner=settings["aligner"],
                aligner_tokenizer=settings["aligner_tokenizer"],
                demonstrations=settings["demonstrations"],
                dataset=settings["demonstrations_dataset"],
                reader_k=reader_k,
                max_turns=settings["turns"],
                num_demonstrations=settings["num_demonstrations"],
                max_new_tokens=settings["constructor_max_tokens"],
                reader_max_tokens=settings["reader_max_tokens"],
            ),
        ),
    }
    return {rows[key][0]: rows[key][1] for key in chosen}


# ---------------------------------------------------------------- resuming


class Checkpoint:
    """Finished systems' scores in `<output>.partial.json`, so a long run (hours on a full test
    split) resumes after a crash; reused only when the settings and questions are the same."""

    def __init__(self, output: str | None, settings: dict, question_ids: list[str]):
        self.path = Path(f"{output}.partial.json") if output else None
        self.key = {"settings": settings, "question_ids": question_ids}
        self.rows: dict[str, dict] = {}
        self.per_question: dict[str, list] = {}
        if self.path is not None and self.path.is_file():
            try:
                saved = json.loads(self.path.read_text("utf-8"))
            except (OSError, ValueError):
                saved = {}
            if isinstance(saved, dict) and saved.get("key") == self.key:
                self.rows, self.per_question = saved["rows"], saved["per_question"]

    def add(self, name: str, row: dict, per_question: list) -> None:
        from kirag.core.atomic import write_json

        self.rows[name], self.per_question[name] = row, per_question
        if self.path is not None:
            data = {"key": self.key, "rows": self.rows, "per_question": self.per_question}
            write_json(self.path, data)

    def finish(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> dict:
    from kirag.bench.harness import evaluate_system, format_table
    from kirag.errors import InputError, SettingsError
    from kirag.eval.datasets import load_kirag_questions

    folder = Path(args.dataset)
    questions_file, corpus = folder / f"{args.split}.jsonl", folder / "corpus.jsonl"
    for path in (questions_file, corpus):
        if not path.is_file():
            raise InputError(f"missing {path.name}: not a prepared dataset folder?", folder)
    if args.limit < 0:
        raise SettingsError(f"--limit {args.limit}: must be >= 0")
    chosen = parse_systems(args.systems)
    name = dataset_name(folder)
    questions = load_kirag_questions(questions_file)
    if args.limit:
        questions = questions[: args.limit]
    extractor_model = args.extractor_model or args.model
    extractor_options = (
        {"model": extractor_model, "engine_name": args.engine} if args.extractor == "llm" else None
    )
    settings = {
        "dataset": name,
        "dataset_folder": str(folder),
        "split": args.split,
        "limit": args.limit,
        "model": args.model,
        "engine": args.engine,
        "extractor": args.extractor,
        "extractor_model": extractor_model if args.extractor == "llm" else None,
        "encoder": args.encoder,
        "aligner": args.aligner,
        "aligner_tokenizer": args.aligner_tokenizer,
        "demonstrations": args.demonstrations,
        "demonstrations_dataset": args.demonstrations_dataset
        or (name if args.demonstrations else "wikipedia"),
        "turns": args.turns,
        "num_demonstrations": args.num_demonstrations,
        "rounds": args.rounds,
        "constructor_max_tokens": args.constructor_max_tokens,
        "reader": "the reference's reader prompt, for every system",
        "reader_max_tokens": args.reader_max_tokens,
        "reader_k": args.reader_k,
        "retrieval_k": 10,
    }
    if args.index:
        index_dir = Path(args.index)
        if not (index_dir / "manifest.json").is_file():
            raise InputError("not a triple index folder (no manifest.json)", index_dir)
    else:
        index_dir = build_index(
            corpus,
            Path(args.workdir) / index_name(name, args.extractor, extractor_model, args.encoder),
            args.extractor,
            args.encoder,
            extractor_options,
        )
    manifest = json.loads((index_dir / "manifest.json").read_text("utf-8"))
    settings["index"] = str(index_dir)
    settings["index_extractor"] = manifest.get("extractor")
    settings["index_encoder"] = manifest.get("encoder")
    settings["aligner_used"] = args.aligner or (manifest.get("encoder") or {}).get("model")
    checkpoint = Checkpoint(args.output, settings, [q.id for q in questions])
    names = []
    for system, factory in reproduce_systems(index_dir, chosen, settings).items():
        names.append(system)
        if system in checkpoint.rows:
            print(f"{system}: reused from {checkpoint.path}", file=sys.stderr)
            continue
        result = evaluate_system(system, factory(), questions, ks=KS)
        checkpoint.add(system, result.row(), result.per_question)
    rows = [checkpoint.rows[name] for name in names]
    markdown = format_table(rows)
    print(markdown)
    checkpoint.finish()
    return {
        "settings": settings,
        "questions": len(questions),
        "table": rows,
        "markdown": markdown,
        "per_question": {name: checkpoint.per_question[name] for name in names},
    }
