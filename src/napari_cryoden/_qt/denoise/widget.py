"""The Denoise panel: run a trained model on an image layer, whole or a region, and compare.

The user picks an image layer, a model (one the Train widget registered, or a ``.safetensors``
file), a device and a region, and clicks *Denoise*. The panel turns its choices into a
:class:`~napari_cryoden.inference.job.DenoiseJob`; the core's
:func:`~napari_cryoden.inference.job.run_job` runs it in a napari worker; its progress callback is
forwarded to the main thread, where the progress bar and, at the end, the ``"<name> denoised"``
layer are updated. Workers never touch layers.

A region (a Shapes rectangle or the field of view, :mod:`.regions`) is denoised by
:func:`~napari_cryoden.inference.region.denoise_region`: its pixels are exactly those of a
whole-image run; the rest of ``"<name> denoised"`` keeps the input (:mod:`.layers`). Compare is
:mod:`.compare`; *Open raw weight folder…* is :mod:`.raw_folders`, the model list and *Open
weight file…* :mod:`.weight_files`.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, ProgressBar, PushButton
from napari.layers import Image, Shapes
from napari.utils.notifications import show_error, show_warning
from psygnal import Signal
from superqt.utils import ensure_main_thread

from napari_cryoden._qt._models import MODELS
from napari_cryoden._qt.denoise.compare import SideBySide
from napari_cryoden._qt.denoise.folder import FolderDenoise
from napari_cryoden._qt.denoise.layers import write_denoised
from napari_cryoden._qt.denoise.raw_folders import RAW_LAYOUTS, RawFolders, message
from napari_cryoden._qt.denoise.regions import field_of_view_box, rectangle_box
from napari_cryoden._qt.denoise.weight_files import WeightFiles
from napari_cryoden.config.sections import DEVICES
from napari_cryoden.errors import InputError
from napari_cryoden.inference.job import DenoiseJob, DenoiseResult, run_job
from napari_cryoden.inference.region import Box

if TYPE_CHECKING:
    import napari

__all__ = ["DenoiseWidget", "REGIONS", "RAW_LAYOUTS"]

WHOLE, RECTANGLE, FIELD_OF_VIEW = (
    "whole image", "rectangle in a Shapes layer", "current field of view")
REGIONS = (WHOLE, RECTANGLE, FIELD_OF_VIEW)


class DenoiseWidget(RawFolders, WeightFiles, Container):
    """Denoise an image layer with a trained model, and compare noisy | denoised | clean."""

    finished = Signal(object)
    """Emitted with the ``"<name> denoised"`` layer after each run (main thread)."""
    raw_loaded = Signal(str)
    """Emitted with the model label after a raw weight folder was imported (main thread)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        self.worker: Any = None
        self.side_by_side = SideBySide(viewer)
        self._source: Image | None = None
        self._clean_chosen = False
        self._build()
        self._connect()
        self._reset()

    # ---- building ---------------------------------------------------------------------------
    def _build(self) -> None:
        self._build_raw()
        self._build_model_choice()
        self._build_run()
        self._build_compare()
        self.extend([self.image, self.model, self.open_button, self.raw_layout,
                     self.raw_button, self.device, self.region,
                     self.shapes, self.denoise_button, self.progress, self.status,
                     self.clean, self.compare_button])
        self.shapes.visible = False
        self.folder = FolderDenoise(self.viewer, self)  # files on disk: a collapsed section
        self.native.layout().addWidget(self.folder.section)

    def _build_model_choice(self) -> None:
        self.image = ComboBox(label="Image", choices=self._images,
                              tooltip="The micrograph or stack to denoise (an Image layer).")
        self.model = ComboBox(label="Model", choices=lambda _: MODELS.choices(), tooltip=(
            "A model trained in this session (the Train widget adds its best checkpoint after "
            "every new best epoch), a weight file you opened, or a model that ships with the "
            "plugin: 'general' (a small U-Net trained on varied simulated micrographs) or "
            "'general-fast' (the 3-layer net, ~10x faster on a CPU). Each entry reads "
            "'run folder · file (preset, epoch)'; hover over it for its path and validation "
            "loss. The choice changes only when you change it."))
        self.open_button = PushButton(text="Open weight file…", tooltip=(
            "Choose a .safetensors weight file written by cryoden; it is added to Model."))
        self.device = ComboBox(label="Device", choices=DEVICES, value="auto", tooltip=(
            "Where the model runs: auto (cuda > mps > cpu), cpu, cuda or mps."))

    def _build_run(self) -> None:
        self.region = ComboBox(label="Region", choices=REGIONS, value=WHOLE, tooltip=(
            "Denoise the whole image (every slice of a stack), the first selected rectangle of a "
            "Shapes layer, or what the canvas shows now. Regions of a stack use the slice shown."))
        self.shapes = ComboBox(label="Shapes layer", choices=self._shapes_layers,
                               tooltip="The Shapes layer holding the rectangle to denoise.")
        self.denoise_button = PushButton(text="Denoise", tooltip=(
            "Adds (or updates) the layer '<image> denoised' with the same scale and position."))
        self.progress = ProgressBar(label="Progress", value=0, min=0, max=1)
        self.status = Label(label="", value="")
        self.status.native.setWordWrap(True)  # a one-line error naming a long path

    def _build_compare(self) -> None:
        self.clean = ComboBox(label="Clean (optional)", choices=self._clean_choices, tooltip=(
            "A noise-free or reference image shown as the third panel of Compare; 'none' "
            "shows noisy | denoised only."))
        self.compare_button = PushButton(text="Compare side by side", tooltip=(
            "Grid view: noisy | denoised | clean, each labelled and with its own contrast; pan "
            "and zoom move all panels together. Click again to go back to the view you had."))

    def _connect(self) -> None:
        events = self.viewer.layers.events
        for event in (events.inserted, events.removed, events.moved):
            event.connect(self._reset)
        for layer in self.viewer.layers:
            layer.events.name.connect(self._reset)
        events.inserted.connect(lambda e: e.value.events.name.connect(self._reset))
        MODELS.changed.connect(self._on_model_registered)
        # the registry outlives this panel: let go of it when Qt deletes the panel
        self.native.destroyed.connect(partial(MODELS.changed.disconnect,
                                              self._on_model_registered, missing_ok=True))
        self.open_button.clicked.connect(self._open_weight_file)
        self.region.changed.connect(self._on_region_changed)
        self.denoise_button.clicked.connect(self.start)
        self.compare_button.clicked.connect(self.toggle_compare)
        self.clean.changed.connect(self._on_clean_changed)
        self.viewer.canvas.grid.events.enabled.connect(self._on_grid_toggled)
        self._show_progress = ensure_main_thread(self._set_progress)

    def _images(self, _: Any = None) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Image)]

    def _shapes_layers(self, _: Any = None) -> list[tuple[str, Shapes]]:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Shapes)]

    def _clean_choices(self, _: Any = None) -> list[tuple[str, Image | None]]:
        return [("none", None), *self._images()]

    # ---- keeping the choices in step with the viewer and the model registry --------------------
    def _reset(self, event: Any = None) -> None:
        self.reset_choices()
        self._show_model_tooltips()
        if self.clean.value is None and not self._clean_chosen:
            # first guess for the reference panel: a layer called "... clean ..."
            guess = [layer for _, layer in self._images() if "clean" in layer.name.lower()]
            if guess:
                self.clean.changed.disconnect(self._on_clean_changed)
                self.clean.value = guess[0]
                self.clean.changed.connect(self._on_clean_changed)

    def _on_clean_changed(self, value: Any) -> None:
        self._clean_chosen = True

    def _on_region_changed(self, value: str) -> None:
        self.shapes.visible = value == RECTANGLE

    # ---- running ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.worker is not None

    def start(self) -> None:
        """Check the choices and start denoising in a worker (errors become notifications)."""
        if self.busy:
            return
        try:
            job, source = self._make_job()
        except Exception as exc:  # a slot must not raise: tell the user instead
            show_error(message(exc))
            return
        from napari.qt.threading import create_worker

        self._source = source
        self.denoise_button.enabled = False
        self.denoise_button.text = "Denoising…"
        self.progress.value, self.status.value = 0, ""
        self.worker = create_worker(run_job, job, self._show_progress, _connect={
            "returned": self._on_returned, "errored": self._on_errored,
            "finished": self._on_finished})

    def _make_job(self) -> tuple[DenoiseJob, Image]:
        layer = self.image.value
        if layer is None or layer not in self.viewer.layers:
            raise InputError("No image layer chosen: open a micrograph and pick it under Image")
        if layer.rgb or layer.multiscale or layer.ndim not in (2, 3):
            kind = "RGB" if layer.rgb else "multiscale" if layer.multiscale else f"{layer.ndim}D"
            raise InputError(f"{layer.name!r} is {kind}: denoise works on 2D micrographs and "
                             "3D stacks of them")
        weights = self.model.value
        if weights is None:
            raise InputError("No model chosen: train one with the Train widget or open a "
                             ".safetensors weight file")
        job = DenoiseJob(weights, self.device.value, layer.data, None, layer.name)
        if self.region.value == WHOLE:
            return job, layer
        box = self._region_box(layer)
        z = None if layer.ndim == 2 else self._current_slice(layer)
        image = layer.data if z is None else layer.data[z]
        return DenoiseJob(weights, self.device.value, image, box, layer.name, z), layer

    def _region_box(self, layer: Image) -> Box:
        if self.region.value == FIELD_OF_VIEW:
            return field_of_view_box(self.viewer, layer)
        shapes = self.shapes.value
        if shapes is None or shapes not in self.viewer.layers:
            raise InputError("No Shapes layer chosen: add one and draw a rectangle on the image")
        return rectangle_box(shapes, layer)

    def _current_slice(self, layer: Image) -> int:
        z = layer.world_to_data(self.viewer.dims.point)[0]
        return int(np.clip(round(float(z)), 0, layer.data.shape[0] - 1))

    def _set_progress(self, done: int, total: int) -> None:
        self.progress.max = max(total, 1)
        self.progress.value = min(done, total)

    def _on_returned(self, result: DenoiseResult) -> None:
        source = self._source
        if source is None or source not in self.viewer.layers:
            show_warning("The image layer was removed while it was being denoised")
            return
        job = result.job
        metadata = {"source_layer": source.name, "model": str(job.weights)}
        try:
            layer = write_denoised(self.viewer, source, result.data, job.box, job.z, metadata)
        except Exception as exc:  # e.g. the input changed shape meanwhile
            show_error(f"Could not write the denoised layer: {message(exc)}")
            return
        size = "×".join(str(n) for n in result.data.shape)
        self.status.value = f"{size} px in {result.seconds:.2f} s"
        if job.box is None:
            self._warn_if_scrambled(result.data, np.asarray(job.image))
        self.finished.emit(layer)

    def _warn_if_scrambled(self, denoised: np.ndarray, noisy: np.ndarray) -> None:
        """The scramble guards against the chosen clean layer, as loud warnings."""
        from napari.utils import notifications

        from napari_cryoden.evaluation.guards import image_warnings

        clean = self.clean.value
        if clean is None or clean not in self.viewer.layers:
            return
        clean_data = np.asarray(clean.data, np.float32)
        if clean_data.shape != denoised.shape:
            return  # not this image's reference: nothing to judge
        for warning in image_warnings(denoised, clean_data, noisy):
            notifications.show_warning(f"Check the weights: {warning}")

    def _on_errored(self, exc: BaseException) -> None:
        show_error(f"Denoising failed: {message(exc)}")

    def _on_finished(self) -> None:
        self.worker, self._source = None, None
        self.denoise_button.enabled = True
        self.denoise_button.text = "Denoise"

    # ---- compare ------------------------------------------------------------------------------
    def _on_grid_toggled(self, event: Any = None) -> None:
        if self.side_by_side.active and not self.viewer.canvas.grid.enabled:
            self.side_by_side.hide()  # grid mode was switched off elsewhere (viewer button)
            self.compare_button.text = "Compare side by side"

    def toggle_compare(self) -> None:
        """Grid view noisy | denoised | clean, labelled and framed; a second call goes back."""
        if self.side_by_side.active:
            self.side_by_side.hide()
            self.compare_button.text = "Compare side by side"
            return
        noisy = self.image.value
        name = f"{noisy.name} denoised" if noisy is not None else ""
        if noisy is None or name not in self.viewer.layers:
            show_warning("Nothing to compare yet: denoise an image first")
            return
        panels = [noisy, self.viewer.layers[name]]
        clean = self.clean.value
        if clean is not None and clean in self.viewer.layers and clean not in panels:
            panels.append(clean)
        self.side_by_side.show(panels)
        self.compare_button.text = "Back to single view"
