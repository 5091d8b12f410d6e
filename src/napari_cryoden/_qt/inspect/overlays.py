"""The Inspect widget's viewer overlays: the camera on a patch, and the metric map."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["keep_active", "focus", "show_metric_map", "update_map"]


@contextmanager
def keep_active(viewer: Any) -> Iterator[None]:
    """Add overlay layers without taking the layer controls away from the user's layer."""
    active = viewer.layers.selection.active
    yield
    if active is not None and active in viewer.layers:
        viewer.layers.selection.active = active


def focus(viewer: Any, lo: np.ndarray, hi: np.ndarray) -> None:
    """Centre the camera on the box ``lo``–``hi`` (world coordinates) and zoom to fill 90 %."""
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    canvas = getattr(getattr(viewer, "canvas", None), "size", None) or \
        getattr(viewer, "_canvas_size", (600, 800))
    camera.center = tuple((lo + hi) / 2)
    camera.zoom = 0.9 * float(np.min(np.asarray(canvas, float) / (hi - lo)))


def show_metric_map(viewer: Any, layer: Any, data: np.ndarray, name: str, patch_size: int,
                    scale: np.ndarray, translate: np.ndarray) -> Any:
    """Add or update the metric map: one value per patch, laid over the image.

    Parameters
    ----------
    viewer
        The napari viewer.
    layer
        The map layer to update, or ``None`` to add one.
    data
        One value per patch on the patch grid (:func:`~napari_cryoden.evaluation.inspection.
        metric_map`).
    name
        The layer's name, e.g. ``"RMSE map"``.
    patch_size
        Patch edge in pixels: one map pixel covers one patch.
    scale, translate
        The clean layer's transform (y, x).

    Returns
    -------
    napari.layers.Image
        The map layer.
    """
    kwargs = {"scale": scale * patch_size, "translate": translate + scale * (patch_size - 1) / 2}
    limits = _limits(data)
    if layer is None:
        with keep_active(viewer):
            return viewer.add_image(data, name=name, colormap="viridis", opacity=0.5,
                                    contrast_limits=limits, blending="translucent", **kwargs)
    layer.data, layer.name, layer.contrast_limits = data, name, limits
    layer.scale, layer.translate = kwargs["scale"], kwargs["translate"]
    return layer


def _limits(data: np.ndarray) -> tuple[float, float]:
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    return (low, high) if high > low else (low - 0.5, high + 0.5)


def update_map(viewer: Any, layer: Any, analysis: Any, metric: Any, scale: np.ndarray,
               translate: np.ndarray) -> Any:
    """Show ``metric``'s map of ``analysis`` in ``layer`` (added when ``None``); remove the layer
    and return ``None`` when ``analysis`` is ``None`` (no analysis, or the map switched off)."""
    from napari_cryoden.evaluation.inspection import metric_map

    if analysis is None:
        if layer is not None:
            viewer.layers.remove(layer)
        return None
    return show_metric_map(viewer, layer, metric_map(analysis.rows, metric.key),
                           f"{metric.label} map", analysis.patch_size, scale, translate)
