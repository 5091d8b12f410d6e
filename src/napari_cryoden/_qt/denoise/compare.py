"""What the Denoise widget does besides drawing itself: the worker's job, regions, results, compare.

* :func:`run_job` is the worker's body (no Qt, no napari): load the checkpoint and run the core's
  :func:`~napari_cryoden.inference.denoiser.denoise` on the whole image, or :func:`denoise_region`
on a box. * :func:`rectangle_box` and :func:`field_of_view_box` turn a Shapes rectangle or the
canvas's
  field of view into a pixel box of an image layer (its data coordinates, scale and translate
  accounted for).
* :func:`write_denoised` puts a result into the ``"<name> denoised"`` layer: a new layer with the
  input's scale and translate, or new data (or a new region) in the existing one.
* :class:`SideBySide` shows noisy | denoised | clean in napari's grid mode with matched contrast
  limits, and puts the viewer back as it was. Grid mode draws every viewbox with the one scene
  camera, so panning or zooming one panel moves all of them.

Apart from :func:`run_job` and :func:`denoise_region`, everything here runs on the main thread.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_cryoden.errors import InputError
from napari_cryoden.inference.region import Box, denoise_region

if TYPE_CHECKING:
    from collections.abc import Callable

    import napari
    from napari.layers import Image, Shapes

__all__ = [
    "Box",
    "DenoiseJob",
    "DenoiseResult",
    "SideBySide",
    "denoise_region",
    "field_of_view_box",
    "import_raw_folder",
    "matched_contrast_limits",
    "rectangle_box",
    "run_job",
    "write_denoised",
]

PERCENTILES = (0.5, 99.5)
"""Contrast limits of the compare view: these percentiles of the reference image."""
_MAX_SAMPLES = 2**20
_EPS = 1e-6
_GRID_SPACING = 6  # screen pixels between the panels


@dataclass(frozen=True)
class DenoiseJob:
    """Everything the worker needs: plain data, no layers.

    ``image`` is the layer's data when denoising it whole; for a region (``box``) it is the 2D
    slice ``z`` of a stack (``z`` is None for a 2D image).
    """

    weights: Path
    device: str
    image: Any
    box: Box | None = None
    name: str = "image"
    z: int | None = None


@dataclass(frozen=True)
class DenoiseResult:
    """The denoised image (or the pixels of ``job.box``) and how long the model ran."""

    job: DenoiseJob
    data: np.ndarray
    seconds: float


def run_job(job: DenoiseJob, progress: Callable[[int, int], None] | None = None) -> DenoiseResult:
    """Load the checkpoint and denoise (the worker's body; no Qt, no napari)."""
    from napari_cryoden.devices import resolve_device
    from napari_cryoden.inference.denoiser import denoise
    from napari_cryoden.models.checkpoint import load_checkpoint

    device = resolve_device(job.device)
    model, checkpoint = load_checkpoint(job.weights, device)
    start = time.perf_counter()
    options = {"normalization": checkpoint.normalization, "device": device, "progress": progress}
    if job.box is None:
        data = denoise(model, np.asarray(job.image), name=job.name, **options)
    else:
        data = denoise_region(model, job.image, job.box, name=job.name, **options)
    return DenoiseResult(job, data, time.perf_counter() - start)


def import_raw_folder(folder: Path, layout: str, out: Path,
                      pair: tuple[np.ndarray, np.ndarray] | None = None) -> str:
    """Write a folder of raw weight files as the weight file ``out``; return the axes used.

    The worker's body of *Open raw weight folder…* (no Qt, no napari). ``layout`` ``"auto"``
    ranks the axis orders on ``pair`` (noisy, clean 2D images) and raises
    :class:`~napari_cryoden.interop.auto.LayoutAmbiguousError` when there is no clear winner.
    """
    from napari_cryoden.interop.auto import (
        _import_config,
        choose_layout,
        import_raw,
        rank_layouts,
    )
    from napari_cryoden.interop.raw import RawNames, read_raw_buffers, read_sidecar

    if layout == "auto":
        if pair is None:
            raise InputError("layout auto needs a noisy/clean pair to rank the layouts")
        sidecar = read_sidecar(folder) or {}
        config = _import_config(None, None, sidecar, folder)
        names = RawNames(sidecar.get("weights_pattern", RawNames.weights),
                         sidecar.get("bias_pattern", RawNames.bias))
        buffers = read_raw_buffers(folder, config.model, names)
        images = [tuple(np.asarray(a, np.float32) for a in pair)]
        layout = choose_layout(rank_layouts(buffers, config.model, images,
                                            config.data.normalization))
    return import_raw(folder, out, layout=layout).axes


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
