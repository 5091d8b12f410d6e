"""The Inspect widget: per-patch metrics of a denoised micrograph, and the seed's checklist.

"Analyse" scores every patch of the denoised image against the clean one, and the whole image
with the noisy and best-Gaussian baselines (:func:`napari_cryoden.evaluation.inspection.analyse`,
the same scorer as ``cryoden evaluate``), then runs the checklist. A row of the sortable table
(:mod:`napari_cryoden._qt.inspect.table`) jumps the viewer to its patch, outlines it and plots
its scatter and histograms; "metric map" overlays one value per patch
(:mod:`napari_cryoden._qt.inspect.overlays`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, PushButton, SpinBox
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from napari_cryoden._qt._models import MODELS
from napari_cryoden._qt.canvas import FigureCanvasWidget
from napari_cryoden._qt.inspect.chips import show_chips
from napari_cryoden._qt.inspect.overlays import (
    OUTLINE_NAME,
    focus,
    outline_patch,
    show_metric_map,
)
from napari_cryoden._qt.inspect.table import COLUMNS, build_table, fill_table
from napari_cryoden.evaluation.inspection import PatchAnalysis, analyse, metric_map
from napari_cryoden.evaluation.metrics import METRICS

if TYPE_CHECKING:
    import napari

__all__ = ["InspectWidget", "PatchAnalysis", "analyse", "metric_map", "OUTLINE_NAME", "COLUMNS"]

WORKER_PIXELS = 2048 * 2048  # larger images are analysed in a worker thread
MAP_METRICS = {m.label: m for m in METRICS}


class InspectWidget(QWidget):
    """Per-patch table, patch outline and plot, metric map and checklist for one image trio."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = viewer
        self.analysis: PatchAnalysis | None = None
        self._clean_layer: Any = None
        self._map_layer: Any = None
        self._worker: Any = None
        self._build_form()
        self.table = build_table(self._on_row_selected)
        self.summary = QLabel("Choose the images and press Analyse.")
        self.summary.setWordWrap(True)
        self.chips = QHBoxLayout()
        self.canvas = FigureCanvasWidget(viewer)
        self.canvas.setMinimumHeight(260)
        self._layout()
        viewer.layers.events.inserted.connect(self._on_layers_changed)
        viewer.layers.events.removed.connect(self._on_layers_changed)
        for layer in viewer.layers:
            layer.events.name.connect(self._refresh_choices)
        callback = self._on_models_changed
        MODELS.changed.connect(callback)
        self.destroyed.connect(lambda *_: MODELS.changed.disconnect(callback, missing_ok=True))
        self._refresh_choices()

    # -- construction ----------------------------------------------------------------------
    def _build_form(self) -> None:
        images = lambda _w: self._image_choices()  # noqa: E731
        self.noisy = ComboBox(label="noisy (optional)", choices=images, nullable=True,
                              tooltip="The noisy input: adds the noisy RMSE column and the "
                                      "baselines that checklist item 7 compares with.")
        self.denoised = ComboBox(label="denoised", choices=images,
                                 tooltip="The denoiser's output.")
        self.clean = ComboBox(label="clean", choices=images,
                              tooltip="The reference the denoised image is scored against.")
        self.model = ComboBox(label="model (optional)", nullable=True,
                              choices=lambda _w: MODELS.labels(),
                              tooltip="The model that denoised the image: its training history "
                                      "lets the checklist judge items 1–3.")
        self.patch_size = SpinBox(label="patch size (px)", value=256, min=16, max=4096, step=16,
                                  tooltip="Edge of the square patches (last row and column "
                                          "are aligned to the image's far edge).")
        self.data_range = FloatSpinBox(label="data range", value=1.0, min=1e-6, max=1e9,
                                       step=0.1, tooltip="Peak-to-peak range for PSNR: 1.0 "
                                       "for micrographs in [0, 1].")
        self.analyse_button = PushButton(text="Analyse")
        self.show_map = CheckBox(text="metric map", value=False,
                                 tooltip="Overlay one value per patch on the image.")
        self.map_metric = ComboBox(choices=list(MAP_METRICS), value="RMSE",
                                   tooltip="The metric the map shows.")
        self.form = Container(widgets=[self.noisy, self.denoised, self.clean, self.model,
                                       self.patch_size, self.data_range, self.analyse_button])
        self.map_row = Container(widgets=[self.show_map, self.map_metric], layout="horizontal",
                                 labels=False)
        self._guessing = False
        self._user_set: set[ComboBox] = set()
        self._hints = {self.clean: lambda n: "clean" in n or "target" in n,
                       self.denoised: lambda n: "denois" in n,
                       self.noisy: lambda n: ("noisy" in n or "raw" in n) and "denois" not in n}
        for combo in self._hints:
            combo.changed.connect(lambda _v, c=combo: self._on_user_choice(c))
        self.analyse_button.changed.connect(self.run_analysis)
        self.show_map.changed.connect(self.update_metric_map)
        self.map_metric.changed.connect(self.update_metric_map)

    def _layout(self) -> None:
        bottom = QWidget()
        box = QVBoxLayout(bottom)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(self.chips)
        box.addWidget(self.summary)
        box.addWidget(self.canvas, stretch=1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(bottom)
        splitter.setSizes([220, 420])
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.map_row.native)
        layout.addWidget(splitter, stretch=1)

    # -- image choices ---------------------------------------------------------------------
    def _image_choices(self) -> list[tuple[str, Any]]:
        from napari.layers import Image

        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Image)]

    def _on_layers_changed(self, event: Any) -> None:
        if getattr(event, "type", "") == "inserted":
            event.value.events.name.connect(self._refresh_choices)
        self._refresh_choices()

    def _refresh_choices(self, event: Any = None) -> None:
        """Re-list the layers; combos the user has not set follow the layer names' hints."""
        self._guessing = True
        for combo in (self.noisy, self.denoised, self.clean, self.model):
            combo.reset_choices()
        for combo, hint in self._hints.items():
            guess = [layer for name, layer in self._image_choices() if hint(name.lower())]
            if guess and combo not in self._user_set:
                combo.value = guess[0]
        self._guessing = False

    def _on_models_changed(self, label: str, path: Any) -> None:
        try:
            self.model.reset_choices()
        except RuntimeError:  # this widget's Qt side is gone (viewer closed)
            pass

    def _on_user_choice(self, combo: ComboBox) -> None:
        if not self._guessing:
            self._user_set.add(combo)

    # -- analysis --------------------------------------------------------------------------
    def run_analysis(self) -> None:
        """Analyse the chosen images (in a worker thread when they are large)."""
        from napari.utils.notifications import show_error

        try:
            arrays = [_layer_array(c.value, c.label) if c.value is not None else None
                      for c in (self.noisy, self.denoised, self.clean)]
            history, epoch = self._history()
        except ValueError as exc:
            show_error(str(exc))
            return
        noisy, denoised, clean = arrays
        if denoised is None or clean is None:
            show_error("Inspect needs a denoised and a clean image")
            return
        self._clean_layer = self.clean.value
        args = (noisy, denoised, clean, int(self.patch_size.value), float(self.data_range.value),
                history, epoch)
        if clean.size <= WORKER_PIXELS:
            try:
                self.show_analysis(analyse(*args))
            except ValueError as exc:
                show_error(f"Cannot analyse: {exc}")
            return
        self._start_worker(args)

    def _start_worker(self, args: tuple[Any, ...]) -> None:
        from napari.qt.threading import create_worker
        from napari.utils.notifications import show_error

        self.analyse_button.enabled = False
        self.analyse_button.text = "Analysing…"
        self._worker = create_worker(analyse, *args, _start_thread=False)
        self._worker.returned.connect(self.show_analysis)
        self._worker.errored.connect(lambda exc: show_error(f"Cannot analyse: {exc}"))
        self._worker.finished.connect(self._on_worker_finished)
        self._worker.start()

    def _on_worker_finished(self) -> None:
        self.analyse_button.enabled = True
        self.analyse_button.text = "Analyse"
        self._worker = None

    def _history(self) -> tuple[Any, int | None]:
        path = MODELS.get(self.model.value) if self.model.value else None
        if path is None:
            return None, None
        from napari_cryoden.errors import CryodenError
        from napari_cryoden.models.checkpoint import load_checkpoint

        try:
            _, checkpoint = load_checkpoint(path, "cpu")
        except CryodenError as exc:
            raise ValueError(str(exc)) from None
        return checkpoint.metadata.get("epochs"), checkpoint.epoch

    def show_analysis(self, analysis: PatchAnalysis) -> None:
        """Fill the table, the checklist chips and the metric map from ``analysis``."""
        self.analysis = analysis
        fill_table(self.table, analysis)
        show_chips(self.chips, analysis.checklist)
        self.summary.setText(analysis.summary_text())
        self._show_guard_warnings(analysis)
        self.update_metric_map()

    def _show_guard_warnings(self, analysis: PatchAnalysis) -> None:
        """Scramble guards (r <= 0, worse than the noisy input): a notification each and the
        summary in red, so that a wrong raw layout cannot pass unnoticed."""
        import html

        from napari.utils.notifications import show_warning

        from napari_cryoden.evaluation.guards import image_warnings

        noisy, denoised, clean = analysis.images
        warnings = image_warnings(denoised, clean, noisy)
        for warning in warnings:
            show_warning(f"Check the weights: {warning}")
        if warnings:
            lines = "".join(f"<br>⚠ {html.escape(w)}" for w in warnings)
            self.summary.setText(f"<span style='color:#e03c31; font-weight:bold'>Check the "
                                 f"weights:{lines}</span><br>{html.escape(self.summary.text())}")


    # -- one patch -------------------------------------------------------------------------
    def _on_row_selected(self) -> None:
        selection = self.table.selectionModel()
        rows = selection.selectedRows() if selection is not None else []
        item = self.table.item(rows[0].row(), 0) if rows else None
        if item is not None and self.analysis is not None:
            self.show_patch(int(item.data(Qt.ItemDataRole.UserRole)))

    def show_patch(self, index: int) -> None:
        """Outline patch ``index``, centre the viewer on it and plot its intensities."""
        from napari_cryoden.plotting.weights import patch_figure

        analysis = self.analysis
        if analysis is None:  # nothing analysed yet
            return
        row, size = analysis.rows[index], analysis.patch_size
        y, x = int(row["y"]), int(row["x"])
        window = np.s_[y:y + size, x:x + size]
        noisy, denoised, clean = analysis.images
        crops = (None if noisy is None else noisy[window], denoised[window], clean[window])
        lo = np.array([y, x], float) - 0.5  # pixel edges, in data coordinates
        hi = lo + np.array(crops[2].shape, float)
        scale, translate = self._transform()
        outline_patch(self.viewer, np.array([lo, [lo[0], hi[1]], hi, [hi[0], lo[1]]]),
                      max(size / 48, 1.0), scale, translate)
        focus(self.viewer, lo * scale + translate, hi * scale + translate)
        title = f"patch {index} (y {row['y']}, x {row['x']}): " + ", ".join(
            f"{m.label} {m.format(row[m.key])}" for m in METRICS)
        self.canvas.show_figure(patch_figure(*crops, title=title))

    def _transform(self) -> tuple[np.ndarray, np.ndarray]:
        layer = self._clean_layer
        if layer is None or layer not in self.viewer.layers:
            return np.ones(2), np.zeros(2)
        return np.asarray(layer.scale[-2:], float), np.asarray(layer.translate[-2:], float)

    # -- metric map ------------------------------------------------------------------------
    def update_metric_map(self, *_: Any) -> None:
        """Add, update or remove the ``"<metric> map"`` overlay (one value per patch)."""
        layer = self._map_layer if self._map_layer in self.viewer.layers else None
        if not self.show_map.value or self.analysis is None:
            if layer is not None:
                self.viewer.layers.remove(layer)
            self._map_layer = None
            return
        metric = MAP_METRICS[self.map_metric.value]
        self._map_layer = show_metric_map(
            self.viewer, layer, metric_map(self.analysis.rows, metric.key), f"{metric.label} map",
            self.analysis.patch_size, *self._transform())


def _layer_array(layer: Any, label: str) -> np.ndarray:
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    array = np.asarray(data)
    if array.ndim != 2 or getattr(layer, "rgb", False):
        raise ValueError(f"{label}: '{layer.name}' has shape {array.shape}; Inspect needs a 2D "
                         "grey-scale micrograph")
    return array
