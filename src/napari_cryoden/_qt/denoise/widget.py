"""The Denoise panel: run a trained model on an image layer, whole or a region, and compare.

The user picks an image layer, a model (one the Train widget registered, or a ``.safetensors``
file), a device and a region, and clicks *Denoise*. The core's :func:`inference.denoise` runs in
a napari worker; its progress callback is forwarded to the main thread, where the progress bar
and, at the end, the ``"<name> denoised"`` layer are updated. Workers never touch layers.

A region (a Shapes rectangle or the field of view) is denoised with a margin of the model's
receptive radius and normalised with the statistics of the whole slice, so the pixels written
are exactly those of a whole-image run; the rest of ``"<name> denoised"`` keeps the input.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, ProgressBar, PushButton
from napari.layers import Image, Shapes
from napari.utils.notifications import show_error, show_warning
from psygnal import Signal
from superqt.utils import ensure_main_thread

from napari_cryoden._qt._models import MODELS, SHIPPED_LABELS
from napari_cryoden._qt.denoise.compare import (
    Box,
    DenoiseJob,
    DenoiseResult,
    SideBySide,
    field_of_view_box,
    import_raw_folder,
    rectangle_box,
    run_job,
    write_denoised,
)
from napari_cryoden.config.sections import DEVICES
from napari_cryoden.errors import CryodenError, InputError

if TYPE_CHECKING:
    import napari

__all__ = ["DenoiseWidget", "REGIONS", "RAW_LAYOUTS"]

WHOLE, RECTANGLE, FIELD_OF_VIEW = (
    "whole image", "rectangle in a Shapes layer", "current field of view")
REGIONS = (WHOLE, RECTANGLE, FIELD_OF_VIEW)
RAW_LAYOUTS = ("oihw", "fortran", "hwio", "seed-legacy", "auto")  # interop.LAYOUTS + auto
AUTO_CROP = 512  # px: auto ranks the layouts on this central square of the noisy/clean pair


class DenoiseWidget(Container):
    """Denoise an image layer with a trained model, and compare noisy | denoised | clean."""

    finished = Signal(object)
    """Emitted with the ``"<name> denoised"`` layer after each run (main thread)."""
    raw_loaded = Signal(str)
    """Emitted with the model label after a raw weight folder was imported (main thread)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        self.worker: Any = None
        self.raw_worker: Any = None
        self.raw_folder: Path | None = None
        self.side_by_side = SideBySide(viewer)
        self._source: Image | None = None
        self._clean_chosen = False
        self._build()
        self._connect()
        self._reset()

    # ---- building ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.image = ComboBox(label="Image", choices=self._images,
                              tooltip="The micrograph or stack to denoise (an Image layer).")
        self.model = ComboBox(label="Model", choices=lambda _: MODELS.labels(), tooltip=(
            "A model trained in this session (the Train widget adds its best checkpoint after "
            "every new best epoch), a weight file you opened, or a model that ships with the "
            "plugin: 'general' (a small U-Net trained on varied simulated micrographs) or "
            "'general-fast' (the 3-layer net, ~10x faster on a CPU)."))
        self.open_button = PushButton(text="Open weight file…", tooltip=(
            "Choose a .safetensors weight file written by cryoden; it is added to Model."))
        self.raw_button = PushButton(text="Open raw weight folder…", tooltip=(
            "Choose a folder of raw float32 files (conv1_weights.bin, conv1_bias.bin, …), e.g. "
            "from the Fortran trainer; it is read in Raw layout and added to Model."))
        self.raw_layout = ComboBox(label="Raw layout", choices=RAW_LAYOUTS, value="oihw",
                                   tooltip=(
            "How the raw files order each kernel: oihw (PyTorch), fortran (whio), hwio, "
            "seed-legacy (hwio, the seed's bug), or auto: try them all on the Image layer and "
            "the Clean layer and keep the clear winner. Set from the folder's cryoden_raw.json "
            "when it has one; changing it re-reads the folder."))
        self.device = ComboBox(label="Device", choices=DEVICES, value="auto", tooltip=(
            "Where the model runs: auto (cuda > mps > cpu), cpu, cuda or mps."))
        self.region = ComboBox(label="Region", choices=REGIONS, value=WHOLE, tooltip=(
            "Denoise the whole image (every slice of a stack), the first selected rectangle of a "
            "Shapes layer, or what the canvas shows now. Regions of a stack use the slice shown."))
        self.shapes = ComboBox(label="Shapes layer", choices=self._shapes_layers,
                               tooltip="The Shapes layer holding the rectangle to denoise.")
        self.denoise_button = PushButton(text="Denoise", tooltip=(
            "Adds (or updates) the layer '<image> denoised' with the same scale and position."))
        self.progress = ProgressBar(label="Progress", value=0, min=0, max=1)
        self.status = Label(label="", value="")
        self.clean = ComboBox(label="Clean (optional)", choices=self._clean_choices, tooltip=(
            "A noise-free or reference image shown as the third panel of Compare; 'none' "
            "shows noisy | denoised only. Contrast is taken from it when given."))
        self.compare_button = PushButton(text="Compare side by side", tooltip=(
            "Grid view: noisy | denoised | clean with the same contrast limits; pan and zoom "
            "move all panels together. Click again to go back."))
        self.extend([self.image, self.model, self.open_button, self.raw_layout,
                     self.raw_button, self.device, self.region,
                     self.shapes, self.denoise_button, self.progress, self.status,
                     self.clean, self.compare_button])
        self.shapes.visible = False

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
        self.raw_button.clicked.connect(self._open_raw_folder)
        self.raw_layout.changed.connect(self._on_raw_layout_changed)
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
        if self.clean.value is None and not self._clean_chosen:
            # first guess for the reference panel: a layer called "... clean ..."
            guess = [layer for _, layer in self._images() if "clean" in layer.name.lower()]
            if guess:
                self.clean.changed.disconnect(self._on_clean_changed)
                self.clean.value = guess[0]
                self.clean.changed.connect(self._on_clean_changed)

    def _on_clean_changed(self, value: Any) -> None:
        self._clean_chosen = True

    def _on_model_registered(self, label: str, path: Path) -> None:
        self.model.reset_choices()
        if self.model.value is None or self.model.value in SHIPPED_LABELS:
            self.model.value = label  # a model of this session beats the shipped default

    def _on_region_changed(self, value: str) -> None:
        self.shapes.visible = value == RECTANGLE

    def _open_weight_file(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(
            self.native, "Open a weight file", "", "cryoden weight files (*.safetensors)")
        if path:
            self.add_weight_file(path)

    def add_weight_file(self, path: str | Path) -> None:
        """Register a weight file in the model list under its file name and select it."""
        path = Path(path)
        MODELS.register(path.name, path)
        self.model.value = path.name

    # ---- raw weight folders ------------------------------------------------------------------
    def _open_raw_folder(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self.native, "Open a raw weight folder")
        if folder:
            self.add_raw_folder(folder)

    def _on_raw_layout_changed(self, value: str) -> None:
        if self.raw_folder is not None:
            self.add_raw_folder(self.raw_folder, value)

    def add_raw_folder(self, folder: str | Path, layout: str | None = None) -> None:
        """Import a raw weight folder in ``layout`` (default: its sidecar's, else the chosen
        one) in a worker; the model is registered as ``"<folder> (raw, <layout>)"``."""
        from napari_cryoden.interop.raw import read_sidecar

        folder = Path(folder)
        try:
            layout = layout or _layout_choice((read_sidecar(folder) or {}).get("layout"),
                                              self.raw_layout.value)
        except CryodenError as exc:
            show_error(_message(exc))
            return
        self.raw_folder = folder
        with self.raw_layout.changed.blocked():
            self.raw_layout.value = layout
        try:
            pair = self._auto_pair() if layout == "auto" else None
        except InputError as exc:
            show_error(_message(exc))
            return
        self._start_raw_import(folder, layout, pair)

    def _auto_pair(self) -> tuple[np.ndarray, np.ndarray]:
        noisy, clean = self.image.value, self.clean.value
        if noisy is None or clean is None or clean is noisy:
            raise InputError("Raw layout auto needs a noisy/clean pair: pick the noisy "
                             "micrograph under Image and its clean reference under 'Clean "
                             "(optional)', or choose the writer's layout")
        pair = tuple(_central_slice(layer.data) for layer in (noisy, clean))
        if pair[0].shape != pair[1].shape:
            raise InputError(f"{noisy.name!r} and {clean.name!r} differ in shape: auto needs "
                             "a matching noisy/clean pair")
        return pair  # type: ignore[return-value]

    def _start_raw_import(self, folder: Path, layout: str,
                          pair: tuple[np.ndarray, np.ndarray] | None) -> None:
        from napari.qt.threading import create_worker

        if self.raw_worker is not None:
            show_warning("Still reading the previous raw weight folder: try again in a moment")
            return
        out = _raw_dir() / f"{len(MODELS.registered())}-{folder.name}-{layout}.safetensors"
        self.raw_button.enabled, self.raw_button.text = False, "Reading raw weights…"
        self.raw_worker = create_worker(import_raw_folder, folder, layout, out, pair, _connect={
            "returned": partial(self._on_raw_returned, folder, layout, out),
            "errored": self._on_raw_errored, "finished": self._on_raw_finished})

    def _on_raw_returned(self, folder: Path, layout: str, out: Path, axes: str) -> None:
        label = f"{folder.name} (raw, {layout if layout != 'auto' else 'auto: ' + axes})"
        MODELS.register(label, out)
        self.model.value = label
        self.raw_loaded.emit(label)

    def _on_raw_errored(self, exc: BaseException) -> None:
        ranking = getattr(exc, "ranking", None)
        table = "\n".join(ranking.table().splitlines()[:4]) if ranking is not None else ""
        show_error(f"Could not read the raw weight folder: {_message(exc)}"
                   + (f"\n{table}" if table else ""))

    def _on_raw_finished(self) -> None:
        self.raw_worker = None
        self.raw_button.enabled, self.raw_button.text = True, "Open raw weight folder…"

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
            show_error(_message(exc))
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
        label = self.model.value
        weights = MODELS.get(label) if label is not None else None
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
            show_error(f"Could not write the denoised layer: {_message(exc)}")
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
        show_error(f"Denoising failed: {_message(exc)}")

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
        """Grid view noisy | denoised | clean with matched contrast; a second call goes back."""
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
        self.side_by_side.show(panels, reference=panels[2] if len(panels) == 3 else noisy)
        self.compare_button.text = "Back to single view"


def _message(exc: BaseException) -> str:
    """Our errors are written for users; others get their type name for the bug report."""
    return str(exc) if isinstance(exc, CryodenError) else f"{type(exc).__name__}: {exc}"


def _layout_choice(sidecar_layout: str | None, current: str) -> str:
    """The combo choice for a sidecar's layout (a name or an axis string), else ``current``."""
    from napari_cryoden.interop.raw import LAYOUTS

    if sidecar_layout in RAW_LAYOUTS:
        return str(sidecar_layout)
    names = [name for name, axes in LAYOUTS.items() if axes == sidecar_layout]
    return names[0] if names else current


def _central_slice(data: Any) -> np.ndarray:
    """The first slice of a stack, central ``AUTO_CROP`` px square, as float32."""
    image = np.asarray(data[0] if np.ndim(data) == 3 else data, np.float32)
    y, x = (max((n - AUTO_CROP) // 2, 0) for n in image.shape)
    return image[y:y + AUTO_CROP, x:x + AUTO_CROP]


_RAW_DIR: list[Path] = []


def _raw_dir() -> Path:
    """A temporary folder for imported raw models, removed when Python exits."""
    if not _RAW_DIR:
        import atexit
        import shutil
        import tempfile

        _RAW_DIR.append(Path(tempfile.mkdtemp(prefix="cryoden-raw-")))
        atexit.register(shutil.rmtree, _RAW_DIR[0], ignore_errors=True)
    return _RAW_DIR[0]
