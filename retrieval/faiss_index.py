"""FAISS indexes chosen by name (flat, hnsw, ivfpq), inner product on normalised vectors,
saved with FAISS's own file format. GPU FAISS is used when the `gpu` extra and a device are
present (search only: indexes are built and saved on the CPU so files are portable)."""

from __future__ import annotations

import errno
import logging
import math
import os
from pathlib import Path

import numpy as np

from kirag.errors import IndexLoadError, KiragError
from kirag.optional import is_available, require

log = logging.getLogger(__name__)

INDEX_TYPES = ("flat", "hnsw", "ivfpq")


def _faiss():
    """The faiss module, or the one-line error naming the `dense` extra."""
    return require("faiss", "dense", "FAISS indexes")


def gpu_count() -> int:
    """Number of GPUs FAISS can use (0 with faiss-cpu, or without FAISS)."""
    if not is_available("faiss"):
        return 0
    faiss = _faiss()

    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def _pq_subquantizers(dimension: int) -> int:
    """The largest divisor of `dimension` giving sub-vectors of at least 4 dimensions (<= 64)."""
    for m in range(min(64, dimension // 4), 0, -1):
        if dimension % m == 0:
            return m
    return 1


def build_faiss_index(
    vectors: np.ndarray,
    index_type: str = "flat",
    hnsw_m: int = 32,
    ef_construction: int = 200,
    ef_search: int = 128,
    nlist: int | None = None,
    pq_m: int | None = None,
    nbits: int = 8,
    nprobe: int = 16,
    seed: int = 42,
):
    """A FAISS index over `vectors` (float32, normalised for cosine) using inner product."""
    faiss = _faiss()

    if index_type not in INDEX_TYPES:
        raise KiragError(
            f"unknown FAISS index type {index_type!r}; known: {', '.join(INDEX_TYPES)}"
        )
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dimension = vectors.shape
    if index_type == "flat":
        index = faiss.IndexFlatIP(dimension)
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
    else:
        nlist = nlist or max(1, min(int(4 * math.sqrt(n)), n // 39 or 1))
        pq_m = pq_m or _pq_subquantizers(dimension)
        nbits = min(nbits, max(1, int(math.log2(max(n, 2)))))  # PQ needs >= 2**nbits points
        quantizer = faiss.IndexFlatIP(dimension)
        index = faiss.IndexIVFPQ(
            quantizer, dimension, nlist, pq_m, nbits, faiss.METRIC_INNER_PRODUCT
        )
        index.cp.seed = seed
        index.train(vectors)
        index.nprobe = min(nprobe, nlist)
    index.add(vectors)
    return index


def save_faiss_index(index, path: str | Path) -> Path:
    """Write with faiss.write_index to a temporary name, then rename (atomic)."""
    faiss = _faiss()

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    if hasattr(faiss, "index_gpu_to_cpu") and "Gpu" in type(index).__name__:
        index = faiss.index_gpu_to_cpu(index)
    try:
        faiss.write_index(index, str(tmp))
    except RuntimeError as exc:  # faiss reports a full disk or a missing folder this way
        tmp.unlink(missing_ok=True)
        reason = str(exc).rsplit("failed: ", 1)[-1]
        raise OSError(errno.EIO, f"FAISS could not write the index ({reason})", str(path)) from exc
    os.replace(tmp, path)
    return path


def load_faiss_index(
    path: str | Path,
    use_gpu: bool | str = "auto",
    ef_search: int | None = None,
    nprobe: int | None = None,
):
    """Read an index written by save_faiss_index; moved to the GPU when asked ("auto": when
    one is available). `use_gpu=True` on a machine without GPU FAISS is an error that says so."""
    faiss = _faiss()

    path = Path(path)
    if not path.is_file():
        raise IndexLoadError(f"{path}: FAISS index file missing")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        raise IndexLoadError(f"{path}: not a readable FAISS index ({exc})") from None
    if ef_search is not None and hasattr(index, "hnsw"):
        index.hnsw.efSearch = ef_search
    if nprobe is not None and hasattr(index, "nprobe"):
        index.nprobe = nprobe
    gpus = gpu_count()
    if use_gpu is True and gpus == 0:
        raise KiragError(
            "use_gpu=True but FAISS sees no GPU here: install the 'gpu' extra (faiss-gpu) on a CUDA machine"
        )
    if gpus > 0 and use_gpu in (True, "auto") and "HNSW" not in type(index).__name__:
        resources = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(resources, 0, index)
        log.info("FAISS index %s moved to GPU 0", path)
    return index
