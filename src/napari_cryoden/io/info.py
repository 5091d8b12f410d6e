"""What a micrograph file's header says: :class:`ImageInfo`, shared by every format's reader."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["ImageInfo"]


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
        Pixel size in Å; 1.0 when the header gives none (:attr:`recorded_pixel_size` tells
        which).
    kind : str
        ``"image"`` (one slice), ``"stack"`` (2D images stacked) or ``"volume"`` (an MRC whose
        header declares a 3D map or tomogram). All three are read as z-slices of 2D images.
    voxel_size : tuple of float
        Å per voxel along ``(z, y, x)`` as an MRC header gives them, 0.0 where it gives none;
        a TIFF's pixel size on every axis (0.0 when its tags give none).
    image_stack : bool
        The MRC header itself declares an image stack (MRC2014: space group 0, several slices);
        ``kind`` is ``"stack"`` also when only the suffix says so.
    offset : int
        Where an MRC file's pixels start (0 for TIFF).
    stamp : tuple of int or None
        ``(inode, size, mtime_ns)`` when an MRC header was read: :func:`open_array` refuses a
        file rewritten since.
    """

    path: Path
    shape: tuple[int, int, int]
    dtype: np.dtype
    pixel_size: float
    kind: str = "image"
    voxel_size: tuple[float, float, float] = (0.0, 0.0, 0.0)
    image_stack: bool = False
    offset: int = field(default=0, repr=False)
    stamp: tuple[int, int, int] | None = field(default=None, repr=False, compare=False)

    @property
    def recorded_pixel_size(self) -> float | None:
        """The pixel size in Å the header records, None when it records none (0 in MRC).

        :attr:`pixel_size` falls back to 1.0 for such files, so that older callers keep a
        number; code that must not mistake "unknown" for 1 Å reads this instead.
        """
        return self.pixel_size if self.voxel_size[2] > 0 else None
