"""napari writer hook: one Image layer → a float32 MRC file (File ▸ Save Selected Layer…).

npe2 calls :func:`write_single_image` with the path the user chose, the layer's data and its
attributes (``scale``, ``name``, ...). The pixel size written to the header is the scale of the
last axis (Å per pixel). 2D images become a micrograph, 3D stacks a volume (or an image stack for
``.mrcs``). The file is written atomically by :func:`napari_cryoden.io.images.write_mrc`, so a
failed save never leaves half a file behind. Nothing here imports napari, Qt or torch.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["MRC_WRITE_SUFFIXES", "write_single_image"]

MRC_WRITE_SUFFIXES = (".mrc", ".mrcs")


def write_single_image(path: str | os.PathLike[str], data: Any, meta: dict[str, Any]) -> list[str]:
    """Write one image layer as a float32 MRC file with the layer's pixel size.

    Parameters
    ----------
    path : str or PathLike
        Destination file (``.mrc``, or ``.mrcs`` for a stack of 2D micrographs).
    data : array-like
        The layer's data: (y, x) or (z, y, x); for a multiscale layer, the list of levels
        (the full-resolution level is written).
    meta : dict
        The layer's attributes as napari passes them; ``scale[-1]`` is the pixel size in Å.

    Returns
    -------
    list of str
        The path written, as npe2 expects of a writer.

    Raises
    ------
    napari_cryoden.errors.InputError
        RGB data, data that is not 2D or 3D, or a file that cannot be written (names the file).
    """
    from .errors import InputError
    from .io.images import write_mrc

    if meta.get("multiscale"):
        data = data[0]
    array = np.asarray(data, dtype=np.float32)
    if meta.get("rgb") or array.ndim not in (2, 3):
        kind = "RGB" if meta.get("rgb") else f"{array.ndim}D"
        raise InputError(
            f"{os.fspath(path)}: MRC files hold 2D images or 3D stacks; this layer is {kind} "
            f"(shape {array.shape})"
        )
    write_mrc(path, array, _pixel_size(meta))
    return [os.fspath(path)]


def _pixel_size(meta: dict[str, Any]) -> float:
    """Å per pixel: the scale of the last axis, or 1.0 when it is missing or not positive."""
    scale = meta.get("scale")
    value = float(scale[-1]) if scale is not None and len(scale) else 1.0
    return value if np.isfinite(value) and value > 0 else 1.0
