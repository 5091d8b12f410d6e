"""TIFF micrographs and stacks read with :mod:`tifffile`; a pixel size from XResolution."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError
from .info import ImageInfo

__all__ = ["read_tiff_info", "open_tiff", "quiet_tifffile"]


@contextlib.contextmanager
def quiet_tifffile() -> Iterator[None]:
    """Silence tifffile's logged warnings about a corrupt file: the InputError says it once."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def open_tiff(info: ImageInfo) -> np.ndarray:
    """Map (or, if compressed, read) a TIFF's pixels as ``(n, ny, nx)`` in its own dtype.

    Raises
    ------
    InputError
        The file holds another number of pixels than ``info`` says.
    """
    with quiet_tifffile():
        try:
            array = np.asarray(tifffile.memmap(info.path, mode="r"))
        except ValueError:  # compressed or scattered strips: not mappable
            array = np.asarray(tifffile.imread(info.path))
    if array.size != int(np.prod(info.shape)):
        raise InputError(f"{info.path}: TIFF holds {array.shape} pixels, its header says "
                         f"{info.shape}")
    return array.reshape(info.shape)


def read_tiff_info(path: Path, stack: bool = True) -> ImageInfo:
    """Read a TIFF's shape, pixel type and pixel size from its tags, no pixel data.

    Parameters
    ----------
    path : Path
        The file.
    stack : bool
        Unused: every TIFF of several pages is a stack of 2D images (the format table's
        signature).

    Returns
    -------
    ImageInfo
        ``kind`` is ``"image"`` or ``"stack"``; ``voxel_size`` the pixel size on every axis.

    Raises
    ------
    InputError
        No images, colour or non-numeric pixels, or no pixels at all.
    """
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
    kind = "image" if three_d[0] == 1 else "stack"  # TIFF has no volumes: pages are images
    return ImageInfo(path, three_d, dtype, pixel_size or 1.0, kind, (pixel_size,) * 3)


def _tiff_pixel_size(page: tifffile.TiffPage) -> float:
    """Å per pixel from XResolution in pixels per centimetre; 0.0 (unknown) for any other unit."""
    unit, resolution = page.tags.get("ResolutionUnit"), page.tags.get("XResolution")
    if unit is None or resolution is None:
        return 0.0
    try:
        if int(unit.value) != 3:
            return 0.0
        numerator, denominator = resolution.value
        value = 1e8 * denominator / numerator if numerator > 0 else 0.0
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return 0.0
    return value if np.isfinite(value) and value > 0 else 0.0


def _as_3d(shape: tuple[int, ...]) -> tuple[int, int, int]:
    n = 1
    for length in shape[:-2]:
        n *= int(length)
    return (n, int(shape[-2]), int(shape[-1]))
