"""The triple index: knowledge triples embedded as text in FAISS, the map triple -> document ->
sentence in SQLite, and an entity graph (SQLite adjacency) for neighbourhood expansion.

Built while the triples stream past, so the build's memory stays flat in the corpus size beyond
the FAISS index itself (IVF-PQ for large corpora): rows go to SQLite as they come, the triple
texts are encoded into `.npy` shards in a resumable work folder beside the index (as dense
indexes do), and the shards are added to FAISS through memory maps, a chunk at a time.

Folder layout (format 3; written atomically; `manifest.json` last):
    manifest.json       what was built and how (extractor id, encoder, dimension, counts) and the
                        document indexes inside (`document_indexes`: name -> sub-folder)
    triples.sqlite      one row per triple (position = FAISS id), with its document and sentence
    triples.faiss       the triple vectors, stored once (FAISS's own file format); graph-expanded
                        candidates are scored with the vectors the index reconstructs
    graph.sqlite        the entity graph: entities + adjacency rows carrying triple positions
                        (kirag.knowledge.entity_graph); a neighbourhood loads without the graph
    docs.sqlite         the corpus passages (DocStore), stored once: the document indexes share it
    bm25/, dense/       first-stage document indexes (their manifests point at ../docs.sqlite)
No pickle anywhere: everything loads as data. Older folders (format 1: corpus stored three
times, triple vectors twice; format 2: the graph as one node-link JSON loaded whole) are refused
with the command that rebuilds them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kirag.core.atomic import (
    atomic_directory,
    build_lock,
    check_not_inside,
    check_overwritable,
    write_json,
)
from kirag.core.optional import check_extra
from kirag.core.ranges import COUNT
from kirag.core.settings import check_settings, setting
from kirag.errors import IndexLoadError, OutputExistsError
from kirag.io.docstore import DocStore
from kirag.knowledge.entity_graph import FILENAME as GRAPH_FILE
from kirag.knowledge.entity_graph import (  # build_entity_graph: re-exported
    EntityGraph,
    GraphWriter,
    build_entity_graph,  # noqa: F401
)
from kirag.knowledge.titles import TitleLookup
from kirag.knowledge.triples import Triple
from kirag.models import DEFAULT_EMBEDDER
from kirag.retrieval.encoder_backends import EncoderBackend
from kirag.types import Document

if TYPE_CHECKING:
    from kirag.knowledge.extraction import TripleExtractor

KIND = "triples"
FORMAT_VERSION = 3


def triple_embedding_text(triple: Triple) -> str:
    """How a triple is embedded: its document title, then the triple read as a sentence."""
    return f"title: {triple.title or ''}, text: {triple.sentence_text}"


@dataclass(slots=True)
class TripleHit:
    """A triple found for a query, with its position in the index and its similarity."""

    position: int
    score: float
    triple: Triple


class TripleIndex:
    """Loads a triple index folder and answers: which triples are near this text, which triples
    touch these entities, and which triples come from these documents."""

    def __init__(self, path: str | Path, encoder=None):
        from kirag.retrieval.faiss_index import load_faiss_index
        from kirag.retrieval.index_folder import read_manifest

        self.path = Path(path)
        self.manifest = read_manifest(self.path, KIND)
        version = self.manifest.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexLoadError(
                f"{self.path}: a triple index in format {version}, this kirag reads format "
                f"{FORMAT_VERSION}; rebuild it with overwrite=True (`kirag index triples "
                f"--corpus CORPUS --index {self.path} --overwrite`; the extraction cache makes "
                "it quick)"
            )
        check_extra("kirag", "a KiRAG triple index")
        self.faiss = load_faiss_index(self.path / "triples.faiss")
        self._db = sqlite3.connect(
            f"file:{self.path / 'triples.sqlite'}?mode=ro", uri=True, check_same_thread=False
        )
        self.docstore = DocStore(self.path / DocStore.FILENAME)
        self.graph = EntityGraph(self.path / GRAPH_FILE)
        self._encoder = encoder
        self.titles = TitleLookup(self.docstore)
        self._document_retrievers: dict[str, object] | None = None
        self._passage_row: dict[str, int] = {}
        if len(self) != self.faiss.ntotal:
            raise IndexLoadError(
                f"{self.path}: {len(self)} triples but {self.faiss.ntotal} vectors"
            )

    @property
    def encoder(self):
        """The encoder the index was built with (loaded on first use); refuses another model."""
        if self._encoder is None:
            from kirag.retrieval.dense import Encoder, built_runtime

            built = self.manifest["encoder"]
            self._encoder = Encoder(
                built["model"], normalize=built["normalize"], **built_runtime(built)
            )
        return self._encoder

    def __len__(self) -> int:
        return int(self.manifest["counts"]["triples"])

    def triples(self, positions: Sequence[int]) -> list[Triple]:
        found: dict[int, Triple] = {}
        unique = sorted({int(p) for p in positions})
        for start in range(0, len(unique), 900):
            chunk = unique[start : start + 900]
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(
                f"SELECT pos, data FROM triples WHERE pos IN ({marks})", chunk
            ):
                found[row[0]] = Triple.from_dict(json.loads(row[1]))
        return [found[int(p)] for p in positions]

    def search(self, queries: Sequence[str], k: int) -> list[list[TripleHit]]:
        """The `k` nearest triples of each query text (inner product of normalised vectors)."""
        vectors = self.encoder.encode(list(queries))
        scores, ids = self.faiss.search(np.asarray(vectors, dtype=np.float32), min(k, len(self)))
        out = []
        for row_scores, row_ids in zip(scores, ids, strict=True):
            keep = [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
            triples = self.triples([i for i, _ in keep])
            out.append([TripleHit(i, s, t) for (i, s), t in zip(keep, triples, strict=True)])
        return out

    def score(self, query_vector: np.ndarray, positions: Sequence[int]) -> np.ndarray:
        """Similarity of one encoded query to the stored vectors at `positions`."""
        if not positions:
            return np.zeros(0, dtype=np.float32)
        vectors = self.faiss.reconstruct_batch(np.asarray(positions, dtype=np.int64))
        return np.asarray(vectors @ query_vector, dtype=np.float32)

    def document_retrievers(self) -> dict[str, object]:
        """The first-stage document indexes inside the folder, as the manifest lists them, loaded
        once (the dense one with this index's encoder: it was built with the same model)."""
        if self._document_retrievers is None:
            from kirag.retrieval.dense import DenseRetriever
            from kirag.retrieval.factory import load_retriever

            self._document_retrievers = {}
            for name, folder in self.manifest.get("document_indexes", {}).items():
                if Path(folder).name != folder or folder in ("", ".", ".."):
                    raise IndexLoadError(f"{self.path}: document index {name!r} at {folder!r}")
                path = self.path / folder
                self._document_retrievers[name] = (
                    DenseRetriever(path, encoder=self.encoder)
                    if name == "dense"
                    else load_retriever(path)
                )
        return self._document_retrievers

    @property
    def has_passage_vectors(self) -> bool:
        """Whether the folder holds a dense document index built with the same encoder."""
        return "dense" in self.manifest.get("document_indexes", {})

    def passage_scores(self, query_vector: np.ndarray, triples: Sequence[Triple]) -> np.ndarray:
        """Similarity of one encoded query to the passage each triple comes from (dense index)."""
        if not triples:
            return np.zeros(0, dtype=np.float32)
        if not self._passage_row:
            self._passage_row = {doc_id: row for row, doc_id in enumerate(self.docstore.all_ids())}
        dense = self.document_retrievers()["dense"]
        rows = [self._passage_row[t.doc_id] for t in triples]
        return np.asarray(dense.passage_vectors(rows) @ query_vector, dtype=np.float32)

    def neighbours(self, entities: Iterable[str], hops: int = 1) -> set[int]:
        """Positions of the triples within `hops` edges of the given entities (by entity key),
        read from graph.sqlite: only the neighbourhood is loaded."""
        return self.graph.neighbours(entities, hops)

    def positions_of_titles(self, mentions: Iterable[str]) -> list[int]:
        """Positions of the triples of every document whose title a mention names: the mention
        is the title, or one of its word n-grams is ("Canadian province of Alberta" -> Alberta)."""
        doc_ids = self.documents_of_titles(mentions)
        return self.positions_of_documents(doc_ids) if doc_ids else []

    def documents_of_titles(self, mentions: Iterable[str]) -> list[str]:
        """Ids of the documents whose title a mention names (the title or one of its word
        n-grams), in the order the mentions name them."""
        return self.titles.documents(mentions)

    def positions_of_documents(self, doc_ids: Iterable[str]) -> list[int]:
        ids = list(dict.fromkeys(doc_ids))
        positions: list[int] = []
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            marks = ",".join("?" * len(chunk))
            positions += [
                row[0]
                for row in self._db.execute(
                    f"SELECT pos FROM triples WHERE doc_id IN ({marks}) ORDER BY pos", chunk
                )
            ]
        return positions


@dataclass(slots=True)
class TripleTable:
    """What streaming the triples into triples.sqlite and graph.sqlite produced."""

    triples: int
    entities: int
    edges: int
    digest: str  # of every row in order: names the resumable encoding work folder


def _write_triple_tables(
    folder: Path, triples_by_doc: Iterable[tuple[Document, list[Triple]]]
) -> TripleTable:
    """triples.sqlite (one row per triple, its position = the FAISS id, as the key) and the
    entity graph, written while the triples stream past (none kept in memory)."""
    digest = hashlib.sha256()
    db = sqlite3.connect(folder / "triples.sqlite")
    db.execute(
        "CREATE TABLE triples (pos INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, data TEXT NOT NULL)"
    )
    graph = GraphWriter(folder / GRAPH_FILE)
    position = 0
    for _, triples in triples_by_doc:
        for triple in triples:
            data = json.dumps(triple.to_dict(), ensure_ascii=False)
            db.execute("INSERT INTO triples VALUES (?, ?, ?)", (position, triple.doc_id, data))
            graph.add(position, triple)
            digest.update(data.encode("utf-8") + b"\n")
            position += 1
    db.execute("CREATE INDEX triples_doc ON triples (doc_id)")
    db.commit()
    db.close()
    counts = graph.close()
    return TripleTable(position, counts["entities"], counts["edges"], digest.hexdigest())


def _embedding_texts(path: Path):
    """The embedding text of every triple in position order, streamed from triples.sqlite."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for (data,) in db.execute("SELECT data FROM triples ORDER BY pos"):
            yield triple_embedding_text(Triple.from_dict(json.loads(data)))
    finally:
        db.close()


def _build_triple_faiss(
    tmp: Path,
    index_dir: Path,
    table: TripleTable,
    fingerprint: str,
    encoder,
    index_type: str,
    batch_size: int,
    shard_size: int,
    faiss_options: dict,
    executor=None,
) -> int:
    """Encode the triple texts into shards (resumable, beside the index), add them to FAISS
    through memory maps and save triples.faiss; the dimension. The vectors are stored once."""
    from kirag.io.npy_files import NpyRows
    from kirag.retrieval.dense import encode_to_shards, work_dir_for
    from kirag.retrieval.faiss_index import build_faiss_from_blocks, save_faiss_index

    work = work_dir_for(index_dir, f"triples:{fingerprint}:{table.digest}", encoder)
    texts = _embedding_texts(tmp / "triples.sqlite")
    shards = encode_to_shards(encoder, texts, work, table.triples, shard_size, batch_size, executor)
    blocks = [NpyRows(path) for path in shards]  # read a chunk at a time, nothing left mapped
    index = build_faiss_from_blocks(blocks, index_type, **faiss_options)
    if hasattr(index, "make_direct_map"):  # IVF: `score` reconstructs vectors by position
        index.make_direct_map()
    save_faiss_index(index, tmp / "triples.faiss")
    dimension = int(index.d)
    del blocks, index
    shutil.rmtree(work, ignore_errors=True)
    return dimension


def build_triple_index(
    documents: Iterable[Document],
    triples_by_doc: Iterable[tuple[Document, list[Triple]]],
    index_dir: str | Path,
    encoder,
    extractor_id: str,
    index_type: str = "flat",
    overwrite: bool = False,
    batch_size: int = 256,
    with_bm25: bool = True,
    with_dense: bool = True,
    shard_size: int | None = None,
    faiss_options: dict | None = None,
    executor=None,
) -> Path:
    """Write a triple index folder from documents and their extracted triples (atomically),
    streaming: memory stays flat in the number of triples beyond the FAISS index. With
    `with_bm25` / `with_dense`, BM25 and dense document indexes are built inside it (`bm25/`,
    `dense/`, the latter with the same encoder) for the retriever's first stage.
    `faiss_options` go to the FAISS index (ivfpq: nlist, pq_m, nprobe, seed). With an
    `executor` (kirag.scale) the triple and passage encodings run in shards on it."""
    from kirag.retrieval.dense import DEFAULT_SHARD_SIZE

    faiss_options = dict(faiss_options or {})
    index_dir = Path(index_dir)
    with atomic_directory(index_dir, overwrite=overwrite) as tmp:
        docstore = DocStore.build(tmp / DocStore.FILENAME, documents)
        table = _write_triple_tables(tmp, triples_by_doc)
        if not table.triples:
            raise IndexLoadError(
                f"no triples were extracted from the corpus by {extractor_id}: nothing to index "
                "(the LLM wrote none that the triple parser reads; a small LLM may not follow "
                "the prompt: try another extractor or a larger model)",
                parameters=("extractor", "model"),
            )
        dimension = _build_triple_faiss(
            tmp,
            index_dir,
            table,
            docstore.fingerprint,
            encoder,
            index_type,
            batch_size,
            shard_size or DEFAULT_SHARD_SIZE,
            faiss_options,
            executor,
        )
        write_json(
            tmp / "manifest.json",
            {
                "kind": KIND,
                "format_version": FORMAT_VERSION,
                "extractor": extractor_id,
                "encoder": {
                    "model": encoder.model_name,
                    "dimension": dimension,
                    "normalize": encoder.normalize,
                    "backend": encoder.backend,
                    "quantize": encoder.quantize,
                },
                "faiss": {"type": index_type, **faiss_options},
                "counts": {
                    "documents": len(docstore),
                    "triples": table.triples,
                    "entities": table.entities,
                    "edges": table.edges,
                },
                "corpus_fingerprint": docstore.fingerprint,
                "embedding_text": "title: {title}, text: {head} {relation} {tail}",
                "document_indexes": {
                    name: name for name, on in (("bm25", with_bm25), ("dense", with_dense)) if on
                },
            },
        )
        if with_bm25:
            from kirag.retrieval.bm25 import BM25Retriever

            BM25Retriever.build(docstore, tmp / "bm25")  # shares docs.sqlite
        if with_dense:
            from kirag.retrieval.dense import DenseRetriever

            DenseRetriever.build(docstore, tmp / "dense", encoder=encoder, executor=executor)
        docstore.close()
    return index_dir


def _extractor_names() -> list[str]:
    from kirag.knowledge.extraction import EXTRACTORS

    return list(EXTRACTORS)


@dataclass(frozen=True)
class TripleIndexSettings:
    """How a triple index is built from a corpus: the extractor, the encoder of the triples and
    its FAISS index, the extraction batches, and the document indexes kept beside the triples
    (the chains' first stage and candidate expansion)."""

    extractor: str = setting(
        "spacy",
        "spacy: dependency parse, no LLM (offline default); reference: the KiRAG reference's "
        "prompt (instruction + 5 demonstrations chosen per document, 512 new tokens); llm: "
        "kirag's own short few-shot prompt for small models",
        choices=_extractor_names,
    )
    encoder: str = setting(DEFAULT_EMBEDDER, "sentence-transformers model that embeds the triples")
    encoder_backend: str = setting(
        "torch", "how the encoder runs (as kirag index dense's)", cli=False
    )
    quantize: str | None = setting(None, "the encoder's quantization", cli=False)
    index_type: str = setting("flat", "the triples' FAISS index type", cli=False)
    batch_size: int = setting(
        16, "documents per extraction batch (the resume unit)", range=COUNT, affects="nothing"
    )
    with_bm25: bool = setting(
        True, "build the BM25 document index used for candidate expansion", flag="--bm25"
    )
    with_dense: bool = setting(
        True, "build the dense document index used for candidate expansion", flag="--dense"
    )

    def __post_init__(self) -> None:
        check_settings(self)


TRIPLE_DEFAULTS = TripleIndexSettings()


def build_from_corpus(
    corpus,
    index_dir: str | Path,
    extractor: str | TripleExtractor = TRIPLE_DEFAULTS.extractor,
    extractor_options: dict | None = None,
    encoder: str = TRIPLE_DEFAULTS.encoder,
    index_type: str = TRIPLE_DEFAULTS.index_type,
    cache: str | Path | None = None,
    batch_size: int = TRIPLE_DEFAULTS.batch_size,
    with_bm25: bool = TRIPLE_DEFAULTS.with_bm25,
    with_dense: bool = TRIPLE_DEFAULTS.with_dense,
    overwrite: bool = False,
    on_error: str = "raise",
    faiss_options: dict | None = None,
    executor=None,
    encoder_backend: str = TRIPLE_DEFAULTS.encoder_backend,
    quantize: str | None = TRIPLE_DEFAULTS.quantize,
) -> dict:
    """Extract triples from a corpus (cached and resumable) and build a triple index from them;
    the settings are TripleIndexSettings' fields. `extractor` is a registered name or a
    TripleExtractor object (e.g. ImportedTripleExtractor).
    The extraction cache lives outside the index (default: `.extraction-cache.sqlite` beside
    it), so an interrupted build keeps every extracted batch. The target's build lock is held
    throughout. With an `executor` (kirag.scale) the extraction runs in shards on it."""
    from kirag.io.corpus import resolve_corpus_path

    name = extractor if isinstance(extractor, str) else TRIPLE_DEFAULTS.extractor
    settings = TripleIndexSettings(
        name, encoder, encoder_backend, quantize, index_type, batch_size, with_bm25, with_dense
    )
    EncoderBackend(encoder_backend, quantize)  # a bad name fails before extraction
    index_dir = Path(index_dir)
    if isinstance(corpus, str | Path):
        check_not_inside(index_dir, resolve_corpus_path(corpus))
    # the lock covers extraction too: two builds of one target never share its caches
    with build_lock(index_dir):
        if index_dir.exists():
            if not overwrite:
                raise OutputExistsError(
                    f"{index_dir} already exists; pass overwrite=True", parameters=("overwrite",)
                )
            check_overwritable(index_dir)
        return _build_from_corpus(
            corpus,
            index_dir,
            settings,
            extractor,
            extractor_options or {},
            cache,
            BuildRun(overwrite, on_error, faiss_options or {}, executor),
        )


@dataclass(frozen=True)
class BuildRun:
    """How one build runs, beside its settings: replacing an index, bad lines, FAISS options,
    the executor."""

    overwrite: bool
    on_error: str
    faiss_options: dict
    executor: object


def _build_from_corpus(
    corpus,
    index_dir: Path,
    settings: TripleIndexSettings,
    extractor: str | TripleExtractor,
    extractor_options: dict,
    cache: str | Path | None,
    run: BuildRun,
) -> dict:
    import functools

    from kirag.io.corpus import read_corpus
    from kirag.knowledge.extraction import TripleStore, extract_corpus, make_extractor
    from kirag.retrieval.dense import Encoder

    documents = (
        read_corpus(corpus, on_error=run.on_error)
        if isinstance(corpus, str | Path)
        else list(corpus)
    )
    extractor_obj = (
        make_extractor(extractor, **extractor_options)
        if isinstance(extractor, str)
        else extractor  # an extractor object, e.g. an imported KG cache
    )
    cache_path = Path(cache) if cache else index_dir.parent / ".extraction-cache.sqlite"
    try:
        store = TripleStore(cache_path)
        stats = extract_corpus(
            documents,
            extractor_obj,
            store,
            batch_size=settings.batch_size,
            executor=run.executor,
            # a worker builds its own extractor by name rather than receive this one pickled
            factory=functools.partial(make_extractor, extractor, **extractor_options)
            if isinstance(extractor, str)
            else None,
        )
    except sqlite3.Error as exc:  # e.g. a full disk: name the cache, not just "disk is full"
        from kirag.core.atomic import as_write_error

        raise as_write_error(exc, cache_path) from exc
    pairs = ((doc, store.get(doc.id, extractor_obj.id) or []) for doc in documents)
    build_triple_index(
        documents,
        pairs,
        index_dir,
        Encoder(settings.encoder, backend=settings.encoder_backend, quantize=settings.quantize),
        extractor_obj.id,
        settings.index_type,
        run.overwrite,
        with_bm25=settings.with_bm25,
        with_dense=settings.with_dense,
        faiss_options=run.faiss_options,
        executor=run.executor,
    )
    store.close()
    manifest = json.loads((index_dir / "manifest.json").read_text("utf-8"))
    return {
        "extractor": extractor_obj.id,
        "documents": stats.documents,
        "extracted": stats.extracted,
        "cached": stats.cached,
        "triples": manifest["counts"]["triples"],
        "entities": manifest["counts"]["entities"],
        "cache": str(store.path),
    }
