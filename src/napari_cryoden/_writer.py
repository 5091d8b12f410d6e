"""napari writer hooks: an Image layer → a float32 MRC file; a Points layer → a pick file.

(File ▸ Save Selected Layer….)

npe2 calls :func:`write_single_image` with the path the user chose, the layer's data and its
attributes (``scale``, ``name``, ...). The pixel size written to the header is the scale of the
last axis (Å per pixel). 2D images become a micrograph, 3D stacks a volume (or an image stack for
``.mrcs``). The file is written atomically by :func:`napari_cryoden.io.images.write_mrc`, so a
failed save never leaves half a file behind.

:func:`write_points` writes a Points layer's points as particle centres in the micrograph's
pixels (``.star``, ``.box``, ``.coord``; :func:`napari_cryoden.io.picks.write_picks`). A
point's data coordinates are taken as the micrograph's pixel (row, column): true of a Points
layer made with napari's *New points layer* button while the micrograph was selected (it copies
the image's scale and translate) and of the picks the Inspect panel opens. A ``.box`` file's box
edge is the points' size. Nothing here imports napari, Qt or torch.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["MRC_WRITE_SUFFIXES", "write_points", "write_single_image"]

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


def write_points(path: str | os.PathLike[str], data: Any, meta: dict[str, Any]) -> list[str]:
    """Write a 2D Points layer as particle centres (x = column, y = row, px).

    Raises
    ------
    napari_cryoden.errors.InputError
        No points, points that are not 2D, or a ``.box`` file of points without one size.
    """
    from .errors import InputError
    from .io.picks import write_picks

    points = np.asarray(data, dtype=np.float64)
    if points.size == 0:
        raise InputError(f"{os.fspath(path)}: the layer has no points to write")
    if points.ndim != 2 or points.shape[1] != 2:
        raise InputError(f"{os.fspath(path)}: picks are (x, y) centres on one micrograph; this "
                         f"layer's points have {points.shape[-1]} coordinates")
    sizes = np.asarray(meta.get("size", []), dtype=np.float64).ravel()
    box = float(np.median(sizes)) if sizes.size else None
    if sizes.size and np.ptp(sizes) > 0 and os.fspath(path).lower().endswith(".box"):
        raise InputError(f"{os.fspath(path)}: the points have several sizes; a .box file has one "
                         "box edge: give them one size")
    write_picks(path, points[:, ::-1], box)
    return [os.fspath(path)]
