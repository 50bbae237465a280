"""Dense retrieval: a sentence-transformers encoder and FAISS.

Passages are encoded in shards written to disk as they are produced (`.npy`, atomically), in a
work folder beside the index that survives a crash: a re-run with the same corpus and model
resumes after the last complete shard. The shards are computed by an executor (kirag.scale):
in this process by default, or on a pool of Ray workers that each load the encoder once. The
vectors are then merged into one memory-mapped
`embeddings.npy`, so a large corpus never sits twice in memory. The manifest records the model,
dimension and normalisation, and loading refuses another encoder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from kirag.retrieval.encoder_backends import BACKENDS as ENCODER_BACKENDS
from kirag.retrieval.encoder_backends import QUANTIZATIONS, EncoderBackend, attach_backend
from kirag.retrieval.faiss_index import (
    INDEX_TYPES,
    build_faiss_index,
    load_faiss_index,
    save_faiss_index,
)
from kirag.retrieval.index_folder import (
    Corpus,
    IndexedRetriever,
    Scored,
    build_index_folder,
    write_build_record,
)

from kirag.core.atomic import WORK_MARK, atomic_write
from kirag.core.interrupts import checkpoint
from kirag.core.optional import check_extra
from kirag.core.ranges import COUNT
from kirag.core.settings import as_record, check_settings, setting
from kirag.errors import IndexLoadError
from kirag.io.docstore import DocStore
from kirag.io.lines import OnError
from kirag.io.npy_files import concatenate_npy
from kirag.models import DEFAULT_EMBEDDER, load_sentence_transformer, resolve_model
from kirag.scale import Executor, SerialExecutor, Shard, cut_into_shards

log = logging.getLogger(__name__)

DEFAULT_SHARD_SIZE = 8192


def model_ref(spec) -> str:
    """How an index names its encoder so it can load it again: the short name of a packaged
    model or a hub id, the absolute path of a local model."""
    return spec.location if spec.source == "local" else spec.name


class Encoder:
    """A sentence-transformers model by short name, path or hub id; float32 output, L2
    normalised by default (cosine = inner product). Optional query/passage prefixes (E5...).
    `backend="onnx"|"openvino"` (optionally `quantize="int8"`) runs its transformer through a
    cached export for faster CPU encoding (see kirag.retrieval.encoder_backends)."""

    def __init__(
        self,
        model: str = DEFAULT_EMBEDDER,
        batch_size: int = 32,
        normalize: bool = True,
        device: str | None = None,
        query_prefix: str = "",
        passage_prefix: str = "",
        max_length: int | None = None,
        backend: str = "torch",
        quantize: str | None = None,
    ):
        check_extra("dense", "a sentence-transformers encoder")  # before the model is looked up
        self.runtime = EncoderBackend(backend, quantize)  # bad names fail before any load
        self.runtime.check_installed()  # so does a missing extra
        self.spec = resolve_model(model, "embedder")
        self.model_name = model_ref(self.spec)
        self.batch_size = batch_size
        self.normalize = normalize
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.model = load_sentence_transformer(model, device=device)
        if max_length is not None:
            self.model.max_seq_length = max_length
        attach_backend(self.model, self.spec.location, self.runtime)

    @property
    def backend(self) -> str:
        return self.runtime.backend

    @property
    def quantize(self) -> str | None:
        return self.runtime.quantize

    @property
    def dimension(self) -> int:
        get = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        return int(get())

    def encode(
        self, texts: Sequence[str], batch_size: int | None = None, show_progress: bool = False
    ) -> np.ndarray:
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size or self.batch_size,
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode([self.query_prefix + t for t in texts])

    def encode_passages(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        return self.encode([self.passage_prefix + t for t in texts], batch_size)

    def config(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "dimension": self.dimension,
            "normalize": self.normalize,
            "query_prefix": self.query_prefix,
            "passage_prefix": self.passage_prefix,
            "backend": self.backend,
            "quantize": self.quantize,
        }


def encoder_settings(encoder: Encoder) -> dict[str, Any]:
    """The arguments that load the same encoder again in another process (a Ray worker; the
    device is left to the worker: a GPU when it was given one)."""
    return {
        "model": encoder.model_name,
        "batch_size": encoder.batch_size,
        "normalize": encoder.normalize,
        "query_prefix": encoder.query_prefix,
        "passage_prefix": encoder.passage_prefix,
        "max_length": encoder.model.max_seq_length,
        "backend": encoder.backend,
        "quantize": encoder.quantize,
    }


class EncodeTask:
    """Encodes one shard of passages into `work_dir/shard_NNNNN.npy` (atomically). Sent to
    workers without its model: `setup` loads the encoder there, once."""

    # said with the estimated time of a long encoding (kirag.core.cost)
    cost_hint = (
        "--encoder-backend onnx or openvino on a CPU, --device cuda, Ray workers (--workers N)"
    )

    def __init__(
        self,
        settings: dict[str, Any],
        work_dir: Path,
        batch_size: int | None = None,
        encoder: Encoder | None = None,
    ):
        self.settings = settings
        self.work_dir = Path(work_dir)
        self.batch_size = batch_size
        self.encoder = encoder

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "encoder": None}

    def setup(self) -> None:
        if self.encoder is None:
            self.encoder = Encoder(**self.settings)

    def path(self, shard: Shard) -> Path:
        return self.work_dir / f"{shard.name}.npy"

    def done(self, shard: Shard, rows: Sequence[str]) -> bool:
        return _complete_shard(self.path(shard), len(rows))

    def run(self, shard: Shard, rows: Sequence[str]) -> int:
        checkpoint("index-dense:shard")
        vectors = self.encoder.encode_passages(list(rows), self.batch_size)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path(shard), "wb") as fh:  # a failed write leaves no temporary
            np.save(fh, vectors)
        return len(rows)


def encode_to_shards(
    encoder: Encoder,
    texts: Iterable[str],
    work_dir: Path,
    total: int,
    shard_size: int = DEFAULT_SHARD_SIZE,
    batch_size: int | None = None,
    executor: Executor | None = None,
) -> list[Path]:
    """Encode `texts` into `work_dir/shard_NNNNN.npy` files of `shard_size` vectors, in this
    process or on the workers of `executor` (default: serial). Shards already present with the
    right shape are kept (resume); each new one is written atomically. The paths, in order."""
    executor = executor or SerialExecutor()
    work_dir.mkdir(parents=True, exist_ok=True)
    task = EncodeTask(
        encoder_settings(encoder),
        work_dir,
        batch_size,
        encoder=None if executor.remote else encoder,
    )
    report = executor.run(
        task,
        cut_into_shards(texts, shard_size),
        total=total,
        desc="encoding passages",
        unit="doc",
    )
    return [work_dir / f"shard_{i:05d}.npy" for i in sorted(report.computed + report.skipped)]


def _complete_shard(path: Path, rows: int) -> bool:
    if not path.exists():
        return False
    try:
        return np.load(path, mmap_mode="r").shape[0] == rows
    except (ValueError, OSError):
        return False


def work_dir_for(index_dir: Path, fingerprint: str, encoder: Encoder) -> Path:
    """The resumable encoding folder of this (corpus, model) pair, beside the index."""
    key = hashlib.sha256(
        json.dumps([fingerprint, encoder.config()], sort_keys=True).encode()
    ).hexdigest()[:16]
    return index_dir.parent / f".{index_dir.name}{WORK_MARK}{key}"


def built_runtime(built: dict[str, Any]) -> dict[str, Any]:
    """The encoder backend an index manifest records (indexes from before: torch float32)."""
    return {"backend": built.get("backend", "torch"), "quantize": built.get("quantize")}


def check_runtime(path: Path, encoder: Encoder, built: dict[str, Any]) -> None:
    """Refuse to search an index with another encoder backend than it was built with: queries
    must be embedded by the runtime that embedded the passages."""
    wanted = built_runtime(built)
    if (encoder.backend, encoder.quantize) != (wanted["backend"], wanted["quantize"]):
        raise IndexLoadError(
            f"{path} was built with the {_runtime_label(**wanted)} encoder backend; refusing "
            f"to search it with {_runtime_label(encoder.backend, encoder.quantize)}"
        )


def _runtime_label(backend: str, quantize: str | None) -> str:
    return f"{backend} {quantize}" if quantize else backend


@dataclass(frozen=True)
class DenseSettings:
    """How a dense index is built: the encoder and how it runs (recorded in the index: queries
    are encoded the same way), the FAISS index, and the resumable encoding's shards."""

    model: str = setting(
        DEFAULT_EMBEDDER,
        "sentence-transformers model: short name, local path or hub id (a folder from "
        "kirag train encoder)",
        aliases=("--encoder",),
    )
    index_type: str = setting(
        "flat",
        "FAISS index type: flat (exact), hnsw (one node only: HNSW graphs cannot be merged), "
        "ivfpq (compressed, ~m bytes a vector; trained on a seeded sample, filled shard by shard "
        "and merged: for large corpora)",
        choices=INDEX_TYPES,
    )
    nlist: int | None = setting(None, "ivfpq: inverted lists (default ~4 sqrt(n))", range=COUNT)
    pq_m: int | None = setting(
        None,
        "ivfpq: PQ sub-quantizers, bytes per vector; must divide the dimension (default: the "
        "largest divisor <= 64 with >= 4 dimensions each, 64 for 384-d)",
        range=COUNT,
    )
    batch_size: int = setting(32, "encoding batch size", range=COUNT, affects="rounding")
    shard_size: int = setting(
        DEFAULT_SHARD_SIZE,
        "passages per on-disk embedding shard (resume unit)",
        range=COUNT,
        affects="nothing",
    )
    device: str | None = setting(
        None, "torch device (default: cuda when available, else cpu)", affects="rounding"
    )
    encoder_backend: str = setting(
        "torch",
        "torch (default, the reference), or onnx / openvino: a cached export of the transformer "
        "for faster CPU encoding (extras onnx, openvino)",
        choices=ENCODER_BACKENDS,
        option="backend",
    )
    quantize: str | None = setting(
        None,
        "int8: int8 weights for --encoder-backend onnx|openvino (faster, agrees less); bf16: "
        "bfloat16 arithmetic for --encoder-backend openvino on CPUs that have it; int8-mixed: "
        "openvino int8 with its most sensitive matrix products kept in bfloat16 (between the "
        "two; see docs/retrieval.md)",
        choices=QUANTIZATIONS,
    )

    def __post_init__(self) -> None:
        check_settings(self)

    def faiss_options(self) -> dict[str, int]:
        """The FAISS options given (ivfpq's nlist and m)."""
        options = {"nlist": self.nlist, "pq_m": self.pq_m}
        return {k: v for k, v in options.items() if v is not None}


DENSE_DEFAULTS = DenseSettings()


class DenseRetriever(IndexedRetriever):
    """`DenseRetriever.build(corpus, "indexes/x", model="minilm", index_type="hnsw")`, then
    `DenseRetriever("indexes/x")`."""

    kind = "dense"

    def __init__(
        self,
        index_dir: str | Path,
        model: str | None = None,
        device: str | None = None,
        use_gpu: bool | str = "auto",
        ef_search: int | None = None,
        nprobe: int | None = None,
        encoder: Encoder | None = None,
    ):
        super().__init__(index_dir)
        built = self.manifest["encoder"]
        if model is not None and model_ref(resolve_model(model, "embedder")) != built["model"]:
            raise IndexLoadError(
                f"{self.path} was built with encoder {built['model']!r} ({built['dimension']}-d); "
                f"refusing to search it with {model!r}: rebuild the index or pass the same model"
            )
        self.encoder = encoder or Encoder(
            built["model"],
            normalize=built["normalize"],
            device=device,
            query_prefix=built.get("query_prefix", ""),
            passage_prefix=built.get("passage_prefix", ""),
            **built_runtime(built),
        )
        if (
            self.encoder.dimension != built["dimension"]
            or self.encoder.model_name != built["model"]
        ):
            raise IndexLoadError(
                f"{self.path}: encoder {self.encoder.model_name!r} ({self.encoder.dimension}-d) does not "
                f"match the index ({built['model']!r}, {built['dimension']}-d)"
            )
        check_runtime(self.path, self.encoder, built)
        self.index = load_faiss_index(
            self.path / "index.faiss", use_gpu=use_gpu, ef_search=ef_search, nprobe=nprobe
        )
        self._vectors: np.ndarray | None = None

    @classmethod
    def build(
        cls,
        corpus: Corpus,
        index_dir: str | Path,
        model: str = DENSE_DEFAULTS.model,
        index_type: str = DENSE_DEFAULTS.index_type,
        batch_size: int = DENSE_DEFAULTS.batch_size,
        shard_size: int = DENSE_DEFAULTS.shard_size,
        device: str | None = DENSE_DEFAULTS.device,
        overwrite: bool = False,
        on_error: OnError = "raise",
        encoder: Encoder | None = None,
        executor: Executor | None = None,
        backend: str = DENSE_DEFAULTS.encoder_backend,
        quantize: str | None = DENSE_DEFAULTS.quantize,
        **faiss_options,
    ) -> DenseRetriever:
        """Encode `corpus` into a FAISS index in `index_dir`; the settings are DenseSettings'
        fields (`backend` is its encoder_backend; `faiss_options` its nlist, pq_m and FAISS's
        own hnsw_m, ef_construction, ef_search, nbits, nprobe, seed)."""
        settings = DenseSettings(
            model, index_type, faiss_options.get("nlist"), faiss_options.get("pq_m"),
            batch_size, shard_size, device, backend, quantize,
        )  # fmt: skip
        index_dir = Path(index_dir)
        if encoder is None:
            resolve_model(model, "embedder")  # an unknown model fails before any work
            EncoderBackend(backend, quantize)  # so does an unknown backend
        loaded: list[Encoder] = [encoder] if encoder is not None else []

        def build_backend(tmp: Path, docstore: DocStore) -> dict[str, Any]:
            # the encoder loads only once the corpus has been read: a bad corpus fails first
            if not loaded:
                loaded.append(
                    Encoder(
                        model,
                        batch_size=batch_size,
                        device=device,
                        backend=backend,
                        quantize=quantize,
                    )
                )
            encoder = loaded[0]
            work = work_dir_for(index_dir, docstore.fingerprint, encoder)
            try:
                shards = encode_to_shards(
                    encoder,
                    (d.contents for d in docstore),
                    work,
                    len(docstore),
                    shard_size,
                    batch_size,
                    executor,
                )
                # one file of the vectors, then FAISS fed from it a chunk at a time
                vectors = concatenate_npy(shards, tmp / "embeddings.npy")
                index = build_faiss_index(vectors, index_type, **faiss_options)
                save_faiss_index(index, tmp / "index.faiss")
            except Exception as exc:
                if any(work.glob("shard_*.npy")):
                    exc.add_note(
                        f"the passages encoded so far are kept in {work}: the same command "
                        "resumes from them"
                    )
                raise
            shutil.rmtree(work, ignore_errors=True)
            return {"encoder": encoder.config(), "faiss": {"type": index_type, **faiss_options}}

        build_index_folder(
            corpus, index_dir, cls.kind, build_backend, overwrite=overwrite, on_error=on_error
        )
        record = as_record(settings) | {"encoder": loaded[0].config()}
        write_build_record(index_dir, "DenseRetriever.build", corpus, record)
        return cls(index_dir, encoder=loaded[0])

    def passage_vectors(self, positions: Sequence[int]) -> np.ndarray:
        """The stored passage embeddings at corpus positions (memory-mapped, not re-encoded)."""
        if self._vectors is None:
            self._vectors = np.load(self.path / "embeddings.npy", mmap_mode="r")
        return np.asarray(self._vectors[np.asarray(positions, dtype=np.int64)])

    def _search_texts(self, texts: Sequence[str], k: int, threads: int = 1) -> list[Scored]:
        vectors = self.encoder.encode_queries(texts)
        scores, positions = self.index.search(vectors, k)
        out = []
        for row_scores, row_positions in zip(scores, positions, strict=True):
            keep = [
                (int(p), float(s)) for p, s in zip(row_positions, row_scores, strict=True) if p >= 0
            ]
            ids = self.docstore.ids_at([p for p, _ in keep])
            out.append([(doc_id, score) for doc_id, (_, score) in zip(ids, keep, strict=True)])
        return out
