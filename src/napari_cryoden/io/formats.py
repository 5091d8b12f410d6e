"""Headers and pixel access of MRC and TIFF files, each problem an :class:`InputError`.

:func:`read_info` reads only the header; :func:`open_array` maps (or, for a compressed TIFF,
reads) the pixels as ``(n, ny, nx)`` in the file's own dtype. The public face of this module is
:mod:`napari_cryoden.io.images`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError
from .mrc import map_mrc, read_mrc_header

__all__ = ["SUPPORTED_SUFFIXES", "ImageInfo", "read_info", "open_array", "file_errors"]

SUPPORTED_SUFFIXES = (".mrc", ".mrcs", ".map", ".st", ".rec", ".tif", ".tiff")
_MRC_SUFFIXES = (".mrc", ".mrcs", ".map", ".st", ".rec")

# What the parsers of a corrupt file raise besides OSError/ValueError (tifffile's own errors are
# ValueErrors; struct, zlib, broken tag tables and "incompatible keyframe" RuntimeErrors the rest).
_PARSE_ERRORS = (OSError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error,
                 zlib.error, ZeroDivisionError, OverflowError, AttributeError, RecursionError,
                 RuntimeError)


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
    kind : str
        ``"image"`` (one slice), ``"stack"`` (2D images stacked) or ``"volume"`` (an MRC whose
        header declares a 3D map or tomogram). All three are read as z-slices of 2D images.
    """

    path: Path
    shape: tuple[int, int, int]
    dtype: np.dtype
    pixel_size: float
    kind: str = "image"


def read_info(path: str | os.PathLike[str]) -> ImageInfo:
    """Read a micrograph's header: shape, pixel type and pixel size, no pixel data.

    Nothing is allocated in proportion to the sizes the header declares: they are checked
    against the file's length first.

    Raises
    ------
    InputError
        The file is missing, unreadable, of an unsupported type or MRC mode, truncated, longer
        than its header says, or not an MRC/TIFF file.
    """
    path = Path(path)
    is_mrc = _is_mrc(path)
    with file_errors(path), _quiet_tifffile():
        if path.is_dir():
            raise InputError(f"{path}: is a folder, not a micrograph file")
        return _mrc_info(path) if is_mrc else _tiff_info(path)


def open_array(info: ImageInfo) -> tuple[np.ndarray, Callable[[], None]]:
    """Map (or, for compressed TIFF, read) the pixels as ``(n, ny, nx)``; return a closer too.

    The memory map is released when the last reference to the array (or a view of it) goes.
    """
    if _is_mrc(info.path):
        header = read_mrc_header(info.path)
        if header.shape != info.shape:
            raise InputError(f"{info.path}: changed while being read (now {header.shape})")
        return map_mrc(info.path, header), _do_nothing
    with _quiet_tifffile():
        try:
            array = np.asarray(tifffile.memmap(info.path, mode="r"))
        except ValueError:  # compressed or scattered strips: not mappable
            array = np.asarray(tifffile.imread(info.path))
    if array.size != int(np.prod(info.shape)):
        raise InputError(f"{info.path}: TIFF holds {array.shape} pixels, its header says "
                         f"{info.shape}")
    return array.reshape(info.shape), _do_nothing


@contextlib.contextmanager
def file_errors(path: Path) -> Iterator[None]:
    """Turn the errors of a parser reading ``path`` into a one-line InputError naming it."""
    try:
        yield
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied (not readable)") from None
    except MemoryError:
        raise InputError(f"{path}: not enough memory to read it") from None
    except _PARSE_ERRORS as exc:
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        lines = text.strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        raise InputError(f"{path}: cannot read ({reason})") from exc


def _do_nothing() -> None:
    return None


@contextlib.contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """Silence tifffile's logged warnings about a corrupt file: the InputError says it once."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _mrc_info(path: Path) -> ImageInfo:
    header = read_mrc_header(path)
    return ImageInfo(path, header.shape, header.dtype, header.pixel_size, header.kind)


def _tiff_info(path: Path) -> ImageInfo:
    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise InputError(f"{path}: TIFF file without images")
        series = tif.series[0]
        shape, dtype, page = tuple(series.shape), np.dtype(series.dtype), series.keyframe
        samples, pixel_size = page.samplesperpixel, _tiff_pixel_size(page)
    if samples > 1 or len(shape) < 2 or dtype.kind not in "biuf":
        raise InputError(f"{path}: TIFF of shape {shape} and type {dtype} is not a greyscale image")
    if min(shape) < 1:
        raise InputError(f"{path}: TIFF of shape {shape} holds no pixels")
    three_d = _as_3d(shape)
    return ImageInfo(path, three_d, dtype, pixel_size, "image" if three_d[0] == 1 else "stack")


def _tiff_pixel_size(page: tifffile.TiffPage) -> float:
    """Å per pixel from XResolution in pixels per centimetre; 1.0 for any other unit."""
    unit, resolution = page.tags.get("ResolutionUnit"), page.tags.get("XResolution")
    if unit is None or resolution is None:
        return 1.0
    try:
        if int(unit.value) != 3:
            return 1.0
        numerator, denominator = resolution.value
        value = 1e8 * denominator / numerator if numerator > 0 else 0.0
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return 1.0
    return value if np.isfinite(value) and value > 0 else 1.0


def _as_3d(shape: tuple[int, ...]) -> tuple[int, int, int]:
    n = 1
    for length in shape[:-2]:
        n *= int(length)
    return (n, int(shape[-2]), int(shape[-1]))


def _is_mrc(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(
            f"{path}: unsupported file type {suffix or '(no suffix)'!r} "
            f"(supported: {', '.join(SUPPORTED_SUFFIXES)})"
        )
    return suffix in _MRC_SUFFIXES
