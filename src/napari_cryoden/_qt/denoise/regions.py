"""Where to denoise: a Shapes rectangle or the canvas's field of view, as a pixel box of a layer.

Both map corners through the layers' transforms (scale, translate, ...) into the image layer's data
coordinates and clip to the image; the result is a :class:`~napari_cryoden.inference.region.Box`
for :func:`~napari_cryoden.inference.region.denoise_region`. Main thread only.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from napari_cryoden.errors import InputError
from napari_cryoden.inference.region import Box

if TYPE_CHECKING:
    import napari
    from napari.layers import Image, Shapes

__all__ = ["field_of_view_box", "rectangle_box"]

_EPS = 1e-6


def rectangle_box(shapes: Shapes, image: Image) -> Box:
    """The pixels of ``image`` whose centres lie in a rectangle of ``shapes``.

    The first *selected* rectangle is used, else the first rectangle of the layer; its corners
    are mapped through both layers' transforms (scale, translate, ...) to image pixels.

    Raises
    ------
    InputError
        The layer has no rectangle, or the rectangle misses the image.
    """
    rectangles = [i for i, kind in enumerate(shapes.shape_type) if kind == "rectangle"]
    if not rectangles:
        raise InputError(f"Shapes layer {shapes.name!r} has no rectangle: draw one first")
    selected = [i for i in rectangles if i in shapes.selected_data]
    vertices = np.asarray(shapes.data[(selected or rectangles)[0]], dtype=float)
    corners = np.array([image.world_to_data(shapes.data_to_world(v))[-2:] for v in vertices])
    low, high = corners.min(axis=0), corners.max(axis=0)
    # centres on the edge count as inside (the transforms leave ~1e-14 of rounding)
    box = _clip(image, [math.ceil(v - _EPS) for v in low], [math.floor(v + _EPS) + 1 for v in high])
    if box is None:
        raise InputError(f"the rectangle of {shapes.name!r} lies outside {image.name!r}")
    return box


def field_of_view_box(viewer: napari.Viewer, image: Image) -> Box:
    """The pixels of ``image`` visible on the canvas now (camera centre, zoom and canvas size).

    Raises
    ------
    InputError
        The viewer shows 3D, or the image is not in view.
    """
    if viewer.dims.ndisplay != 2:
        raise InputError("'current field of view' needs the 2D view: toggle off 3D display")
    height, width = viewer.canvas.viewbox_size(viewer.layers)
    camera = viewer.scene.camera
    half = np.array([height, width], dtype=float) / camera.zoom / 2
    centre = np.asarray(camera.center[-2:], dtype=float)
    displayed = list(viewer.dims.displayed[-2:])
    corners = []
    for sy in (-1, 1):
        for sx in (-1, 1):
            point = np.array(viewer.dims.point, dtype=float)
            point[displayed] = centre + half * (sy, sx)
            corners.append(image.world_to_data(point)[-2:])
    low, high = np.min(corners, axis=0), np.max(corners, axis=0)
    # pixel i spans [i - 0.5, i + 0.5): it is visible if that overlaps [low, high]
    box = _clip(image, [math.floor(v - 0.5) + 1 for v in low], [math.ceil(v + 0.5) for v in high])
    if box is None:
        raise InputError(f"{image.name!r} is not in view: pan or zoom to it first")
    return box


def _clip(image: Image, start: list[int], stop: list[int]) -> Box | None:
    ny, nx = image.data.shape[-2:]
    y0, x0 = max(start[0], 0), max(start[1], 0)
    y1, x1 = min(stop[0], ny), min(stop[1], nx)
    return Box(y0, y1, x0, x1) if y1 > y0 and x1 > x0 else None
