"""MRC headers read and checked by hand before a single pixel is touched.

:mod:`mrcfile` trusts the header: it allocates the declared extended header before checking the
file holds it (2 GB for a corrupt ``nsymbt``), divides by ``mz`` for volume stacks, and refuses a
file whose machine stamp is blank although its byte order is plain from the header. Here the
1024-byte header is decoded with :mod:`struct`, every field that sizes something is checked
against the file's length, and only then are the pixels memory-mapped with :class:`numpy.memmap`.
Nothing is allocated in proportion to what the header declares.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["MrcHeader", "read_mrc_header", "map_mrc", "SUPPORTED_MODES"]

HEADER_BYTES = 1024
SUPPORTED_MODES = {0: "i1", 1: "i2", 2: "f4", 6: "u2", 12: "f2"}
_UNSUPPORTED_MODES = (3, 4, 101)  # complex int16, complex float32, 4-bit packed
_STACK_SUFFIXES = (".mrcs", ".st")  # 3D data with these suffixes is an image stack
_MAP_ID = b"MAP"  # MRC2014 says 'MAP '; the first three bytes are what readers check


@dataclass(frozen=True)
class MrcHeader:
    """What an MRC header says, already checked against the file's size.

    Attributes
    ----------
    shape : tuple of int
        ``(n_slices, ny, nx)``, each >= 1.
    dtype : numpy.dtype
        The pixel type with the file's byte order.
    offset : int
        Where the pixels start: 1024 + the extended header's size.
    pixel_size : float
        Å per pixel along x (1.0 when the header gives none or nonsense).
    kind : str
        ``"image"`` (one slice), ``"stack"`` (2D images: space group 0 or a ``.mrcs``/``.st``
        suffix) or ``"volume"`` (a 3D map or tomogram, read as its z-slices).
    """

    shape: tuple[int, int, int]
    dtype: np.dtype
    offset: int
    pixel_size: float
    kind: str


@dataclass(frozen=True)
class _Fields:
    order: str
    nx: int
    ny: int
    nz: int
    mode: int
    mx: int
    cella_x: float
    ispg: int
    nsymbt: int

    @property
    def plausible(self) -> bool:
        """Known mode and positive sizes: how a blank machine stamp's byte order is guessed."""
        return (self.mode in SUPPORTED_MODES or self.mode in _UNSUPPORTED_MODES) and min(
            self.nx, self.ny, self.nz) >= 1 and self.nsymbt >= 0

    def data_bytes(self) -> int:
        itemsize = np.dtype(SUPPORTED_MODES.get(self.mode, "i1")).itemsize
        return math.prod((self.nx, self.ny, self.nz, itemsize))  # Python ints: no overflow


def read_mrc_header(path: Path) -> MrcHeader:
    """Decode and check the header of the MRC file at ``path``.

    Raises
    ------
    InputError
        Too short for a header, no ``MAP`` ID, unknown or unsupported mode, sizes < 1, a 4D
        volume stack, a negative extended header, or a file shorter (truncated) or longer by
        at least one slice (wrong dimensions) than the header says.
    OSError
        The file cannot be opened or read (the caller names the file).
    """
    with open(path, "rb") as fh:
        raw = fh.read(HEADER_BYTES)
        size = os.fstat(fh.fileno()).st_size
    if len(raw) < HEADER_BYTES:
        raise InputError(f"{path}: too short for an MRC header ({len(raw)} of 1024 bytes)")
    if raw[208:211] != _MAP_ID:
        raise InputError(f"{path}: not an MRC file (no 'MAP' ID in the header) or corrupt")
    h = _choose_byte_order(raw, size)
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
    _check_size(path, h, size)
    dtype = np.dtype(h.order + SUPPORTED_MODES[h.mode])
    kind = "image" if h.nz == 1 else (
        "stack" if h.ispg == 0 or path.suffix.lower() in _STACK_SUFFIXES else "volume")
    return MrcHeader((h.nz, h.ny, h.nx), dtype, HEADER_BYTES + h.nsymbt, _pixel_size(h), kind)


def map_mrc(path: Path, header: MrcHeader) -> np.ndarray:
    """The pixels as a read-only ``(n, ny, nx)`` memory map; unmapped when the last view goes."""
    return np.memmap(path, dtype=header.dtype, mode="r", offset=header.offset,
                     shape=header.shape)


def _fields(raw: bytes, order: str) -> _Fields:
    nx, ny, nz, mode = struct.unpack_from(order + "4i", raw, 0)
    (mx,) = struct.unpack_from(order + "i", raw, 28)
    (cella_x,) = struct.unpack_from(order + "f", raw, 40)
    ispg, nsymbt = struct.unpack_from(order + "2i", raw, 88)
    return _Fields(order, nx, ny, nz, mode, mx, cella_x, ispg, nsymbt)


def _stamp_order(raw: bytes) -> str | None:
    """The byte order the machine stamp declares (as mrcfile reads it), or None if unknown."""
    first, second = raw[212], raw[213]
    if first == 0x44 and second in (0x44, 0x41):
        return "<"
    if first == 0x11 and second == 0x11:
        return ">"
    return None


def _choose_byte_order(raw: bytes, size: int) -> _Fields:
    """The header in the stamp's byte order, or in the other one if only that makes sense.

    Files in the wild carry blank or wrong machine stamps; the byte order whose mode is known and
    whose sizes are positive wins, an exact fit with the file's size breaking a tie.
    """
    stamp = _stamp_order(raw)
    orders = [stamp or "<", ">" if (stamp or "<") == "<" else "<"]
    candidates = [_fields(raw, order) for order in orders]
    plausible = [c for c in candidates if c.plausible]
    if not plausible:
        return candidates[0]  # reported on by the checks that follow
    exact = [c for c in plausible
             if HEADER_BYTES + c.nsymbt + c.data_bytes() == size]
    return (exact or plausible)[0]


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


def _pixel_size(h: _Fields) -> float:
    value = h.cella_x / h.mx if h.mx > 0 else 0.0
    return value if math.isfinite(value) and value > 0 else 1.0
