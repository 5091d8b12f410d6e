"""napari reader hook: MRC micrographs, stacks and volumes (the MRC rows of the format table).

npe2 calls :func:`napari_get_reader` with a path (or a list of paths) and uses the function it
returns, or tries another reader on ``None``. Deciding is cheap: only the suffix is looked at,
against :data:`napari_cryoden.io.formats.MRC_SUFFIXES` (``napari.yaml`` lists the same). Each
file's header is read once, by :func:`napari_cryoden.io.images.read_info`, and gives the layer's
scale and metadata. The contrast limits come from percentiles of a strided sample of the pixels
(:func:`napari_cryoden.io.intensity.contrast_limits`, as for the sample data), so a few hot
pixels do not turn the micrograph black. Nothing here imports napari, Qt or torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .data.pairs import micrograph_name
from .errors import InputError
from .io.formats import MRC_SUFFIXES, ImageInfo, format_of
from .io.images import read_info, read_pixels
from .io.intensity import contrast_limits
from .io.mrc import mode_of

__all__ = ["MRC_SUFFIXES", "napari_get_reader", "read_mrc"]

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
    (``.mrcs``/``.st`` or an MRC2014 image stack) the stack axis has scale 1. Its
    ``contrast_limits`` are the 0.5 and 99.5 percentiles of a sample of its pixels, so hot
    pixels do not set the display range. ``metadata`` holds ``pixel_size``, ``path`` and a few
    plain header fields under ``mrc_header``.

    Raises
    ------
    napari_cryoden.errors.InputError
        A file is missing, truncated or not a readable MRC file (the message names it).
    """
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    return [_layer(Path(p)) for p in paths]


def _layer(path: Path) -> LayerData:
    if format_of(path).family != "mrc":
        raise InputError(f"{path}: not an MRC file (this reader opens {', '.join(MRC_SUFFIXES)})")
    info = read_info(path)
    data = read_pixels(info)
    # 0 means unknown: a y size missing falls back to the x size (square pixels), then to 1 Å
    voxel_z, voxel_y, _ = info.voxel_size
    voxel = (voxel_z if voxel_z > 0 else 1.0, voxel_y if voxel_y > 0 else info.pixel_size,
             info.pixel_size)
    if data.ndim == 2:
        scale: tuple[float, ...] = voxel[1:]
    elif info.kind == "stack":  # a stack suffix or MRC2014's image-stack flag
        scale = (1.0, *voxel[1:])
    else:
        scale = voxel
    metadata = {"pixel_size": voxel[2], "path": str(path), "mrc_header": _header_fields(info)}
    kwargs = {"name": micrograph_name(path), "scale": scale,
              "contrast_limits": contrast_limits(data), "metadata": metadata}
    return data, kwargs, "image"


def _header_fields(info: ImageInfo) -> dict[str, Any]:
    """Plain (JSON-able) header fields: sizes, mode, voxel size in Å and the stack flag."""
    nz, ny, nx = info.shape
    voxel_z, voxel_y, voxel_x = info.voxel_size
    return {
        "nx": nx,
        "ny": ny,
        "nz": nz,
        "mode": mode_of(info.dtype),
        "voxel_size_x": voxel_x,
        "voxel_size_y": voxel_y,
        "voxel_size_z": voxel_z,
        "image_stack": info.image_stack,
    }
