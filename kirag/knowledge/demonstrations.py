"""Demonstrations as data: the reference's two pools (chain construction, triple extraction),
per dataset, with 5 chosen per input by embedding similarity, as jyfang6/kirag does.

A pool file is JSON (documented in docs/kirag.md, "KiRAG demonstrations"):

    {"format": "kirag-demonstrations/1",
     "constructor": {"<dataset>": [{"question": str, "chain": [str, ...], "answer": str}, ...]},
     "extraction":  {"<dataset>": [{"title": str, "text": str, "triples": [str, ...]}, ...]}}

Either section may be missing. `convert_reference_file` reads the reference's
`prompts/kg_selection|kg_construction/*_demonstrations.py` with `ast.literal_eval` (never by
importing or executing them): its chains are one comma-separated string, split on every comma
exactly as the reference does when it writes a demonstration; its triples are one string, split
on "\n" without dropping anything (a trailing "\n" stays, as the reference's prompt keeps it).

Demonstrations are ranked as the reference ranks them, with its untrained-E5 helpers
(retriever/e5.py), separate from the aligner: questions as "query: …" cut to 128 tokens,
documents as "passage: Title: …\nText: …" cut to 256 (`DemonstrationEncoder`).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from kirag.errors import KiragError

FORMAT = "kirag-demonstrations/1"
SHIPPED = "wikipedia"
NUM_DEMONSTRATIONS = 5
# The reference's demonstration ranker (retriever/e5.py as models.py and kg_generator.py call it)
QUERY_PREFIX, QUERY_MAX_LENGTH = "query: ", 128
PASSAGE_PREFIX, PASSAGE_MAX_LENGTH = "passage: ", 256


@dataclass(frozen=True)
class ChainDemonstration:
    """A question, its reasoning chain (steps as the constructor writes them) and answer."""

    question: str
    chain: tuple[str, ...]
    answer: str

    def text(self) -> str:
        """The reference's demonstration block for the constructor's system message."""
        thought = ". ".join(step.strip() for step in self.chain)
        return f"Question: {self.question}\nThought: {thought}. So the answer is: {self.answer}"


@dataclass(frozen=True)
class ExtractionDemonstration:
    """A document and the triples extracted from it."""

    title: str
    text: str
    triples: tuple[str, ...]

    def document(self) -> str:
        """The reference's document text ("Title: …\\nText: …"), also what is embedded."""
        return f"Title: {self.title}\nText: {self.text}"


@dataclass
class DemonstrationPools:
    """The constructor and extraction pools of one file, per dataset."""

    constructor: dict[str, list[ChainDemonstration]]
    extraction: dict[str, list[ExtractionDemonstration]]

    def chains(self, dataset: str) -> list[ChainDemonstration]:
        return _section(self.constructor, dataset, "constructor")

    def documents(self, dataset: str) -> list[ExtractionDemonstration]:
        return _section(self.extraction, dataset, "extraction")

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "constructor": {d: [_plain(x) for x in xs] for d, xs in self.constructor.items()},
            "extraction": {d: [_plain(x) for x in xs] for d, xs in self.extraction.items()},
        }


def _plain(demo) -> dict:
    data = asdict(demo)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


def _section(pools: dict, dataset: str, what: str) -> list:
    if dataset not in pools:
        raise KiragError(
            f"no {what} demonstrations for dataset {dataset!r}; have: {', '.join(pools) or 'none'}"
        )
    return pools[dataset]


def _strings(value, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise KiragError(f"{where}: expected a list of strings")
    return tuple(value)


def _field(item, name: str, where: str) -> str:
    if not isinstance(item, dict) or not isinstance(item.get(name), str):
        raise KiragError(f"{where}: needs a string field {name!r}")
    return item[name]


def parse_pools(data, source: str) -> DemonstrationPools:
    """Validate a decoded pool file; errors name `source` and the offending entry."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise KiragError(f'{source}: not a demonstration file (expected "format": "{FORMAT}")')
    constructor: dict[str, list[ChainDemonstration]] = {}
    for dataset, items in (data.get("constructor") or {}).items():
        constructor[dataset] = []
        for i, item in enumerate(items if isinstance(items, list) else [None]):
            where = f"{source}: constructor.{dataset}[{i}]"
            chain = _strings(item.get("chain") if isinstance(item, dict) else None, where)
            constructor[dataset].append(
                ChainDemonstration(
                    _field(item, "question", where), chain, _field(item, "answer", where)
                )
            )
    extraction: dict[str, list[ExtractionDemonstration]] = {}
    for dataset, items in (data.get("extraction") or {}).items():
        extraction[dataset] = []
        for i, item in enumerate(items if isinstance(items, list) else [None]):
            where = f"{source}: extraction.{dataset}[{i}]"
            triples = _strings(item.get("triples") if isinstance(item, dict) else None, where)
            extraction[dataset].append(
                ExtractionDemonstration(
                    _field(item, "title", where), _field(item, "text", where), triples
                )
            )
    return DemonstrationPools(constructor, extraction)


def load_pools(path: str | Path | None = None) -> DemonstrationPools:
    """A user's pool file, or the shipped one (demonstrations over the bundled Wikipedia sample)."""
    if path is None:
        text = resources.files("kirag.knowledge").joinpath("demonstrations", "wikipedia.json")
        return parse_pools(json.loads(text.read_text("utf-8")), "kirag/knowledge/demonstrations/wikipedia.json")  # fmt: skip
    path = Path(path)
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise KiragError(f"{path}: cannot read demonstrations ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", 1)
        raise KiragError(f"{path}:{line}: not valid JSON ({exc})") from None
    return parse_pools(data, str(path))


def convert_reference_file(path: str | Path, dataset: str) -> DemonstrationPools:
    """Read a reference `*_demonstrations.py` with `ast.literal_eval` on each top-level list
    assignment: `reasoning_chains_*_examplars` become constructor demonstrations,
    `generate_knowledge_triples_*_examplars` extraction ones (others are ignored)."""
    path = Path(path)
    try:
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise KiragError(f"{path}: cannot read as a demonstrations file ({exc})") from None
    constructor, extraction = [], []
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        name = getattr(node.targets[0], "id", "")
        if not name.endswith("_examplars"):
            continue
        try:
            value = ast.literal_eval(node.value)
        except ValueError as exc:
            raise KiragError(f"{path}:{node.lineno}: {name} is not a literal ({exc})") from None
        where = f"{path}:{node.lineno}: {name}"
        if name.startswith("reasoning_chains_"):
            for item in value:
                chains = _field(item, "chains", where)
                constructor.append(
                    ChainDemonstration(
                        _field(item, "question", where),
                        tuple(step.strip() for step in chains.split(",")),
                        _field(item, "answer", where),
                    )
                )
        elif name.startswith("generate_knowledge_triples_"):
            for item in value:
                triples = _field(item, "triples", where)
                extraction.append(
                    ExtractionDemonstration(
                        _field(item, "title", where),
                        _field(item, "text", where),
                        tuple(triples.split("\n")),  # lossless: "\n".join gives it back
                    )
                )
    return DemonstrationPools(
        {dataset: constructor} if constructor else {},
        {dataset: extraction} if extraction else {},
    )


EXTRACTION_INSTRUCTION = (
    "You are a knowledge graph constructor tasked with extracting knowledge triples in the form "
    "of <head entity; relation; tail entity> from a document. Each triple denotes a specific "
    "relationship between entities or an event. The head entity and tail entity can be the "
    "provided title or phrases in the text. If multiple tail entities share the same relation "
    "with a head entity, aggregate these tail entities using commas. Format your output in the "
    "form of <head entity; relation; tail entity>."
)


def extraction_shot(demonstration: ExtractionDemonstration) -> str:
    """One demonstration as the reference writes it: document, "\nKnowledge Triples: ", then
    its triples string (lines joined back with "\n", a trailing newline kept)."""
    return f"{demonstration.document()}\nKnowledge Triples: " + "\n".join(demonstration.triples)


def extraction_messages(
    title: str, text: str, demonstrations: Sequence[ExtractionDemonstration]
) -> list[dict[str, str]]:
    """The reference extractor's messages (knowledge_graph/kg_generator.py): system = instruction
    + "\n\n" + the demonstrations ("Title: …\nText: …\nKnowledge Triples: " + triples one per
    line); user = "Title: …\nText: …"; greedy, 512 new tokens, parsed with `<([^>]*)>`."""
    shots = [extraction_shot(d) for d in demonstrations]
    return [
        {"role": "system", "content": EXTRACTION_INSTRUCTION + "\n\n" + "\n\n".join(shots)},
        {"role": "user", "content": f"Title: {title}\nText: {text}"},
    ]


def fit_extraction_demonstrations(
    demonstrations: Sequence[ExtractionDemonstration],
    title: str,
    text: str,
    count_tokens,
    max_length: int,
) -> list[ExtractionDemonstration]:
    """The reference's fit: the longest run of the chosen demonstrations (best first) with which
    instruction + "\n\n" + demonstrations + "\n\n" + document count at most `max_length`
    tokens; when not even the first fits alone, the best is dropped and the rest tried again
    (none at all when nothing fits). `count_tokens` counts as the model's tokenizer encodes."""
    shots = [extraction_shot(d) for d in demonstrations]
    document = f"Title: {title}\nText: {text}"
    start = 0
    while start < len(shots):
        for num in range(len(shots) - start, 0, -1):
            prompt = (
                EXTRACTION_INSTRUCTION
                + "\n\n"
                + "\n\n".join(shots[start : start + num])
                + "\n\n"
                + document
            )
            if count_tokens(prompt) <= max_length:
                return list(demonstrations[start : start + num])
        start += 1
    return []


def encode_prefixed(
    model, texts: Sequence[str], prefix: str, max_length: int | None, batch_size: int = 32
) -> np.ndarray:
    """`prefix + text` for each text through a sentence-transformers model (anything with its
    `encode` and `max_seq_length`), cut to `max_length` tokens (None: the model's own limit);
    L2-normalised float32 rows."""
    before = model.max_seq_length
    model.max_seq_length = max_length or before
    try:
        vectors = model.encode(
            [prefix + t for t in texts],
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    finally:
        model.max_seq_length = before
    return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


class DemonstrationEncoder:
    """The reference's demonstration ranker: its untrained-E5 helpers' inputs ("query: ", 128
    tokens for questions; "passage: ", 256 for documents), separate from the aligner. `model`
    is a name/path (sentence-transformers) or an already loaded model object; the reference's
    model is intfloat/e5-large-v2."""

    def __init__(self, model, device: str | None = None, batch_size: int = 32):
        if isinstance(model, (str, Path)):
            from kirag.models import load_sentence_transformer

            self.model_name = str(model)
            model = load_sentence_transformer(str(model), device=device)
        else:
            self.model_name = type(model).__name__
        self.model = model
        self.batch_size = batch_size

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return encode_prefixed(self.model, texts, QUERY_PREFIX, QUERY_MAX_LENGTH, self.batch_size)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return encode_prefixed(
            self.model, texts, PASSAGE_PREFIX, PASSAGE_MAX_LENGTH, self.batch_size
        )

    def config(self) -> dict:
        return {
            "model": self.model_name,
            "query": [QUERY_PREFIX, QUERY_MAX_LENGTH],
            "passage": [PASSAGE_PREFIX, PASSAGE_MAX_LENGTH],
        }


def rank_by_similarity(
    input_vector: np.ndarray, pool_vectors: np.ndarray, k: int = NUM_DEMONSTRATIONS
) -> list[int]:
    """Indices of the `k` pool entries most similar to the input (inner product), best first,
    ordered as the reference orders them (`torch.argsort(..., descending=True)`, whose order
    among equal similarities is torch's own)."""
    if len(pool_vectors) == 0:
        return []
    from kirag.core.optional import require

    torch = require("torch", "kirag", "ranking demonstrations")
    scores = np.asarray(pool_vectors, dtype=np.float32) @ np.asarray(input_vector, np.float32)
    order = torch.argsort(torch.from_numpy(np.ascontiguousarray(scores)), descending=True)
    return order[:k].tolist()


class ChainDemonstrationSelector:
    """Chooses the constructor's demonstrations per question: the pool's questions and the input
    question are encoded as queries (the reference: E5 "query: ", 128 tokens) and the `k` most
    similar kept."""

    def __init__(
        self, demonstrations: Sequence[ChainDemonstration], aligner, k: int = NUM_DEMONSTRATIONS
    ):
        self.demonstrations = list(demonstrations)
        self.aligner = aligner
        self.k = k
        self._vectors = (
            aligner.encode_queries([d.question for d in self.demonstrations])
            if self.demonstrations and k > 0
            else np.zeros((0, 1), np.float32)
        )

    def select(self, question: str) -> list[ChainDemonstration]:
        if not self.demonstrations or self.k <= 0:
            return []
        vector = self.aligner.encode_queries([question])[0]
        return [self.demonstrations[i] for i in rank_by_similarity(vector, self._vectors, self.k)]


class ExtractionDemonstrationSelector:
    """Chooses extraction demonstrations per document: "Title: …\\nText: …" of the document and of
    the pool encoded as passages (the reference: E5 "passage: ", 256 tokens), `k` most similar."""

    def __init__(
        self,
        demonstrations: Sequence[ExtractionDemonstration],
        aligner,
        k: int = NUM_DEMONSTRATIONS,
    ):
        self.demonstrations = list(demonstrations)
        self.aligner = aligner
        self.k = k
        self._vectors = (
            aligner.encode_passages([d.document() for d in self.demonstrations])
            if self.demonstrations and k > 0
            else np.zeros((0, 1), np.float32)
        )

    def select_many(self, documents: Sequence[str]) -> list[list[ExtractionDemonstration]]:
        if not self.demonstrations or self.k <= 0 or not documents:
            return [[] for _ in documents]
        vectors = self.aligner.encode_passages(list(documents))
        return [
            [self.demonstrations[i] for i in rank_by_similarity(v, self._vectors, self.k)]
            for v in vectors
        ]


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m kirag.knowledge.demonstrations REFERENCE.py DATASET OUT.json`: convert a reference
    demonstrations file to kirag's pool format (written atomically)."""
    import sys

    from kirag.core.atomic import atomic_write

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3:
        print("usage: python -m kirag.knowledge.demonstrations REFERENCE.py DATASET OUT.json", file=sys.stderr)  # fmt: skip
        return 2
    try:
        pools = convert_reference_file(args[0], args[1])
    except KiragError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with atomic_write(args[2]) as fh:
        json.dump(pools.to_json(), fh, ensure_ascii=False, indent=1)
    print(
        f"wrote {args[2]}: {sum(map(len, pools.constructor.values()))} constructor and "
        f"{sum(map(len, pools.extraction.values()))} extraction demonstrations"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
