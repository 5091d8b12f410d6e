"""MRC headers read by :mod:`mrcfile` and checked before a single pixel is touched.

:mod:`mrcfile` parses the 1024-byte header; this module checks every field that sizes something
against the file's length, and only then are the pixels memory-mapped with
:class:`numpy.memmap`. Nothing is allocated in proportion to what the header declares: mrcfile's
own ``header_only`` mode still reads the extended header into a buffer of the declared size
(2 GB for a corrupt ``nsymbt``) before anything can check it, so :class:`_MainHeader` stops
mrcfile after the main header. A blank or wrong machine stamp is read in the byte order whose
mode is known and whose sizes fit the file (a view of mrcfile's header, never a second parse).
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import mrcfile.utils
import numpy as np
from mrcfile.mrcfile import MrcFile

from ..errors import InputError
from .info import ImageInfo

__all__ = ["read_mrc_info", "map_mrc", "mode_of", "SUPPORTED_MODES"]

HEADER_BYTES = 1024
SUPPORTED_MODES = {0: "i1", 1: "i2", 2: "f4", 6: "u2", 12: "f2"}
_UNSUPPORTED_MODES = (3, 4, 101)  # complex int16, complex float32, 4-bit packed
_MODE_OF = {np.dtype(code): mode for mode, code in SUPPORTED_MODES.items()}
_MAP_ID = b"MAP"  # MRC2014 says 'MAP '; the first three bytes are what readers check
_WARNINGS = threading.Lock()  # catch_warnings swaps process-wide state: one reader at a time


class _MainHeader(MrcFile):
    """mrcfile's reader stopped after the 1024-byte main header; records the file's stat too."""

    def _read(self, header_only: bool = False) -> None:
        stat = os.fstat(self._iostream.fileno())
        self.stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        self._header = None
        if stat.st_size < HEADER_BYTES:
            return  # reported with the file's name by read_mrc_info
        self._iostream.seek(0)
        with _WARNINGS, warnings.catch_warnings():  # the InputError says what is wrong, once
            warnings.simplefilter("ignore", RuntimeWarning)
            self._read_header()


@dataclass(frozen=True)
class _Fields:
    """The header fields that size or place something, seen in one byte order."""

    order: str
    nx: int
    ny: int
    nz: int
    mode: int
    mx: int
    my: int
    mz: int
    ispg: int
    nsymbt: int
    cella: tuple[float, float, float]  # cell lengths in Å along x, y, z

    @classmethod
    def of(cls, header: np.recarray, order: Literal["<", ">"]) -> _Fields:
        """View mrcfile's parsed header in byte order ``order`` (no bytes are parsed again)."""
        h: Any = header.view(header.dtype.newbyteorder(order))
        return cls(order, int(h.nx), int(h.ny), int(h.nz), int(h.mode), int(h.mx), int(h.my),
                   int(h.mz), int(h.ispg), int(h.nsymbt),
                   (float(h.cella.x), float(h.cella.y), float(h.cella.z)))

    @property
    def plausible(self) -> bool:
        """Known mode and positive sizes: how a blank machine stamp's byte order is guessed."""
        return (self.mode in SUPPORTED_MODES or self.mode in _UNSUPPORTED_MODES) and min(
            self.nx, self.ny, self.nz) >= 1 and self.nsymbt >= 0

    def data_bytes(self) -> int:
        """Bytes of pixel data the header declares (Python ints: no overflow)."""
        itemsize = np.dtype(SUPPORTED_MODES.get(self.mode, "i1")).itemsize
        return math.prod((self.nx, self.ny, self.nz, itemsize))

    def voxel_size(self) -> tuple[float, float, float]:
        """Å per voxel along (z, y, x): cell length / sampling, 0.0 where that is no size."""
        pairs = zip(self.cella[::-1], (self.mz, self.my, self.mx), strict=True)
        sizes = [length / sampling if sampling > 0 else 0.0 for length, sampling in pairs]
        z, y, x = (value if math.isfinite(value) else 0.0 for value in sizes)
        return z, y, x


def read_mrc_info(path: Path, stack: bool = False) -> ImageInfo:
    """Read the header of the MRC file at ``path`` through mrcfile and check it.

    Parameters
    ----------
    path : Path
        The file.
    stack : bool
        Its suffix says 3D data is a stack of 2D images whatever the space group.

    Returns
    -------
    ImageInfo
        Shape, pixel type, sizes, kind, data offset and the file's stat, all checked against
        the file's length.

    Raises
    ------
    InputError
        Too short for a header, no ``MAP`` ID, unknown or unsupported mode, sizes < 1, a 4D
        volume stack, a negative extended header, or a file shorter (truncated) or longer by
        at least one slice (wrong dimensions) than the header says.
    OSError
        The file cannot be opened or read (the caller names the file).
    """
    with _MainHeader(path, permissive=True) as mrc:
        header, stamp = mrc.header, mrc.stamp
    size = stamp[1]
    if header is None:
        raise InputError(f"{path}: too short for an MRC header ({size} of 1024 bytes)")
    if bytes(header.map)[:3] != _MAP_ID:
        raise InputError(f"{path}: not an MRC file (no 'MAP' ID in the header) or corrupt")
    h = _choose_byte_order(header, size)
    _check_fields(path, h)
    _check_size(path, h, size)
    kind = "image" if h.nz == 1 else ("stack" if h.ispg == 0 or stack else "volume")
    voxel = h.voxel_size()
    return ImageInfo(
        path, shape=(h.nz, h.ny, h.nx), dtype=np.dtype(h.order + SUPPORTED_MODES[h.mode]),
        pixel_size=voxel[2] if voxel[2] > 0 else 1.0, kind=kind, voxel_size=voxel,
        image_stack=h.nz > 1 and h.ispg == 0, offset=HEADER_BYTES + h.nsymbt, stamp=stamp)


def map_mrc(info: ImageInfo) -> np.ndarray:
    """Map the pixels as a read-only ``(n, ny, nx)`` array; unmapped when the last view goes.

    The header is not read again: ``info`` (from :func:`read_mrc_info`) says where the pixels
    are, and the file's stat says whether it is still the file that header came from.

    Raises
    ------
    InputError
        The file was replaced or rewritten since ``info`` was read from it.
    """
    with open(info.path, "rb") as fh:
        stat = os.fstat(fh.fileno())
        if (stat.st_ino, stat.st_size, stat.st_mtime_ns) != info.stamp:
            raise InputError(f"{info.path}: changed while being read (now {stat.st_size} "
                             "bytes, rewritten after its header was read)")
        return np.memmap(fh, dtype=info.dtype, mode="r", offset=info.offset, shape=info.shape)


def mode_of(dtype: np.dtype) -> int:
    """Return the MRC mode number of a pixel type read from an MRC file (either byte order)."""
    return _MODE_OF[np.dtype(dtype).newbyteorder("=")]


def _stamp_order(header: np.recarray) -> Literal["<", ">"] | None:
    """Return the byte order the machine stamp declares, or None if mrcfile does not know it."""
    try:
        return mrcfile.utils.byte_order_from_machine_stamp(header.machst)
    except ValueError:
        return None


def _choose_byte_order(header: np.recarray, size: int) -> _Fields:
    """Read the header in the stamp's byte order, or in the other one if only that makes sense.

    Files in the wild carry blank or wrong machine stamps; the byte order whose mode is known and
    whose sizes are positive wins, an exact fit with the file's size breaking a tie.
    """
    first = _stamp_order(header) or "<"
    orders: tuple[Literal["<", ">"], ...] = (first, ">" if first == "<" else "<")
    candidates = [_Fields.of(header, order) for order in orders]
    plausible = [c for c in candidates if c.plausible]
    if not plausible:
        return candidates[0]  # reported on by the checks that follow
    exact = [c for c in plausible if HEADER_BYTES + c.nsymbt + c.data_bytes() == size]
    return (exact or plausible)[0]


def _check_fields(path: Path, h: _Fields) -> None:
    if h.mode in _UNSUPPORTED_MODES:
        raise InputError(f"{path}: MRC mode {h.mode} (complex/4-bit) is not supported")
    if h.mode not in SUPPORTED_MODES:
        known = ", ".join(map(str, SUPPORTED_MODES))
        raise InputError(f"{path}: unknown MRC mode {h.mode} (readable modes: {known})")
    if min(h.nx, h.ny, h.nz) < 1:
        raise InputError(f"{path}: corrupt MRC header: size {h.nx}x{h.ny}x{h.nz} (x, y, z "
                         "must each be >= 1)")
    if 401 <= h.ispg <= 630:
        raise InputError(f"{path}: MRC volume stacks (4D, space group {h.ispg}) are not "
                         "supported")
    if h.nsymbt < 0:
        raise InputError(f"{path}: corrupt MRC header: extended header size {h.nsymbt} < 0")


def _check_size(path: Path, h: _Fields, size: int) -> None:
    expected = HEADER_BYTES + h.nsymbt + h.data_bytes()
    declared = f"{h.nz}x{h.ny}x{h.nx} mode {h.mode}"
    if size < expected:
        raise InputError(f"{path}: truncated MRC file ({size} bytes, header says {expected} "
                         f"for {declared}{_extended(h)})")
    slice_bytes = h.data_bytes() // h.nz
    if size - expected >= slice_bytes:
        raise InputError(f"{path}: MRC header and file size disagree ({size} bytes, header says "
                         f"{expected} for {declared}{_extended(h)}: "
                         f"{(size - expected) / slice_bytes:.1f} slices too many)")


def _extended(h: _Fields) -> str:
    return f" + {h.nsymbt} bytes of extended header" if h.nsymbt else ""
