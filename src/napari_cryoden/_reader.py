"""napari reader hook: MRC micrographs, stacks and volumes (.mrc .mrcs .map .st .rec).

npe2 calls :func:`napari_get_reader` with a path (or a list of paths) and uses the function it
returns, or tries another reader on ``None``. Deciding is cheap: only the suffix is looked at.
Nothing here imports napari, Qt or torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np

__all__ = ["MRC_SUFFIXES", "napari_get_reader", "read_mrc"]

MRC_SUFFIXES = (".mrc", ".mrcs", ".map", ".st", ".rec")
_STACK_SUFFIXES = (".mrcs", ".st")  # 2D images stacked along the first axis, not a volume

PathOrPaths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
LayerData = tuple[np.ndarray, dict[str, Any], str]


def napari_get_reader(path: PathOrPaths) -> Callable[[PathOrPaths], list[LayerData]] | None:
    """Return :func:`read_mrc` if every path has an MRC suffix, else None.

    Parameters
    ----------
    path : str, PathLike or list of them
        What the user opened; directories are not accepted.
    """
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths or not all(Path(p).suffix.lower() in MRC_SUFFIXES for p in paths):
        return None
    return read_mrc


def read_mrc(path: PathOrPaths) -> list[LayerData]:
    """Read each MRC file as one float32 image layer.

    The layer's ``scale`` is the voxel size in Å per axis; for a stack of 2D micrographs
    (``.mrcs``/``.st`` or an MRC2014 image stack) the stack axis has scale 1. ``metadata``
    holds ``pixel_size``, ``path`` and a few plain header fields under ``mrc_header``.

    Raises
    ------
    napari_cryoden.errors.InputError
        A file is missing, truncated or not a readable MRC file (the message names it).
    """
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    return [_layer(Path(p)) for p in paths]


def _layer(path: Path) -> LayerData:
    from .io.images import read_image

    data, _ = read_image(path)
    header = _header_fields(path)
    voxel = tuple(
        size if size > 0 else 1.0  # 0 means unknown in MRC headers
        for size in (header["voxel_size_z"], header["voxel_size_y"], header["voxel_size_x"])
    )
    if data.ndim == 2:
        scale: tuple[float, ...] = voxel[1:]
    elif path.suffix.lower() in _STACK_SUFFIXES or header["image_stack"]:
        scale = (1.0, *voxel[1:])
    else:
        scale = voxel
    metadata = {"pixel_size": voxel[2], "path": str(path), "mrc_header": header}
    return data, {"name": path.stem, "scale": scale, "metadata": metadata}, "image"


def _header_fields(path: Path) -> dict[str, Any]:
    """Plain (JSON-able) header fields: sizes, mode, voxel size in Å and the stack flag."""
    with mrcfile.open(path, header_only=True, permissive=True) as mrc:
        header, voxel = mrc.header, mrc.voxel_size
    stack = int(header.nz) > 1 and int(header.ispg) == 0  # MRC2014: space group 0 = image stack
    return {
        "nx": int(header.nx),
        "ny": int(header.ny),
        "nz": int(header.nz),
        "mode": int(header.mode),
        "voxel_size_x": float(voxel.x),
        "voxel_size_y": float(voxel.y),
        "voxel_size_z": float(voxel.z),
        "image_stack": stack,
    }
