"""The image formats by suffix, their headers and pixel access; each problem an InputError.

:data:`FORMATS` is the one table of what the package reads: each :class:`Format` names its
suffixes, whether 3D data in it is a stack of 2D images, and the functions that read its header
and map its pixels. The napari reader hook, :func:`napari_cryoden.io.images.list_images` and the
CLI take their suffixes from it. :func:`read_info` reads only the header; :func:`open_array` maps
(or, for a compressed TIFF, reads) the pixels as ``(n, ny, nx)`` in the file's own dtype, using
what the header said (an MRC header is read once per file opened). The public face of this
module is :mod:`napari_cryoden.io.images`.

Adding a format: add a row to :data:`FORMATS` (and, for one napari should open, its patterns to
``napari.yaml``, which ``tests/io/test_formats.py`` checks against the table).
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from .info import ImageInfo
from .mrc import map_mrc, read_mrc_info
from .tiff import open_tiff, quiet_tifffile, read_tiff_info

__all__ = ["FORMATS", "Format", "SUPPORTED_SUFFIXES", "MRC_SUFFIXES", "ImageInfo", "format_of",
           "is_stack_suffix", "output_suffix", "read_info", "open_array", "file_errors"]

Closer = Callable[[], None]

# What the parsers of a corrupt file raise besides OSError/ValueError (tifffile's own errors are
# ValueErrors; struct, zlib, broken tag tables and "incompatible keyframe" RuntimeErrors the rest).
# tifffile asserts on some corrupt files (e.g. a shaped series whose keyframe has no dtype)
_PARSE_ERRORS = (OSError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error,
                 zlib.error, ZeroDivisionError, OverflowError, AttributeError, RecursionError,
                 RuntimeError, AssertionError)


@dataclass(frozen=True)
class Format:
    """One image file format: the suffixes that pick it and the functions that read it.

    Attributes
    ----------
    name : str
        What users call it, for messages and docs.
    family : str
        ``"mrc"`` or ``"tiff"``: formats of one family share a header layout and reader; the
        napari reader hook opens the ``"mrc"`` family.
    suffixes : tuple of str
        Lower-case file suffixes, with the dot.
    stack : bool
        3D data in such a file is a stack of 2D images whatever its header says (and MRC files
        written with such a suffix get MRC2014's image-stack flag).
    read_info : callable
        ``(path, stack) -> ImageInfo``: reads and checks the header only.
    open_array : callable
        ``(info) -> array``: maps (or reads) the pixels as ``(n, ny, nx)``.
    """

    name: str
    family: str
    suffixes: tuple[str, ...]
    stack: bool
    read_info: Callable[[Path, bool], ImageInfo] = field(repr=False)
    open_array: Callable[[ImageInfo], np.ndarray] = field(repr=False)


FORMATS: tuple[Format, ...] = (
    Format("MRC", "mrc", (".mrc", ".map", ".rec"), False, read_mrc_info, map_mrc),
    Format("MRC image stack", "mrc", (".mrcs", ".st"), True, read_mrc_info, map_mrc),
    Format("TIFF", "tiff", (".tif", ".tiff"), True, read_tiff_info, open_tiff),
)
"""Every format the package reads; a suffix belongs to one row."""

SUPPORTED_SUFFIXES = tuple(suffix for fmt in FORMATS for suffix in fmt.suffixes)
"""Every suffix of :data:`FORMATS`, in table order (the order messages list them in)."""
MRC_SUFFIXES = tuple(suffix for fmt in FORMATS if fmt.family == "mrc" for suffix in fmt.suffixes)
"""The suffixes the napari reader hook opens (``napari.yaml`` lists the same)."""


def format_of(path: str | os.PathLike[str]) -> Format:
    """Return the format a file's suffix (any case) picks.

    Raises
    ------
    InputError
        The suffix is not one of :data:`SUPPORTED_SUFFIXES` (the message lists them).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    for fmt in FORMATS:
        if suffix in fmt.suffixes:
            return fmt
    raise InputError(f"{path}: unsupported file type {suffix or '(no suffix)'!r} "
                     f"(supported: {', '.join(SUPPORTED_SUFFIXES)})")


def is_stack_suffix(path: str | os.PathLike[str]) -> bool:
    """Return whether 3D data in a file named ``path`` is a stack of 2D images by its suffix."""
    suffix = Path(path).suffix.lower()
    return any(fmt.stack for fmt in FORMATS if suffix in fmt.suffixes)


def output_suffix(source: str | os.PathLike[str]) -> str:
    """Return the suffix of a denoised output of ``source``: ``.mrcs`` or ``.mrc``.

    Outputs are float32 MRC whatever the input's format; an image stack stays a stack.
    """
    return ".mrcs" if Path(source).suffix.lower() == ".mrcs" else ".mrc"


def read_info(path: str | os.PathLike[str]) -> ImageInfo:
    """Read a micrograph's header: shape, pixel type and pixel size, no pixel data.

    Nothing is allocated in proportion to the sizes the header declares: they are checked
    against the file's length first.

    Parameters
    ----------
    path : str or PathLike
        The file; its suffix picks the format (:func:`format_of`).

    Returns
    -------
    ImageInfo
        What the header says, checked against the file's length.

    Raises
    ------
    InputError
        The file is missing, unreadable, of an unsupported type or MRC mode, truncated, longer
        than its header says, or not an MRC/TIFF file.
    """
    path = Path(path)
    fmt = format_of(path)
    with file_errors(path), quiet_tifffile():
        if path.is_dir():
            raise InputError(f"{path}: is a folder, not a micrograph file")
        return fmt.read_info(path, fmt.stack)


def open_array(info: ImageInfo) -> tuple[np.ndarray, Closer]:
    """Map (or, for compressed TIFF, read) the pixels as ``(n, ny, nx)``; return a closer too.

    The header is not read again: ``info`` says where the pixels are. The memory map is
    released when the last reference to the array (or a view of it) goes.

    Parameters
    ----------
    info : ImageInfo
        What :func:`read_info` said of the file.

    Returns
    -------
    array : numpy.ndarray
        The pixels in the file's own dtype.
    close : callable
        Call when done with ``array``.

    Raises
    ------
    InputError
        The file changed since ``info`` was read, or holds fewer pixels than it said.
    """
    return format_of(info.path).open_array(info), _do_nothing


def _do_nothing() -> None:
    return None


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
