"""Reading and writing micrographs: MRC (also spelt .mrcs, .map, .st, .rec) and TIFF.

Every image comes back as ``float32``; every problem with a file is an :class:`InputError` whose
one-line message starts with the file's path. :class:`MicrographCache` keeps a few files
memory-mapped so that patches can be cut from a 100 GB dataset without reading it into memory.

Which suffix is which format is the table :data:`.formats.FORMATS`. MRC headers are read by
mrcfile and checked against the file's size before anything is read or allocated (:mod:`.mrc`);
NaN or infinite pixels are refused where pixels are read. Stacks of 2D images and 3D volumes are
both read as ``(n_slices, ny, nx)``: each z-slice is a 2D micrograph (``ImageInfo.kind`` tells
which the header declared); 4D volume stacks are refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import mrcfile
import numpy as np

from ..errors import InputError, SaveError
from .atomic import atomic_path
from .cache import MicrographCache
from .formats import (
    SUPPORTED_SUFFIXES,
    ImageInfo,
    file_errors,
    is_stack_suffix,
    open_array,
    read_info,
)

__all__ = [
    "SUPPORTED_SUFFIXES",
    "ImageInfo",
    "read_info",
    "read_image",
    "read_pixels",
    "write_mrc",
    "list_images",
    "MicrographCache",
]


def read_image(path: str | os.PathLike[str]) -> tuple[np.ndarray, float]:
    """Read a whole micrograph or stack as float32.

    Parameters
    ----------
    path : str or PathLike
        An MRC or TIFF file (:data:`SUPPORTED_SUFFIXES`).

    Returns
    -------
    image : numpy.ndarray
        ``(ny, nx)`` for a single micrograph, ``(n_slices, ny, nx)`` for a stack or volume.
    pixel_size : float
        Pixel size in Å (1.0 when the header gives none).

    Raises
    ------
    InputError
        The file cannot be read (see :func:`read_info`), does not fit in memory, or holds NaN
        or infinite pixels (the first one is located in the message).
    """
    info = read_info(path)
    return read_pixels(info), info.pixel_size


def read_pixels(info: ImageInfo) -> np.ndarray:
    """Read the pixels of a file whose header :func:`read_info` has read, as float32.

    Parameters
    ----------
    info : ImageInfo
        What the header said; it is not read again.

    Returns
    -------
    numpy.ndarray
        ``(ny, nx)`` for a single micrograph, ``(n_slices, ny, nx)`` for a stack or volume.

    Raises
    ------
    InputError
        The file changed since ``info`` was read, does not fit in memory, or holds NaN or
        infinite pixels (the first one is located in the message).
    """
    with file_errors(info.path):
        array, close = open_array(info)
        try:
            image = array.astype(np.float32)
        finally:
            del array
            close()
    if info.dtype.kind == "f":
        _check_finite(image, info.path)
    return image[0] if info.shape[0] == 1 else image


def write_mrc(path: str | os.PathLike[str], data: np.ndarray, pixel_size: float,
              dtype: str = "float32") -> None:
    """Write a float32 MRC file atomically, with its voxel size set to ``pixel_size`` Å.

    ``dtype="float16"`` writes MRC mode 12 instead (half the size; values beyond ±65504 are
    refused rather than turned into infinities).

    The data go to a temporary file in the same folder, which is flushed to disk and then
    renamed over ``path``: an existing file is replaced whole or left untouched. 3D data written
    to ``.mrcs`` or ``.st`` are marked as an image stack, other 3D data as a volume.

    Raises
    ------
    SaveError
        The file cannot be written (disk full, read-only, no such folder); an
        :class:`InputError` and :class:`OSError` whose message begins ``<path>: cannot write``.
    """
    path = Path(path)
    if dtype not in ("float32", "float16"):
        raise ValueError(f"{path}: MRC output is float32 or float16, not {dtype}")
    array = np.ascontiguousarray(data, dtype=np.float32)
    if dtype == "float16":
        if array.size and float(np.max(np.abs(array))) > float(np.finfo(np.float16).max):
            raise SaveError(f"{path}: cannot write as float16: values beyond ±65504 (use "
                            "float32)")
        array = array.astype(np.float16)
    if array.ndim not in (2, 3):
        raise ValueError(f"{path}: can only write 2D or 3D data, got shape {array.shape}")
    with atomic_path(path) as tmp, mrcfile.new(tmp, overwrite=True) as mrc:
        mrc.set_data(array)
        if array.ndim == 3 and is_stack_suffix(path):
            mrc.set_image_stack()
        mrc.voxel_size = float(pixel_size)


def list_images(folder: str | os.PathLike[str],
                suffixes: tuple[str, ...] = SUPPORTED_SUFFIXES) -> list[Path]:
    """List a folder's micrographs, sorted by name (hidden files skipped).

    ``suffixes`` (lower case, with the dot) are the files listed: the supported image formats
    unless told otherwise (movies add ``.eer``).

    Raises
    ------
    InputError
        The folder does not exist, is a file, cannot be listed, or holds no micrographs.
    """
    folder = Path(folder)
    if not folder.is_dir():
        problem = "not a folder" if folder.exists() else "folder not found"
        raise InputError(f"{folder}: {problem}")
    try:
        files = sorted(
            p for p in folder.iterdir()
            if p.suffix.lower() in suffixes and not p.name.startswith(".")
            and p.is_file()
        )
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None
    if not files:
        raise InputError(
            f"{folder}: no micrographs found (looked for {', '.join(suffixes)})"
        )
    return files


def _check_finite(image: np.ndarray, path: Path) -> None:
    finite = np.isfinite(image)
    if finite.all():
        return
    bad = int(finite.size - np.count_nonzero(finite))
    z, y, x = np.unravel_index(int(np.argmin(finite)), image.shape)  # image is (n, ny, nx)
    raise InputError(f"{path}: {bad} NaN or infinite pixel(s), the first in slice {z} at "
                     f"y={y}, x={x}; replace them first")
