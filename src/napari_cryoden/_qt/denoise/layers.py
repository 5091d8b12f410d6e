"""Showing results: the ``"<name> denoised"`` layer, with a robust contrast.

* :func:`write_denoised` puts a result into the ``"<name> denoised"`` layer: a new layer with the
  input's scale and translate, or new data (or a new region) in the existing one.
* :func:`robust_contrast_limits` is the contrast of a result, and of each compare panel
  (:mod:`.compare`): percentiles, so that a few hot pixels do not set the range.

Everything here runs on the main thread.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_cryoden.inference.region import Box

if TYPE_CHECKING:
    import napari
    from napari.layers import Image

__all__ = ["PERCENTILES", "robust_contrast_limits", "write_denoised"]

PERCENTILES = (0.5, 99.5)
"""Contrast limits of a result and of each compare panel: these percentiles of its data."""
_MAX_SAMPLES = 2**20


def robust_contrast_limits(data: Any) -> tuple[float, float]:
    """The 0.5 and 99.5 percentiles of ``data``, from at most ~1 M evenly spaced pixels."""
    array = np.asarray(data)
    step = max(1, math.ceil(math.sqrt(array.size / _MAX_SAMPLES)))
    sample = np.asarray(array[..., ::step, ::step], dtype=np.float64)
    if array.ndim == 3 and sample.size > _MAX_SAMPLES:
        sample = sample[:: math.ceil(sample.size / _MAX_SAMPLES)]
    low, high = (float(v) for v in np.nanpercentile(sample, PERCENTILES))
    return (low, high) if high > low else (low, low + 1.0)


def write_denoised(viewer: napari.Viewer, source: Image, data: np.ndarray, box: Box | None = None,
                   z: int | None = None, metadata: dict[str, Any] | None = None,
                   limits: tuple[float, float] | None = None) -> Image:
    """Put a denoised image, or the pixels ``box`` of slice ``z``, into ``"<source> denoised"``.

    Without ``box``, ``data`` replaces the layer's data (the layer is added when missing, with
    the source's scale, translate and colormap, and contrast limits at the 0.5 and 99.5
    percentiles of ``data``, or ``limits`` when given: computed off the main thread, they spare
    it a pass over a large result). With ``box``, a missing layer starts as a copy of the source, so
    outside the box the input stays, and only the box is overwritten, in place.
    """
    from napari.layers import Image

    name = f"{source.name} denoised"
    found = viewer.layers[name] if name in viewer.layers else None
    target = found if isinstance(found, Image) else None
    if target is not None and target.data.shape != source.data.shape:
        target.data = np.array(source.data, dtype=np.float32)  # input changed shape: start over
    if box is None:
        limits = robust_contrast_limits(data) if limits is None else limits
        if target is None:
            return _add_like(viewer, source, data, name, limits, metadata)
        target.data = data
        target.contrast_limits_range = limits
        target.contrast_limits = limits
        target.scale, target.translate = source.scale, source.translate
        return target
    if target is None:
        copy = np.array(source.data, dtype=np.float32)
        target = _add_like(viewer, source, copy, name, source.contrast_limits, metadata)
    pixels = target.data
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.float32:
        pixels = np.array(pixels, dtype=np.float32)
    plane = pixels if z is None else pixels[z]
    plane[box.y0:box.y1, box.x0:box.x1] = data
    if pixels is target.data:
        target.refresh()
    else:
        target.data = pixels
    return target


def _add_like(viewer: napari.Viewer, source: Image, data: np.ndarray, name: str,
              limits: tuple[float, float], metadata: dict[str, Any] | None) -> Image:
    """A new image layer placed exactly over ``source`` (same transforms and colormap)."""
    meta = {"pixel_size": float(source.scale[-1]), **(metadata or {})}
    return viewer.add_image(
        data, name=name, scale=source.scale, translate=source.translate, rotate=source.rotate,
        shear=source.shear, affine=source.affine, colormap=source.colormap,
        contrast_limits=limits, metadata=meta)
