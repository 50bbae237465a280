"""Load any index folder as a retriever: the manifest's "kind" picks the class."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kirag.retrieval.base import Retriever
from kirag.retrieval.index_folder import read_manifest

from kirag.core.lazy import check_target, import_target
from kirag.errors import IndexLoadError

ENTRY_POINT_GROUP = "kirag.retrievers"

# index kind -> "module:Class" (a class taking the index folder as first argument). Packages add
# their own kinds with register_retriever or through the "kirag.retrievers" entry point (KiRAG's
# triple index registers "triples" that way), so this layer names none of them.
_RETRIEVERS: dict[str, str] = {
    "bm25": "kirag.retrieval.bm25:BM25Retriever",
    "dense": "kirag.retrieval.dense:DenseRetriever",
}


def register_retriever(kind: str, target: str) -> None:
    """Make index folders whose manifest says `kind` load as `target` ("module:Class")."""
    _RETRIEVERS[kind] = check_target(target)


def _entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def retriever_kinds() -> dict[str, str]:
    """Every index kind this installation can load, with its "module:Class"."""
    return _entry_points() | _RETRIEVERS


def load_retriever(index_dir: str | Path, **options) -> Retriever:
    """The retriever for an index folder built by `kirag index` (bm25, dense, triples, ...)."""
    kind = read_manifest(index_dir).get("kind")
    kinds = retriever_kinds()
    if kind not in kinds:
        raise IndexLoadError(
            f"{index_dir}: unknown index kind {kind!r}; known: {', '.join(sorted(kinds))}"
        )
    return import_target(kinds[kind])(index_dir, **options)


def check_same_corpus(index_dirs: Sequence[str | Path]) -> None:
    """Refuse to fuse indexes built from different corpora (their document ids would mix)."""
    first = index_dirs[0]
    expected = read_manifest(first).get("corpus_fingerprint")
    for other in index_dirs[1:]:
        found = read_manifest(other).get("corpus_fingerprint")
        if expected and found and found != expected:
            raise IndexLoadError(
                f"{first} and {other} were built from different corpora: fusing them would mix "
                "two collections; build every fused index from the same corpus"
            )


def load_retrievers(index_dirs: Sequence[str | Path], fusion: str = "rrf", **options) -> Retriever:
    """One retriever for one folder; a HybridRetriever fusing several."""
    if len(index_dirs) > 1:
        check_same_corpus(index_dirs)
    retrievers = [load_retriever(path) for path in index_dirs]
    if len(retrievers) == 1:
        return retrievers[0]
    from kirag.retrieval.hybrid import HybridRetriever

    return HybridRetriever(retrievers, fusion=fusion, **options)
