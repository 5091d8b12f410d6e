"""Noisy | denoised | clean side by side: labelled, framed, each with its own contrast.

:class:`SideBySide` uses napari's grid mode: every panel is drawn through the one scene camera,
so panning or zooming one panel moves all of them. What a reader needs to compare them:

* each panel is labelled with its layer's name (the layer's own name overlay, drawn in the
  corner of its grid cell);
* each panel gets its own robust contrast (the 0.5 and 99.5 percentiles of its data, so a few
  hot pixels cannot turn a panel black, and a noisy panel is not judged by the clean one's range);
* the grid shape (a row, or rows) is the one that shows the panels largest on this canvas, and
  the camera is framed on the compared images alone, whatever else the viewer holds;
* *Back* puts everything back as it was: layer order, visibility, translate, contrast, name
  overlays, selection, grid settings and camera (:class:`ViewState`).

Everything here runs on the main thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_cryoden._qt.denoise.layers import robust_contrast_limits

if TYPE_CHECKING:
    import napari
    from napari.layers import Image, Layer

__all__ = ["SideBySide", "ViewState", "grid_shape", "panels_extent"]

GRID_SPACING = 6
"""Screen pixels between the panels."""
MARGIN = 0.05
"""Blank border around the framed panels, a fraction of a panel (napari's reset_view default)."""
LABEL_FONT_SIZE = 12
_CAMERA = ("center", "zoom", "angles")
_GRID = ("enabled", "shape", "stride", "spacing")
_OVERLAY = ("visible", "box", "font_size")


@dataclass(frozen=True)
class ViewState:
    """What the compare view changes, as it was before: enough to put it all back."""

    order: tuple[Layer, ...]
    layers: tuple[dict[str, Any], ...]  # per layer of ``order``: its attributes
    selected: tuple[Layer, ...]
    active: Layer | None
    grid: dict[str, Any]
    camera: dict[str, Any]

    @classmethod
    def of(cls, viewer: napari.Viewer) -> ViewState:
        """The present state of ``viewer``."""
        order = tuple(viewer.layers)
        return cls(order, tuple(_layer_state(layer) for layer in order),
                   tuple(viewer.layers.selection), viewer.layers.selection.active,
                   {k: getattr(viewer.canvas.grid, k) for k in _GRID},
                   {k: getattr(viewer.scene.camera, k) for k in _CAMERA})

    def restore(self, viewer: napari.Viewer) -> None:
        """Put ``viewer`` back; layers removed since are skipped, layers added since go on top."""
        viewer.canvas.grid.update(self.grid)
        kept = [layer for layer in self.order if layer in viewer.layers]
        added = [layer for layer in viewer.layers if layer not in self.order]
        for index, layer in enumerate(kept + added):
            viewer.layers.move(viewer.layers.index(layer), index)
        for layer, state in zip(self.order, self.layers, strict=True):
            if layer in viewer.layers:
                _set_layer_state(layer, state)
        selection = viewer.layers.selection
        selection.clear()
        selection.update(layer for layer in self.selected if layer in viewer.layers)
        if self.active is not None and self.active in viewer.layers:
            selection.active = self.active
        viewer.scene.camera.update(self.camera)


def _layer_state(layer: Layer) -> dict[str, Any]:
    state: dict[str, Any] = {"visible": layer.visible, "translate": np.array(layer.translate),
                             "overlay": {k: getattr(layer.name_overlay, k) for k in _OVERLAY}}
    if hasattr(layer, "contrast_limits"):
        state["range"] = tuple(layer.contrast_limits_range)
        state["limits"] = tuple(layer.contrast_limits)
    return state


def _set_layer_state(layer: Layer, state: dict[str, Any]) -> None:
    if not np.array_equal(layer.translate, state["translate"]):
        layer.translate = state["translate"]
    if "limits" in state:
        layer.contrast_limits_range = state["range"]
        layer.contrast_limits = state["limits"]
    layer.name_overlay.update(state["overlay"])
    layer.visible = state["visible"]


def panels_extent(layers: list[Image]) -> np.ndarray:
    """``[[y0, x0], [y1, x1]]``: world corners of the shown plane of ``layers``, pixel edges in."""
    lows, highs = [], []
    for layer in layers:
        extent = layer.extent
        half = np.asarray(extent.step[-2:]) / 2
        lows.append(extent.world[0, -2:] - half)
        highs.append(extent.world[1, -2:] + half)
    return np.array([np.min(lows, axis=0), np.max(highs, axis=0)])


def grid_shape(n: int, canvas: tuple[float, float], panel: np.ndarray,
               spacing: float = GRID_SPACING) -> tuple[int, int]:
    """``(rows, columns)`` that show ``n`` panels of world size ``panel`` (h, w) largest.

    ``canvas`` is (height, width) in screen pixels. Ties go to fewer rows: a row reads best.
    """
    best, best_scale = (1, n), -1.0
    for rows in range(1, n + 1):
        columns = math.ceil(n / rows)
        cell = ((canvas[0] - (rows - 1) * spacing) / rows,
                (canvas[1] - (columns - 1) * spacing) / columns)
        scale = min(cell[0] / panel[0], cell[1] / panel[1])
        if scale > best_scale * (1 + 1e-9):
            best, best_scale = (rows, columns), scale
    return best


class SideBySide:
    """Grid mode with some image layers side by side, in reading order, and nothing else shown."""

    def __init__(self, viewer: napari.Viewer) -> None:
        self.viewer = viewer
        self._saved: ViewState | None = None

    @property
    def active(self) -> bool:
        """Whether the side-by-side view is shown now."""
        return self._saved is not None

    def show(self, panels: list[Image]) -> list[tuple[float, float]]:
        """Show ``panels`` labelled, framed, each with its own contrast; return the limits."""
        self._saved = ViewState.of(self.viewer)
        layers = self.viewer.layers
        for layer in layers:
            layer.visible = any(layer == shown for shown in panels)  # == also for proxies
        # grid cells follow the layer list's order (stride 1): put ours last, in reading order
        for layer in panels:
            layers.move(layers.index(layer), len(layers))
        limits = [self._prepare(layer) for layer in panels]
        extent = panels_extent(panels)
        size = extent[1] - extent[0]
        shape = grid_shape(len(panels), self.viewer.canvas.size, size)
        self.viewer.canvas.grid.update({"stride": 1, "shape": shape, "spacing": GRID_SPACING,
                                        "enabled": True})
        self._frame(extent)
        return limits

    def _prepare(self, layer: Image) -> tuple[float, float]:
        """Its own robust contrast and its name in the corner of its cell."""
        limits = robust_contrast_limits(layer.data)
        low, high = layer.contrast_limits_range
        layer.contrast_limits_range = (min(low, limits[0]), max(high, limits[1]))
        layer.contrast_limits = limits
        layer.name_overlay.update({"visible": True, "box": True,
                                   "font_size": LABEL_FONT_SIZE})
        return limits

    def _frame(self, extent: np.ndarray) -> None:
        """Centre the camera on ``extent`` and zoom so that it fills one grid cell."""
        camera, size = self.viewer.scene.camera, extent[1] - extent[0]
        cell = np.asarray(self.viewer.canvas.viewbox_size(self.viewer.layers), float)
        camera.center = (*camera.center[:-2], *((extent[0] + extent[1]) / 2))
        camera.zoom = (1 - MARGIN) * float(np.min(cell / np.maximum(size, 1e-12)))

    def hide(self) -> None:
        """Put the viewer back exactly as it was before :meth:`show`."""
        if self._saved is None:
            return
        saved, self._saved = self._saved, None
        saved.restore(self.viewer)

    def positions(self) -> dict[str, tuple[int, int]]:
        """Grid (row, column) of each visible layer, by name (for tests and the status line)."""
        layers = self.viewer.layers
        return {layer.name: self.viewer.canvas.grid.position(i, layers)
                for i, layer in enumerate(layers) if layer.visible}
