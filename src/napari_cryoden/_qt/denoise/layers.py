"""Showing results: the ``"<name> denoised"`` layer, and noisy | denoised | clean side by side.

* :func:`write_denoised` puts a result into the ``"<name> denoised"`` layer: a new layer with the
  input's scale and translate, or new data (or a new region) in the existing one.
* :class:`SideBySide` shows noisy | denoised | clean in napari's grid mode with matched contrast
  limits, and puts the viewer back as it was. Grid mode draws every viewbox with the one scene
  camera, so panning or zooming one panel moves all of them.

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

__all__ = ["PERCENTILES", "SideBySide", "matched_contrast_limits", "write_denoised"]

PERCENTILES = (0.5, 99.5)
"""Contrast limits of the compare view: these percentiles of the reference image."""
_MAX_SAMPLES = 2**20
_GRID_SPACING = 6  # screen pixels between the panels


def matched_contrast_limits(data: Any) -> tuple[float, float]:
    """The 0.5 and 99.5 percentiles of ``data``, from at most ~1 M evenly spaced pixels."""
    array = np.asarray(data)
    step = max(1, math.ceil(math.sqrt(array.size / _MAX_SAMPLES)))
    sample = np.asarray(array[..., ::step, ::step], dtype=np.float64)
    if array.ndim == 3 and sample.size > _MAX_SAMPLES:
        sample = sample[:: math.ceil(sample.size / _MAX_SAMPLES)]
    low, high = (float(v) for v in np.nanpercentile(sample, PERCENTILES))
    return (low, high) if high > low else (low, low + 1.0)


def write_denoised(viewer: napari.Viewer, source: Image, data: np.ndarray, box: Box | None = None,
                   z: int | None = None, metadata: dict[str, Any] | None = None) -> Image:
    """Put a denoised image, or the pixels ``box`` of slice ``z``, into ``"<source> denoised"``.

    Without ``box``, ``data`` replaces the layer's data (the layer is added when missing, with
    the source's scale, translate and colormap, and contrast limits at the 0.5 and 99.5
    percentiles of ``data``). With ``box``, a missing layer starts as a copy of the source, so
    outside the box the input stays, and only the box is overwritten, in place.
    """
    from napari.layers import Image

    name = f"{source.name} denoised"
    found = viewer.layers[name] if name in viewer.layers else None
    target = found if isinstance(found, Image) else None
    if target is not None and target.data.shape != source.data.shape:
        target.data = np.array(source.data, dtype=np.float32)  # input changed shape: start over
    if box is None:
        limits = matched_contrast_limits(data)
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


class SideBySide:
    """Grid mode with some image layers side by side, left to right, and nothing else shown."""

    def __init__(self, viewer: napari.Viewer) -> None:
        self.viewer = viewer
        self._saved: dict[str, Any] | None = None

    @property
    def active(self) -> bool:
        """Whether the side-by-side view is shown now."""
        return self._saved is not None

    def show(self, layers: list[Image], reference: Image) -> tuple[float, float]:
        """Show ``layers`` in a row, all with the contrast limits of ``reference``; return them."""
        grid = self.viewer.canvas.grid
        self._saved = {
            "grid": {k: getattr(grid, k) for k in ("enabled", "shape", "stride", "spacing")},
            "visible": {layer: layer.visible for layer in self.viewer.layers},
        }
        for layer in self.viewer.layers:
            layer.visible = any(layer == shown for shown in layers)  # == also for proxies
        # grid cells follow the layer list's order (stride 1): put ours last, left to right
        for layer in layers:
            self.viewer.layers.move(self.viewer.layers.index(layer), len(self.viewer.layers))
        limits = matched_contrast_limits(reference.data)
        for layer in layers:
            layer.contrast_limits_range = _union(layer.contrast_limits_range, limits)
            layer.contrast_limits = limits
        grid.update({"stride": 1, "shape": (1, len(layers)), "spacing": _GRID_SPACING,
                     "enabled": True})
        return limits

    def hide(self) -> None:
        """Grid off and the layers' visibility as before :meth:`show` (contrast is kept)."""
        if self._saved is None:
            return
        saved, self._saved = self._saved, None
        self.viewer.canvas.grid.update(saved["grid"])
        for layer, visible in saved["visible"].items():
            if layer in self.viewer.layers:
                layer.visible = visible

    def positions(self) -> dict[str, tuple[int, int]]:
        """Grid (row, column) of each visible layer, by name (for tests and the status line)."""
        layers = self.viewer.layers
        return {layer.name: self.viewer.canvas.grid.position(i, layers)
                for i, layer in enumerate(layers) if layer.visible}


def _union(current: tuple[float, float], limits: tuple[float, float]) -> tuple[float, float]:
    return (min(current[0], limits[0]), max(current[1], limits[1]))
