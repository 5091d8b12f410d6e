"""The Inspect widget: per-patch metrics of a denoised micrograph, and the seed's checklist.

"Analyse" scores every patch of the denoised image against the clean one, and the whole image
with the noisy and best-Gaussian baselines (:func:`napari_cryoden.evaluation.inspection.analyse`,
the same scorer as ``cryoden evaluate``), then runs the checklist; the work runs in a worker
(:mod:`napari_cryoden._qt.inspect.jobs`). The images are guessed only from unambiguous names
and checked before Analyse is enabled (:mod:`napari_cryoden._qt.inspect.choices`). A row of the
sortable table (:mod:`napari_cryoden._qt.inspect.table`) jumps the viewer to its patch, outlines
it and plots its scatter and histograms (drawn in a worker); "metric map" overlays one value per
patch (:mod:`napari_cryoden._qt.inspect.overlays`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, PushButton, SpinBox
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from napari_cryoden._qt._models import MODELS
from napari_cryoden._qt.figure_image import FigureImage
from napari_cryoden._qt.inspect.chips import show_chips, show_guard_warnings
from napari_cryoden._qt.inspect.choices import choice_problem, guess_images, layer_array
from napari_cryoden._qt.inspect.jobs import (
    Analysed,
    AnalysisJob,
    MapLegend,
    legend_of,
    patch_figure_of,
    pooled_figure_of,
    run_job,
    with_legend,
)
from napari_cryoden._qt.inspect.overlays import (
    OUTLINE_NAME,
    focus,
    outline_patch,
    update_map,
)
from napari_cryoden._qt.inspect.panel import scrolling_panel
from napari_cryoden._qt.inspect.table import COLUMNS, build_table, fill_table
from napari_cryoden._qt.quiet_gc import freeze_long_lived
from napari_cryoden.evaluation.inspection import PatchAnalysis, analyse, metric_map
from napari_cryoden.evaluation.metrics import METRICS

if TYPE_CHECKING:
    import napari

__all__ = ["InspectWidget", "PatchAnalysis", "analyse", "metric_map", "OUTLINE_NAME", "COLUMNS"]

MAP_METRICS = {m.label: m for m in METRICS}
_PLACEHOLDER = ("The scatter and histograms of the whole image appear here after Analyse; "
                "click a table row for one patch.")
_PROBLEM_STYLE = "color:#e03c31;"


class InspectWidget(QWidget):
    """Per-patch table, patch outline and plot, metric map and checklist for one image trio."""

    analysed = Signal()
    """Emitted when an analysis is shown (main thread)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = viewer
        self.analysis: PatchAnalysis | None = None
        self._clean_layer: Any = None
        self._map_layer: Any = None
        self._plot_index: int | None = None  # the patch plotted; None: the whole image
        self._worker: Any = None
        self._failure: str | None = None
        self._build_form()
        self.table = build_table(self._on_row_selected)
        self.summary = QLabel("Choose the images and press Analyse.")
        self.summary.setWordWrap(True)
        self.chips = QGridLayout()
        self.canvas = FigureImage(viewer, _PLACEHOLDER)
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
        freeze_long_lived()

    # -- construction ----------------------------------------------------------------------
    def _build_form(self) -> None:
        images = lambda _w: self._image_choices()  # noqa: E731
        self.noisy = ComboBox(label="noisy (optional)", choices=images, nullable=True,
                              tooltip="The noisy input: adds the noisy RMSE column and the "
                                      "baselines that checklist item 7 compares with.")
        self.denoised = ComboBox(label="denoised", choices=images, nullable=True,
                                 tooltip="The denoiser's output (the Denoise panel names it "
                                         "'<noisy> denoised').")
        self.clean = ComboBox(label="clean", choices=images, nullable=True,
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
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(_PROBLEM_STYLE)
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
        for combo in (self.noisy, self.denoised, self.clean):
            combo.changed.connect(lambda _v, c=combo: self._on_user_choice(c))
        self.analyse_button.changed.connect(self.run_analysis)
        self.show_map.changed.connect(self._on_map_changed)
        self.map_metric.changed.connect(self._on_map_changed)

    def _layout(self) -> None:
        self.scroll_area = scrolling_panel(
            [self.form.native, self.problem, self.chips, self.summary, self.map_row.native],
            self.table, self.canvas)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.scroll_area)

    # -- image choices ---------------------------------------------------------------------
    def _image_choices(self) -> list[tuple[str, Any]]:
        from napari.layers import Image

        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Image)]

    def _on_layers_changed(self, event: Any) -> None:
        if getattr(event, "type", "") == "inserted":
            event.value.events.name.connect(self._refresh_choices)
        self._refresh_choices()

    def _refresh_choices(self, event: Any = None) -> None:
        """Re-list the layers; combos the user has not set take only unambiguous guesses."""
        self._guessing = True
        for combo in (self.noisy, self.denoised, self.clean, self.model):
            combo.reset_choices()
        guesses = guess_images([layer for _, layer in self._image_choices()])
        for combo, guess in zip((self.noisy, self.denoised, self.clean), guesses, strict=True):
            if combo not in self._user_set:
                combo.value = guess
        self._guessing = False
        self._check_choices()

    def _check_choices(self) -> str | None:
        """Enable Analyse only for a usable trio; otherwise say why in the panel."""
        problem = choice_problem(self.noisy.value, self.denoised.value, self.clean.value)
        busy = self._worker is not None
        self.analyse_button.enabled = problem is None and not busy
        self.problem.setText(problem or "")
        self.problem.setVisible(problem is not None)
        return problem

    def _on_models_changed(self, label: str, path: Any) -> None:
        with contextlib.suppress(RuntimeError):  # this widget's Qt side may be gone
            self.model.reset_choices()

    def _on_user_choice(self, combo: ComboBox) -> None:
        if not self._guessing:
            self._user_set.add(combo)
            self._check_choices()

    # -- analysis --------------------------------------------------------------------------
    def run_analysis(self) -> None:
        """Analyse the chosen images in a worker; the panel says why when they cannot be."""
        if self._check_choices() is not None or self._worker is not None:
            return
        try:
            arrays = [layer_array(c.value, c.label) if c.value is not None else None
                      for c in (self.noisy, self.denoised, self.clean)]
        except ValueError as exc:
            self._show_problem(str(exc))
            return
        noisy, denoised, clean = arrays
        assert denoised is not None and clean is not None  # checked by choice_problem
        self._clean_layer = self.clean.value
        path = MODELS.get(self.model.value) if self.model.value else None
        job = AnalysisJob(noisy, denoised, clean, int(self.patch_size.value),
                          float(self.data_range.value), Path(path) if path else None)
        self._start_worker(job)

    def _show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.setVisible(True)

    def _start_worker(self, job: AnalysisJob) -> None:
        from napari.qt.threading import create_worker

        self.analyse_button.enabled = False
        self.analyse_button.text = "Analysing…"
        self._worker = create_worker(run_job, job, _start_thread=False)
        self._worker.returned.connect(self._on_analysed)
        self._worker.errored.connect(self._on_failed)
        self._worker.finished.connect(self._on_worker_finished)
        self._worker.start()

    def _on_failed(self, exc: BaseException) -> None:
        from napari.utils.notifications import show_error

        self._failure = f"Cannot analyse: {exc}"
        show_error(self._failure)

    def _on_worker_finished(self) -> None:
        self.analyse_button.text = "Analyse"
        self._worker = None
        self._check_choices()
        if self._failure:
            self._show_problem(self._failure)
            self._failure = None

    def _on_analysed(self, result: Analysed) -> None:
        self._on_worker_finished()  # Analyse is usable again as soon as the result is shown
        self.show_analysis(result.analysis, result.warnings)

    def show_analysis(self, analysis: PatchAnalysis, warnings: list[str] | None = None) -> None:
        """Fill the table, the checklist chips, the pooled plot and the metric map."""
        self.analysis = analysis
        fill_table(self.table, analysis)
        show_chips(self.chips, analysis.checklist)
        self.summary.setText(analysis.summary_text())
        show_guard_warnings(self.summary, warnings or [])
        self.update_metric_map()
        self._plot_index = None
        self._show_plot()
        self.analysed.emit()

    def _show_plot(self) -> None:
        """Plot the whole image or the chosen patch (in a worker), with the map's colour bar."""
        analysis, index, legend = self.analysis, self._plot_index, self._map_legend()
        if analysis is not None:
            self.canvas.show_figure(lambda: with_legend(
                pooled_figure_of(analysis) if index is None else patch_figure_of(analysis, index),
                legend))

    # -- one patch -------------------------------------------------------------------------
    def _on_row_selected(self) -> None:
        selection = self.table.selectionModel()
        rows = selection.selectedRows() if selection is not None else []
        item = self.table.item(rows[0].row(), 0) if rows else None
        if item is not None and self.analysis is not None:
            self.show_patch(int(item.data(Qt.ItemDataRole.UserRole)))

    def show_patch(self, index: int) -> None:
        """Outline patch ``index``, centre the viewer on it and plot it (drawn in a worker)."""
        analysis = self.analysis
        if analysis is None:  # nothing analysed yet
            return
        row, size = analysis.rows[index], analysis.patch_size
        lo = np.array([row["y"], row["x"]], float) - 0.5  # pixel edges, in data coordinates
        hi = lo + np.minimum(size, np.array(analysis.shape, float) - lo - 0.5)
        scale, translate = self._transform()
        outline_patch(self.viewer, lo, hi, max(size / 48, 1.0), scale, translate)
        focus(self.viewer, lo * scale + translate, hi * scale + translate)
        self._plot_index = index
        self._show_plot()

    def _transform(self) -> tuple[np.ndarray, np.ndarray]:
        layer = self._clean_layer
        if layer is None or layer not in self.viewer.layers:
            return np.ones(2), np.zeros(2)
        return np.asarray(layer.scale[-2:], float), np.asarray(layer.translate[-2:], float)

    # -- metric map ------------------------------------------------------------------------
    def _on_map_changed(self, *_: Any) -> None:
        self.update_metric_map()
        self._show_plot()  # with or without the map's colour bar

    def _map_legend(self) -> MapLegend | None:
        if self._map_layer is None or self._map_layer not in self.viewer.layers:
            return None
        return legend_of(MAP_METRICS[self.map_metric.value], self._map_layer.contrast_limits)

    def update_metric_map(self, *_: Any) -> None:
        """Add, update or remove the ``"<metric> map"`` overlay (one value per patch)."""
        layer = self._map_layer if self._map_layer in self.viewer.layers else None
        wanted = self.show_map.value and self.analysis is not None
        metric = MAP_METRICS[self.map_metric.value]
        self._map_layer = update_map(self.viewer, layer, self.analysis if wanted else None,
                                     metric, *self._transform())
