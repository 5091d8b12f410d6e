"""Reading and writing micrographs: MRC (also spelt .mrcs, .map, .st, .rec) and TIFF.

Every image comes back as ``float32``; every problem with a file is an :class:`InputError` whose
one-line message starts with the file's path. :class:`MicrographCache` keeps a few files
memory-mapped so that patches can be cut from a 100 GB dataset without reading it into memory.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import tifffile
from mrcfile import utils as mrc_utils

from .._files import atomic_path
from ..errors import InputError

__all__ = [
    "SUPPORTED_SUFFIXES",
    "ImageInfo",
    "read_info",
    "read_image",
    "write_mrc",
    "list_images",
    "find_pairs",
    "MicrographCache",
]

SUPPORTED_SUFFIXES = (".mrc", ".mrcs", ".map", ".st", ".rec", ".tif", ".tiff")
_MRC_SUFFIXES = (".mrc", ".mrcs", ".map", ".st", ".rec")
_STACK_SUFFIXES = (".mrcs", ".st")  # 3D data written with these suffixes is an image stack
_UNSUPPORTED_MRC_MODES = (3, 4, 101)  # complex int16, complex float32, 4-bit packed


@dataclass(frozen=True)
class ImageInfo:
    """What a file's header says, read without touching the pixels.

    Attributes
    ----------
    path : Path
        The file.
    shape : tuple of int
        ``(n_slices, ny, nx)``; a single micrograph has ``n_slices == 1``.
    dtype : numpy.dtype
        The pixel type stored in the file (converted to float32 when read).
    pixel_size : float
        Pixel size in Å; 1.0 when the header gives none.
    """

    path: Path
    shape: tuple[int, int, int]
    dtype: np.dtype
    pixel_size: float


def read_info(path: str | os.PathLike[str]) -> ImageInfo:
    """Read a micrograph's header: shape, pixel type and pixel size, no pixel data.

    Raises
    ------
    InputError
        The file is missing, of an unsupported type or MRC mode, truncated or unreadable.
    """
    path = Path(path)
    is_mrc = _is_mrc(path)
    with _file_errors(path):
        return _mrc_info(path) if is_mrc else _tiff_info(path)


def read_image(path: str | os.PathLike[str]) -> tuple[np.ndarray, float]:
    """Read a whole micrograph or stack as float32.

    Returns
    -------
    image : numpy.ndarray
        ``(ny, nx)`` for a single micrograph, ``(n_slices, ny, nx)`` for a stack.
    pixel_size : float
        Pixel size in Å (1.0 when the header gives none).
    """
    info = read_info(path)
    with _file_errors(info.path):
        array, close = _open_array(info)
        try:
            image = array.astype(np.float32)
        finally:
            close()
    return (image[0] if info.shape[0] == 1 else image), info.pixel_size


def write_mrc(path: str | os.PathLike[str], data: np.ndarray, pixel_size: float) -> None:
    """Write a float32 MRC file atomically, with its voxel size set to ``pixel_size`` Å.

    The data go to a temporary file in the same folder, which is flushed to disk and then
    renamed over ``path``: an existing file is replaced whole or left untouched. 3D data written
    to ``.mrcs`` or ``.st`` are marked as an image stack, other 3D data as a volume.
    """
    path = Path(path)
    array = np.ascontiguousarray(data, dtype=np.float32)
    if array.ndim not in (2, 3):
        raise ValueError(f"{path}: can only write 2D or 3D data, got shape {array.shape}")
    try:
        with atomic_path(path) as tmp, mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(array)
            if array.ndim == 3 and path.suffix.lower() in _STACK_SUFFIXES:
                mrc.set_image_stack()
            mrc.voxel_size = float(pixel_size)
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """The micrographs in a folder (supported suffixes, hidden files skipped), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        problem = "not a folder" if folder.exists() else "folder not found"
        raise InputError(f"{folder}: {problem}")
    files = sorted(
        p for p in folder.iterdir()
        if p.suffix.lower() in SUPPORTED_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )
    if not files:
        raise InputError(
            f"{folder}: no micrographs found (looked for {', '.join(SUPPORTED_SUFFIXES)})"
        )
    return files


def find_pairs(
    noisy_dir: str | os.PathLike[str], clean_dir: str | os.PathLike[str]
) -> list[tuple[Path, Path]]:
    """Pair the files of two folders by name stem (``noisy/a.mrc`` with ``clean/a.mrc``).

    Raises
    ------
    InputError
        A folder is missing or empty, or some files have no partner (the first few are named).
    """
    noisy, clean = _by_stem(list_images(noisy_dir)), _by_stem(list_images(clean_dir))
    only_noisy = [noisy[s] for s in sorted(set(noisy) - set(clean))]
    only_clean = [clean[s] for s in sorted(set(clean) - set(noisy))]
    if only_noisy or only_clean:
        parts = [
            f"only in {folder}: {_first_few(files)}"
            for folder, files in ((noisy_dir, only_noisy), (clean_dir, only_clean)) if files
        ]
        raise InputError("noisy and clean files do not pair by name; " + "; ".join(parts))
    return [(noisy[stem], clean[stem]) for stem in sorted(noisy)]


@dataclass
class _OpenFile:
    array: np.ndarray | None  # (n_slices, ny, nx) in the file's dtype; None once closed
    close: Callable[[], None]
    pins: int = 0


class MicrographCache:
    """A thread-safe LRU of memory-mapped micrographs, for cutting patches out of large files.

    MRC files are mapped with :func:`mrcfile.mmap`, uncompressed TIFFs with
    :func:`tifffile.memmap`; compressed TIFFs are read once and kept while they are in the LRU.
    At most ``max_open`` files stay open; the least recently used one is closed and unmapped
    (its pages then no longer count in the process's memory). A file in use by :meth:`view`
    is never closed under its user's feet: it is evicted when the view ends.

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
        """A read-only ``(n_slices, ny, nx)`` array in the file's own dtype, valid in the block.

        Do not keep the array (or views of it) after the ``with`` block: copy what you need.
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
        """Copy the ``h`` × ``w`` patch at ``(y, x)`` of slice ``z`` as a new float32 array."""
        with self.view(path) as array:
            n, ny, nx = array.shape
            if not (0 <= z < n and 0 <= y and y + h <= ny and 0 <= x and x + w <= nx):
                raise ValueError(
                    f"{path}: patch z={z} y={y} x={x} of {h}x{w} lies outside {n}x{ny}x{nx}"
                )
            with _file_errors(Path(path)):
                return np.array(array[z, y : y + h, x : x + w], dtype=np.float32)

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
        with _file_errors(key):
            fresh = _OpenFile(*_open_array(info), pins=1)
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


def _open_array(info: ImageInfo) -> tuple[np.ndarray, Callable[[], None]]:
    """Map (or, for compressed TIFF, read) the pixels as ``(n, ny, nx)``; return a closer too."""
    if _is_mrc(info.path):
        mrc = mrcfile.mmap(info.path, mode="r")
        return mrc.data.reshape(info.shape), mrc.close
    try:
        array = np.asarray(tifffile.memmap(info.path, mode="r"))
    except ValueError:  # compressed or scattered strips: not mappable
        array = np.asarray(tifffile.imread(info.path))
    return array.reshape(info.shape), _do_nothing


def _do_nothing() -> None:
    return None


def _mrc_info(path: Path) -> ImageInfo:
    with mrcfile.open(path, header_only=True) as mrc:
        header = mrc.header
        pixel_size = float(mrc.voxel_size.x)
    mode = int(header.mode)
    if mode in _UNSUPPORTED_MRC_MODES:
        raise InputError(f"{path}: MRC mode {mode} (complex/4-bit) is not supported")
    dtype = mrc_utils.data_dtype_from_header(header)
    shape = mrc_utils.data_shape_from_header(header)
    if len(shape) == 4:
        raise InputError(f"{path}: MRC volume stacks (4D) are not supported")
    expected = header.nbytes + int(header.nsymbt) + int(np.prod(shape)) * dtype.itemsize
    found = path.stat().st_size
    if found < expected:
        raise InputError(f"{path}: truncated MRC file ({found} bytes, header says {expected})")
    return ImageInfo(path, _as_3d(shape), dtype, _valid_pixel_size(pixel_size))


def _tiff_info(path: Path) -> ImageInfo:
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        shape, dtype, page = tuple(series.shape), np.dtype(series.dtype), series.keyframe
        samples, pixel_size = page.samplesperpixel, _tiff_pixel_size(page)
    if samples > 1 or len(shape) < 2 or dtype.kind not in "biuf":
        raise InputError(f"{path}: TIFF of shape {shape} and type {dtype} is not a greyscale image")
    return ImageInfo(path, _as_3d(shape), dtype, pixel_size)


def _tiff_pixel_size(page: tifffile.TiffPage) -> float:
    """Å per pixel from XResolution in pixels per centimetre; 1.0 for any other unit."""
    unit, resolution = page.tags.get("ResolutionUnit"), page.tags.get("XResolution")
    if unit is None or resolution is None or int(unit.value) != 3:
        return 1.0
    numerator, denominator = resolution.value
    return _valid_pixel_size(1e8 * denominator / numerator if numerator > 0 else 0.0)


def _valid_pixel_size(value: float) -> float:
    return value if np.isfinite(value) and value > 0 else 1.0


def _as_3d(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return (int(np.prod(shape[:-2], dtype=np.int64)), int(shape[-2]), int(shape[-1]))


def _is_mrc(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(
            f"{path}: unsupported file type {suffix or '(no suffix)'!r} "
            f"(supported: {', '.join(SUPPORTED_SUFFIXES)})"
        )
    return suffix in _MRC_SUFFIXES


@contextlib.contextmanager
def _file_errors(path: Path) -> Iterator[None]:
    """Turn the errors of mrcfile, tifffile and numpy into a one-line InputError naming ``path``."""
    try:
        yield
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, ValueError, EOFError, IndexError) as exc:
        lines = str(exc).strip().splitlines()
        raise InputError(f"{path}: {lines[0] if lines else type(exc).__name__}") from exc


def _by_stem(files: list[Path]) -> dict[str, Path]:
    by_stem: dict[str, Path] = {}
    for file in files:
        if file.stem in by_stem:
            raise InputError(f"{by_stem[file.stem]} and {file.name} have the same name stem")
        by_stem[file.stem] = file
    return by_stem


def _first_few(files: list[Path], n: int = 3) -> str:
    names = ", ".join(f.name for f in files[:n])
    return names + (f" (+{len(files) - n} more)" if len(files) > n else "")
