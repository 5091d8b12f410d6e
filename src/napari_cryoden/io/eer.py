"""Thermo Fisher EER movies (Falcon 4/4i/C), read as fractions of grouped detector frames.

An EER file is a TIFF whose every page is one detector frame of single-electron events
(compression 65000-65002: a run-length code per event; a few hundred to over a thousand frames
per exposure). Frames this sparse are summed in groups of ``grouping`` consecutive frames, the
*fractions* every program works with (RELION's ``--eer_grouping``); the frames left over after
the last whole group are left out, and a fraction holds ``grouping`` frames' events as
``uint16`` counts on the 4K sensor grid (no super-resolution).

The pages are decoded one at a time by :mod:`tifffile` (with imagecodecs' EER decoder), the
library the ``eerfile`` package reads through too; ``eerfile.render`` decodes a whole chunk of
frames at once (one byte a pixel: a 40-frame group of a 4K sensor is 670 MB), so it is not used
here, where memory stays one decoded page and one fraction. The header (``numberOfFrames``,
``sensorPixelSize``, ``totalDose``) is tifffile's ``eer_metadata``, the dict ``eerfile``'s
``EERHeader`` reads too. The tests check the fractions against ``eerfile.render``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError
from .formats import file_errors
from .tiff import quiet_tifffile

__all__ = ["EER_COMPRESSIONS", "EER_SUFFIXES", "DEFAULT_EER_GROUPING", "EerInfo", "is_eer",
           "iter_eer_fractions", "read_eer_info"]

EER_SUFFIXES = (".eer",)
"""The suffixes of EER movies (any case)."""
EER_COMPRESSIONS = (65000, 65001, 65002)
"""TIFF compression codes of EER frames (8-, 7- and variable-bit run lengths)."""
DEFAULT_EER_GROUPING = 32
"""Detector frames per fraction unless told otherwise (pick it so that a fraction holds about
1 e/Å²: the command prints the dose per fraction when the header gives it)."""


@dataclass(frozen=True)
class EerInfo:
    """An EER movie's header.

    Attributes
    ----------
    path : Path
    n_frames : int
        Detector frames (pages holding events; an integrated image before them is not counted).
    shape : tuple of int
        ``(ny, nx)`` of a frame, the sensor grid.
    pixel_size : float
        Å per pixel from ``sensorPixelSize`` (given in metres), 0.0 when the header has none.
    dose_per_frame : float or None
        e/Å² per detector frame from ``totalDose`` (e/pixel), None when the header has none.
    """

    path: Path
    n_frames: int
    shape: tuple[int, int]
    pixel_size: float
    dose_per_frame: float | None

    def fractions(self, grouping: int) -> int:
        """Return the number of whole fractions of ``grouping`` frames."""
        return self.n_frames // grouping


def is_eer(path: str | os.PathLike[str]) -> bool:
    """Return whether ``path`` is named as an EER movie."""
    return Path(path).suffix.lower() in EER_SUFFIXES


def read_eer_info(path: str | os.PathLike[str]) -> EerInfo:
    """Read an EER movie's header: frame count and shape, pixel size, dose; no events.

    Raises
    ------
    InputError
        The file is unreadable, or its pages are not EER-coded frames of one shape.
    """
    path = Path(path)
    with file_errors(path), quiet_tifffile(), tifffile.TiffFile(path) as tif:
        return _header(tif, path)[1]


@contextlib.contextmanager
def iter_eer_fractions(path: str | os.PathLike[str], grouping: int = DEFAULT_EER_GROUPING,
                       ) -> Iterator[tuple[EerInfo, Iterator[np.ndarray]]]:
    """Open an EER movie; yield its header and its fractions, one ``uint16`` array at a time.

    Parameters
    ----------
    path
        The EER file.
    grouping
        Detector frames summed into one fraction; the frames after the last whole fraction are
        left out.

    Raises
    ------
    InputError
        As :func:`read_eer_info`; ``grouping`` is below 1 or leaves fewer than 2 fractions; a
        frame does not decode (the message names the file and the frame).
    """
    path = Path(path)
    if grouping < 1:
        raise InputError(f"{path}: EER grouping must be at least 1 frame, got {grouping}")
    with file_errors(path), quiet_tifffile():
        tif = tifffile.TiffFile(path)
    try:
        with file_errors(path), quiet_tifffile():
            tif.pages.cache = False  # a page is dropped once the next one is read
            first, info = _header(tif, path)
        n_fractions = info.fractions(grouping)
        if n_fractions < 2:
            raise InputError(f"{path}: {info.n_frames} EER frames make {n_fractions} "
                             f"fraction(s) of {grouping}; split-frames needs at least 2 (lower "
                             "--eer-grouping)")
        yield info, _fractions(tif, path, first, info.shape, grouping, n_fractions)
    finally:
        tif.close()


def _fractions(tif: tifffile.TiffFile, path: Path, first: int, shape: tuple[int, int],
               grouping: int, n_fractions: int) -> Iterator[np.ndarray]:
    """Sum the frame pages ``grouping`` at a time from page ``first``, one page decoded at once."""
    with file_errors(path), quiet_tifffile():
        for f in range(n_fractions):
            total = np.zeros(shape, np.uint16)
            for k in range(first + f * grouping, first + (f + 1) * grouping):
                try:
                    events = tif.pages[k].asarray()  # type: ignore[union-attr]
                except Exception as err:
                    raise InputError(f"{path}: EER frame {k - first} does not decode "
                                     f"({err})") from None
                if events.shape != shape:
                    raise InputError(f"{path}: EER frame {k - first} is {events.shape[1]}x"
                                     f"{events.shape[0]} px, the first {shape[1]}x{shape[0]}")
                np.add(total, events, out=total, casting="unsafe")
            yield total


def _header(tif: tifffile.TiffFile, path: Path) -> tuple[int, EerInfo]:
    """Return the index of the first frame page and the movie's header."""
    pages = tif.pages
    first = 0
    page = pages.first
    if page.compression not in EER_COMPRESSIONS:  # an integrated image may come first
        if len(pages) < 2:
            raise InputError(f"{path}: not an EER movie (TIFF compression {page.compression}, "
                             f"expected one of {EER_COMPRESSIONS})")
        first = 1
        page = pages[1]  # type: ignore[assignment]
        if page.compression not in EER_COMPRESSIONS:
            raise InputError(f"{path}: not an EER movie (TIFF compression {page.compression}, "
                             f"expected one of {EER_COMPRESSIONS})")
    shape = (int(page.imagelength), int(page.imagewidth))
    n_frames = len(pages) - first
    meta = tif.eer_metadata or {}
    size = _number(meta.get("sensorPixelSize.width"))
    if size is None:
        size = _number(_nested(meta, "sensorPixelSize", "width"))
    pixel_size = size * 1e10 if size is not None and size > 0 else 0.0
    total = _number(meta.get("totalDose"))
    dose = total / pixel_size**2 / n_frames if total and pixel_size > 0 else None
    return first, EerInfo(path, n_frames, shape, pixel_size, dose)


def _number(value: object) -> float | None:
    """``value`` as a float, or None."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _nested(meta: dict[str, object], *keys: str) -> object:
    """``meta[k0][k1]…`` or None."""
    value: object = meta
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
