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

The panel scrolls (:mod:`.sections`): Image (and its Pixel size when the layer records none),
Model, Region, Denoise, progress and Compare up front; the working pixel size (:mod:`.scale`),
Device, the hot-pixel clip and the raw weight import under a collapsed *Advanced*; then the
other collapsed sections (*Denoise files on disk…*, :mod:`.folder`), each one
:meth:`~.sections.Sections.add_section` call. After a rectangle run the result sits just under
the rectangle's Shapes layer, so the denoised box stays outlined.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, ProgressBar, PushButton
from napari.layers import Image, Shapes
from napari.utils.notifications import show_warning
from psygnal import Signal

from napari_cryoden._qt._models import MODELS
from napari_cryoden._qt.denoise.compare import SideBySide
from napari_cryoden._qt.denoise.fit import FitSection
from napari_cryoden._qt.denoise.folder import FolderDenoise
from napari_cryoden._qt.denoise.raw_folders import RAW_LAYOUTS, RawFolders
from napari_cryoden._qt.denoise.regions import field_of_view_box, rectangle_box
from napari_cryoden._qt.denoise.running import Running
from napari_cryoden._qt.denoise.scale import ScaleChoice
from napari_cryoden._qt.denoise.sections import Sections, collapsible, wrap_text
from napari_cryoden._qt.denoise.weight_files import WeightFiles
from napari_cryoden.config.sections import DEVICES
from napari_cryoden.errors import InputError
from napari_cryoden.inference.region import Box
from napari_cryoden.inference.smoothing import FLAT_BACKGROUND, WHERE

if TYPE_CHECKING:
    import napari

__all__ = ["DenoiseWidget", "REGIONS", "RAW_LAYOUTS"]

WHOLE, RECTANGLE, FIELD_OF_VIEW = (
    "whole image", "rectangle in a Shapes layer", "current field of view")
REGIONS = (WHOLE, RECTANGLE, FIELD_OF_VIEW)


class DenoiseWidget(ScaleChoice, Running, RawFolders, WeightFiles, Sections, Container):
    """Denoise an image layer with a trained model, and compare noisy | denoised | clean."""

    finished = Signal(object)
    """Emitted with the ``"<name> denoised"`` layer after each run (main thread)."""
    raw_loaded = Signal(str)
    """Emitted with the model label after a raw weight folder was imported (main thread)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        self.side_by_side = SideBySide(viewer)
        self._clean_chosen = False
        self._rectangle_from: Shapes | None = None  # the Shapes layer of the last region run
        self._build()
        self._connect()
        self._init_running()
        self._reset()

    # ---- building ---------------------------------------------------------------------------
    def _build(self) -> None:
        self._build_raw()
        self._build_model_choice()
        self._build_run()
        self._build_scale()
        self._build_compare()
        self.main: Container[Any] = Container(labels=True, widgets=[
            self.image, self.pixel_size, self.model, self.open_button, self.smooth,
            self.smooth_where, self.keep_detail, self.region, self.shapes,
            self.denoise_button, self.progress, self.status, self.clean, self.compare_button])
        self.advanced: Container[Any] = Container(labels=True, widgets=[
            self.scale_choice, self.scale_value, self.device, self.pixel_cutoff,
            self.raw_layout, self.raw_button])
        self.shapes.visible = False
        self._lay_out(self.main)  # a scroll area: rows up front, then the collapsed sections
        self.advanced_section = self.add_section(collapsible("Advanced", self.advanced, (
            "The working pixel size, where the model runs, the hot-pixel clip, and importing "
            "raw weight files.")))
        self.folder = FolderDenoise(self.viewer, self)  # files on disk
        self.add_section(self.folder.section)
        self.fit = FitSection(self.viewer, self)  # adapt the model: a section after the folder's

    def _build_model_choice(self) -> None:
        self.image = ComboBox(label="Image", choices=self._images,
                              tooltip="The micrograph or stack to denoise (an Image layer).")
        self.model = ComboBox(label="Model", choices=lambda _: MODELS.choices(), tooltip=(
            "A model trained in this session (the Train widget adds its best checkpoint after "
            "every new best epoch), a weight file you opened, or a model that ships with the "
            "plugin: 'general' (a small U-Net trained on physics-grade simulated sums, whose "
            "noise is coloured like a real motion-corrected sum's), 'general-fast' (the 3-layer "
            "net, ~10x faster on a CPU) or their first releases, '-v1'. Each entry reads "
            "'run folder · file (preset, epoch)'; hover over it for its path and validation "
            "loss. The choice changes only when you change it."))
        self.open_button = PushButton(text="Open weight file…", tooltip=(
            "Choose a .safetensors weight file written by cryoden; it is added to Model."))
        self.smooth = FloatSpinBox(
            label="Smoothing (σ px)", value=FLAT_BACKGROUND.sigma, min=0.0, max=50.0, step=0.5,
            tooltip=(
                "After the model, a Gaussian of this σ in pixels, by default on the background "
                "only (Smooth where): a flat background, as Topaz's output, with particles and "
                "carbon edges kept. The default, 16 px on the background, scored 0.6-1.0 dB "
                "less PSNR against the truth than the model alone and 4.7-4.8 dB more "
                "region-pair SNR on our two held-out physics-grade sets, above Topaz on both; "
                "1.8 dB less PSNR on crowded ones (docs/quality.md). 0: off, the model's "
                "output as it is, faithful to the noise-free image. Also used by 'Denoise "
                "files'."))
        self.smooth_where = ComboBox(
            label="Smooth where", choices=WHERE, value=FLAT_BACKGROUND.where, tooltip=(
                "background: only where the denoised image has little detail (ice); particles, "
                "carbon edges and their fringes keep theirs. everywhere: the whole image alike, "
                "particles too."))
        self.keep_detail = FloatSpinBox(
            label="Detail kept", value=0.0, min=0.0, max=1.0, step=0.1, tooltip=(
                "With Smoothing: the share of the detail finer than the Gaussian that is kept "
                "where it smooths (blurred + share × (denoised − blurred)); 0 is a plain blur. "
                "Everywhere, 12 px keeping 0.4 scored more region-pair SNR than 3.5 px alone "
                "at 1.1-1.4 dB more PSNR (docs/quality.md)."))
        self.device = ComboBox(label="Device", choices=DEVICES, value="auto", tooltip=(
            "Where the model runs: auto (cuda > mps > cpu), cpu, cuda or mps."))
        self.pixel_cutoff = FloatSpinBox(
            label="Clip hot pixels (σ)", value=0.0, min=0.0, max=100.0, step=0.5, tooltip=(
                "Off at 0. Otherwise, before denoising, pixels at least this many standard "
                "deviations from the micrograph's mean are set to the mean (hot pixels of "
                "counting cameras, as Topaz's --pixel-cutoff); 5 suits counting data."))

    def _build_run(self) -> None:
        self.region = ComboBox(label="Region", choices=REGIONS, value=WHOLE, tooltip=(
            "Denoise the whole image (every slice of a stack), the first selected rectangle of a "
            "Shapes layer, or what the canvas shows now. Regions of a stack use the slice shown."))
        self.shapes = ComboBox(label="Shapes layer", choices=self._shapes_layers,
                               tooltip="The Shapes layer holding the rectangle to denoise.")
        self.denoise_button = PushButton(text="Denoise", tooltip=(
            "Adds (or updates) the layer '<image> denoised' with the same scale and position. "
            "While it runs, the button reads Cancel."))
        self.progress = ProgressBar(label="Progress", value=0, min=0, max=1)
        self.status = Label(label="", value="")
        wrap_text(self.status)  # a one-line error naming a long path

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
        self.smooth.changed.connect(self._on_smooth_changed)
        self.compare_button.clicked.connect(self.toggle_compare)
        self.clean.changed.connect(self._on_clean_changed)
        self.viewer.canvas.grid.events.enabled.connect(self._on_grid_toggled)

    def _images(self, _: Any = None) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Image)]

    def _shapes_layers(self, _: Any = None) -> list[tuple[str, Shapes]]:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Shapes)]

    def _clean_choices(self, _: Any = None) -> list[tuple[str, Image | None]]:
        return [("none", None), *self._images()]

    # ---- keeping the choices in step with the viewer and the model registry --------------------
    def reset_choices(self, *_: Any) -> None:
        """Refresh every list of layers and models (napari calls it when layers change)."""
        for part in (self.main, self.advanced):
            part.reset_choices()

    def _reset(self, event: Any = None) -> None:
        self.reset_choices()
        self._show_model_tooltips()
        self._show_pixel_size_row()
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

    def _on_smooth_changed(self, value: float) -> None:
        # where, and a share of what a Gaussian would remove: only with a Gaussian
        self.smooth_where.visible = self.keep_detail.visible = value > 0

    # ---- running (.running) ------------------------------------------------------------------
    def _region(self, layer: Image) -> Box | None:
        self._rectangle_from = None
        if self.region.value == WHOLE:
            return None
        if self.region.value == FIELD_OF_VIEW:
            return field_of_view_box(self.viewer, layer)
        shapes = self.shapes.value
        if shapes is None or shapes not in self.viewer.layers:
            raise InputError("No Shapes layer chosen: add one and draw a rectangle on the image")
        box = rectangle_box(shapes, layer)
        self._rectangle_from = shapes
        return box

    def _keep_shapes_on_top(self, result: Image) -> None:
        """After a rectangle run, put the result just under its Shapes layer: the box stays seen."""
        shapes, layers = self._rectangle_from, self.viewer.layers
        if shapes is None or shapes not in layers or result not in layers:
            return
        at, under = layers.index(result), layers.index(shapes)
        if at > under:
            layers.move(at, under)

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
