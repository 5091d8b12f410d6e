"""A thread-safe LRU of memory-mapped micrographs (public as ``io.images.MicrographCache``)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .formats import file_errors, open_array, read_info

__all__ = ["MicrographCache"]


@dataclass
class _OpenFile:
    array: np.ndarray | None  # (n_slices, ny, nx) in the file's dtype; None once closed
    close: Callable[[], None]
    pins: int = 0


class MicrographCache:
    """A thread-safe LRU of memory-mapped micrographs, for cutting patches out of large files.

    MRC files and uncompressed TIFFs are memory-mapped; compressed TIFFs are read once and kept
    while they are in the LRU. At most ``max_open`` files stay open; the least recently used one
    is closed and unmapped (its pages then no longer count in the process's memory). A file in
    use by :meth:`view` is never closed under its user's feet: it is evicted when the view ends.

    Parameters
    ----------
    max_open : int
        Number of files kept open.
    """

    def __init__(self, max_open: int = 4) -> None:
        if max_open < 1:
            raise ValueError(f"max_open must be >= 1, got {max_open}")
        self._max_open = max_open
        self._lock = threading.Lock()
        self._files: OrderedDict[Path, _OpenFile] = OrderedDict()

    @contextlib.contextmanager
    def view(self, path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
        """Yield the file as a read-only ``(n_slices, ny, nx)`` array in its own dtype.

        The array is valid inside the ``with`` block only: do not keep it (or views of it) after
        the block; copy what you need.
        """
        key = Path(path)
        entry = self._acquire(key)
        try:
            assert entry.array is not None
            yield entry.array
        finally:
            self._release(entry)

    def read_patch(
        self, path: str | os.PathLike[str], z: int, y: int, x: int, h: int, w: int
    ) -> np.ndarray:
        """Copy the ``h`` × ``w`` patch at ``(y, x)`` of slice ``z`` as a new float32 array.

        Raises
        ------
        InputError
            The file cannot be read, or the patch holds NaN or infinite pixels.
        """
        with self.view(path) as array:
            n, ny, nx = array.shape
            if not (0 <= z < n and 0 <= y and y + h <= ny and 0 <= x and x + w <= nx):
                raise ValueError(
                    f"{path}: patch z={z} y={y} x={x} of {h}x{w} lies outside {n}x{ny}x{nx}"
                )
            with file_errors(Path(path)):
                patch = np.array(array[z, y : y + h, x : x + w], dtype=np.float32)
            if array.dtype.kind == "f" and not np.isfinite(patch).all():
                raise InputError(f"{path}: NaN or infinite pixels in slice {z}, rows {y}-"
                                 f"{y + h - 1}, columns {x}-{x + w - 1}; replace them first")
            return patch

    @property
    def open_paths(self) -> list[Path]:
        """The files open now, least recently used first."""
        with self._lock:
            return list(self._files)

    def close(self) -> None:
        """Close and unmap every file."""
        with self._lock:
            entries, self._files = list(self._files.values()), OrderedDict()
        _close_entries(entries)

    def __enter__(self) -> MicrographCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _acquire(self, key: Path) -> _OpenFile:
        with self._lock:
            entry = self._files.get(key)
            if entry is not None:
                entry.pins += 1
                self._files.move_to_end(key)
                return entry
        info = read_info(key)  # opened outside the lock so other threads keep reading
        with file_errors(key):
            fresh = _OpenFile(*open_array(info), pins=1)
        with self._lock:
            entry = self._files.get(key)
            if entry is None:
                entry = self._files[key] = fresh
            else:  # another thread opened it meanwhile: use theirs
                entry.pins += 1
                self._files.move_to_end(key)
            evicted = self._evict_locked()
        if entry is not fresh:
            evicted.append(fresh)
        _close_entries(evicted)
        return entry

    def _release(self, entry: _OpenFile) -> None:
        with self._lock:
            entry.pins -= 1
            evicted = self._evict_locked()
        _close_entries(evicted)

    def _evict_locked(self) -> list[_OpenFile]:
        evicted = []
        for key in list(self._files):
            if len(self._files) <= self._max_open:
                break
            if self._files[key].pins == 0:
                evicted.append(self._files.pop(key))
        return evicted


def _close_entries(entries: list[_OpenFile]) -> None:
    for entry in entries:
        entry.array = None  # the last reference: numpy unmaps the file when it goes
        entry.close()
