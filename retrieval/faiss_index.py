"""FAISS indexes chosen by name (flat, hnsw, ivfpq), inner product on normalised vectors,
saved with FAISS's own file format. Built from blocks of vectors (memory-mapped shards) a chunk
at a time; IVF-PQ (~m bytes a vector: for large passage and triple indexes) is trained on a
seeded sample and filled shard by shard, then merged; HNSW is for one node (it cannot be
merged). GPU FAISS is used when the `gpu` extra and a device are present (search only: indexes
are built and saved on the CPU so files are portable)."""

from __future__ import annotations

import errno
import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from kirag.core.optional import is_available, require
from kirag.errors import IndexLoadError, KiragError
from kirag.io.npy_files import NpyRows

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


ADD_CHUNK = 65_536  # vectors handed to FAISS per add call: a memory map is read a chunk at a time
TRAIN_MIN = 10_000  # an IVF-PQ index trains on at least this many vectors (or all of them) ...
TRAIN_PER_LIST = 64  # ... and on at least this many per inverted list (FAISS warns below 39)


def _check_type(index_type: str) -> None:
    if index_type not in INDEX_TYPES:
        raise KiragError(
            f"unknown FAISS index type {index_type!r}; known: {', '.join(INDEX_TYPES)}"
        )


def ivf_lists(n: int) -> int:
    """Default number of IVF lists for `n` vectors: ~4 sqrt(n), at least 39 vectors per list."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39 or 1))


def training_sample(blocks: Sequence[np.ndarray], size: int, seed: int = 42) -> np.ndarray:
    """`size` rows drawn without replacement (seeded) from blocks of vectors taken in order, read
    block by block (memory maps stay on disk): every row when `size` covers them all."""
    total = sum(len(b) for b in blocks)
    if size >= total:
        return np.concatenate([np.asarray(b, dtype=np.float32) for b in blocks])
    rows = np.sort(np.random.default_rng(seed).choice(total, size=size, replace=False))
    out, offset = [], 0
    for block in blocks:
        mine = rows[(rows >= offset) & (rows < offset + len(block))] - offset
        out.append(np.asarray(block[mine], dtype=np.float32))
        offset += len(block)
    return np.concatenate(out)


def empty_faiss_index(
    index_type: str,
    dimension: int,
    total: int,
    train: Callable[[int], np.ndarray] | None = None,
    hnsw_m: int = 32,
    ef_construction: int = 200,
    ef_search: int = 128,
    nlist: int | None = None,
    pq_m: int | None = None,
    nbits: int = 8,
    nprobe: int = 16,
    seed: int = 42,
):
    """An empty FAISS index for `total` vectors (inner product). IVF-PQ is trained here on
    `train(size)`, a seeded sample of the vectors: the trained empty index can be cloned, each
    clone filled with one shard, and the clones merged (`add_merged`)."""
    faiss = _faiss()

    _check_type(index_type)
    if index_type == "flat":
        return faiss.IndexFlatIP(dimension)
    if index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
        return index
    nlist = nlist or ivf_lists(total)
    if nlist > total:
        raise KiragError(f"IVF-PQ nlist={nlist} exceeds the {total} vectors to index")
    pq_m = pq_m or _pq_subquantizers(dimension)
    if dimension % pq_m:
        raise KiragError(f"IVF-PQ m={pq_m} does not divide the vector dimension {dimension}")
    nbits = min(nbits, max(1, int(math.log2(max(total, 2)))))  # PQ needs >= 2**nbits points
    quantizer = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIVFPQ(quantizer, dimension, nlist, pq_m, nbits, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    if train is None:
        raise KiragError("an IVF-PQ index needs training vectors")
    index.train(train(max(TRAIN_MIN, TRAIN_PER_LIST * nlist, 2**nbits * 39)))
    index.nprobe = min(nprobe, nlist)
    return index


def add_in_chunks(index, block: np.ndarray, chunk: int = ADD_CHUNK) -> None:
    """Add a block of vectors (an array or a memory map) `chunk` rows at a time."""
    for start in range(0, len(block), chunk):
        index.add(np.ascontiguousarray(block[start : start + chunk], dtype=np.float32))


def add_merged(trained, blocks: Sequence[np.ndarray]) -> None:
    """Fill a trained, empty IVF index with blocks of vectors, each added to its own clone of
    the index (what separate workers do with their shards) and merged in order with
    `merge_from`, the ids offset by the rows before it: the same index as one add. Beyond RAM,
    FAISS's `merge_ondisk` (OnDiskInvertedLists) merges shard files into one on-disk index."""
    faiss = _faiss()

    if trained.ntotal:  # a clone of a filled index would carry its vectors into every shard
        raise KiragError("add_merged needs an empty trained index")
    template = faiss.clone_index(trained)  # `trained` fills up as the shards merge into it
    offset = 0
    for block in blocks:
        shard = faiss.clone_index(template)
        add_in_chunks(shard, block)
        trained.merge_from(shard, offset)
        offset += len(block)


def build_faiss_from_blocks(blocks: Sequence[np.ndarray], index_type: str = "flat", **options):
    """A FAISS index over blocks of vectors taken in order (arrays or memory-mapped shard
    files), never holding more than one chunk of them in memory beyond the index itself. Flat
    and HNSW add chunk by chunk; IVF-PQ trains on a seeded sample and merges one clone per block.
    HNSW is a single-node choice: its graphs cannot be merged (faiss#4090), so an HNSW index is
    built by one process; shard across machines with IVF-PQ (or Flat)."""
    _check_type(index_type)
    if not blocks:
        raise KiragError("no vectors to index")
    total = sum(len(b) for b in blocks)
    dimension = int(blocks[0].shape[1])
    seed = options.get("seed", 42)
    index = empty_faiss_index(
        index_type, dimension, total, lambda size: training_sample(blocks, size, seed), **options
    )
    if index_type == "ivfpq":
        add_merged(index, blocks)
    else:
        for block in blocks:
            add_in_chunks(index, block)
    return index


def build_faiss_index(vectors: np.ndarray | NpyRows, index_type: str = "flat", **options):
    """A FAISS index over `vectors` (float32, normalised for cosine) using inner product
    (options: hnsw_m, ef_construction, ef_search, nlist, pq_m, nbits, nprobe, seed)."""
    return build_faiss_from_blocks([vectors], index_type, **options)


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
