""".npy files written and read a piece at a time, so a build's resident memory does not grow
with the file: a long-lived memory map keeps every page it has read (or written) resident in
the process, and those pages count in its RSS."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np


class NpyAppender:
    """An `.npy` file of known shape (rows first) written by appending row blocks (np.load reads
    it); a short write is an error, not a file that loads. Use as a context manager."""

    def __init__(self, path: str | Path, dtype, shape: tuple[int, ...]):
        self.path, self.dtype, self.shape = Path(path), np.dtype(dtype), tuple(shape)
        self.written = 0

    def __enter__(self) -> NpyAppender:
        self.file = open(self.path, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False}
        np.lib.format.write_array_header_1_0(self.file, {**header, "shape": self.shape})
        return self

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.shape[1:]:
            raise ValueError(f"{self.path}: rows of shape {rows.shape[1:]}, not {self.shape[1:]}")
        self.file.write(rows.tobytes())
        self.written += len(rows)

    def __exit__(self, kind, value, traceback) -> None:
        self.file.close()
        if kind is None and self.written != self.shape[0]:
            raise RuntimeError(f"{self.path}: wrote {self.written} of {self.shape[0]} rows")


class NpyRows:
    """A 2-d `.npy` file read on demand: `rows[a:b]` or `rows[index_array]` maps the file,
    copies those rows and unmaps it, so what was read does not stay resident. Quacks like the
    arrays FAISS builders take (len, shape, indexing)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        mapped = np.load(self.path, mmap_mode="r")
        self.shape, self.dtype = mapped.shape, mapped.dtype
        del mapped

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> np.ndarray:
        mapped = np.load(self.path, mmap_mode="r")
        try:
            return np.array(mapped[rows])
        finally:
            del mapped

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self[:] if dtype is None else self[:].astype(dtype)


def concatenate_npy(paths: Iterable[str | Path], out: str | Path) -> NpyRows:
    """Row-concatenate 2-d `.npy` files into `out`, one file in memory at a time."""
    parts = [NpyRows(p) for p in paths]
    if not parts:
        raise ValueError("no files to concatenate")
    rows = sum(len(p) for p in parts)
    with NpyAppender(out, parts[0].dtype, (rows, *parts[0].shape[1:])) as appender:
        for part in parts:
            appender.append(part[:])
    return NpyRows(out)
