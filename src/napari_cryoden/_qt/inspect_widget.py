"""The Inspect widget: per-patch metrics of a denoised micrograph, and the seed's checklist.

"Analyse" scores every patch of the denoised image against the clean one, and the whole image
with the noisy and oracle-Gaussian baselines (σ best on this image: an upper bound;
:func:`napari_cryoden.evaluation.inspection.analyse`, the same scorer as ``cryoden
evaluate``), then runs the checklist; the work runs in a worker
(:mod:`napari_cryoden._qt.inspect.jobs`). The images are guessed only from unambiguous names
and checked before Analyse is enabled (:mod:`napari_cryoden._qt.inspect.choosing`). A row of the
sortable table (:mod:`napari_cryoden._qt.inspect.table`) centres the viewer on its patch, zoomed
to fill 90 % of the view, and plots its scatter and histograms (drawn in a worker); "metric map"
overlays one value per patch (:mod:`napari_cryoden._qt.inspect.overlays`). A row click adds no
layer: a napari layer add alone blocked the window 60-140 ms on two cores.

Without a clean image, the even and odd halves of a micrograph (each denoised on its own by the
chosen model) give the split-frame SNR, and a Points layer of picks the region-pair SNR beside a
Gaussian baseline; checklist items 11–13 judge them (:mod:`napari_cryoden._qt.inspect.\
truthless_panel`, :mod:`~napari_cryoden._qt.inspect.truthless_jobs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QGridLayout, QLabel, QVBoxLayout

from napari_cryoden._qt._models import MODELS
from napari_cryoden._qt.figure_image import FigureImage
from napari_cryoden._qt.inspect.chips import show_chips, show_guard_warnings, smoothing_note
from napari_cryoden._qt.inspect.choices import layer_array
from napari_cryoden._qt.inspect.choosing import MAP_METRICS, InspectChoices
from napari_cryoden._qt.inspect.jobs import (
    AnalysisJob,
    MapLegend,
    legend_of,
    patch_figure_of,
    pooled_figure_of,
    with_legend,
)
from napari_cryoden._qt.inspect.overlays import (
    focus,
    update_map,
)
from napari_cryoden._qt.inspect.panel import scrolling_panel
from napari_cryoden._qt.inspect.table import COLUMNS, build_table, fill_table
from napari_cryoden._qt.inspect.truthless_jobs import (
    InspectJob,
    TruthlessResult,
    run_inspect,
)
from napari_cryoden._qt.inspect.truthless_panel import truthless_summary
from napari_cryoden._qt.quiet_gc import freeze_long_lived
from napari_cryoden.evaluation.inspection import PatchAnalysis, analyse, metric_map

if TYPE_CHECKING:
    import napari

__all__ = ["InspectWidget", "PatchAnalysis", "analyse", "metric_map", "COLUMNS"]

_PLACEHOLDER = ("The scatter and histograms of the whole image appear here after Analyse; "
                "click a table row for one patch.")


class InspectWidget(InspectChoices):
    """Per-patch table, patch view and plot, metric map and checklist for one image trio."""

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
        self._smoothing_note = ""  # the analysed layer's Smoothing, said under the summary
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

    def _layout(self) -> None:
        self.scroll_area = scrolling_panel(
            [self.form.native, self.problem, self.chips, self.summary, self.map_row.native],
            self.table, self.canvas, self.truthless.results)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.scroll_area)

    # -- analysis --------------------------------------------------------------------------
    def run_analysis(self) -> None:
        """Analyse the chosen images in a worker; the panel says why when they cannot be."""
        if self._check_choices() is not None or self._worker is not None:
            return
        try:
            job = self._job()
        except ValueError as exc:
            self._show_problem(str(exc))
            return
        self._clean_layer = self.clean.value
        self._smoothing_note = smoothing_note(getattr(self.denoised.value, "metadata", None))
        self._start_worker(job)

    def _job(self) -> InspectJob:
        """The arrays of the chosen layers and the settings; ``ValueError`` for a bad layer."""
        path = MODELS.get(self.model.value) if self.model.value else None
        model_path, patch = (Path(path) if path else None), int(self.patch_size.value)
        analysis = None
        if self.clean.value is not None:
            noisy, denoised, clean = (layer_array(c.value, c.label) if c.value is not None
                                      else None for c in (self.noisy, self.denoised, self.clean))
            assert denoised is not None and clean is not None  # checked by choice_problem
            analysis = AnalysisJob(noisy, denoised, clean, patch, float(self.data_range.value),
                                   model_path)
        truthless = self.truthless.job(layer_array, self.noisy.value, self.denoised.value,
                                       patch, model_path) if self.truthless.wanted() else None
        return InspectJob(analysis, truthless)

    def _show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.setVisible(True)

    def _start_worker(self, job: InspectJob) -> None:
        from napari.qt.threading import create_worker

        self.analyse_button.enabled = False
        self.analyse_button.text = "Analysing…"
        self._worker = create_worker(run_inspect, job, _start_thread=False)
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

    def _on_analysed(self, result: tuple[Any, TruthlessResult | None]) -> None:
        self._on_worker_finished()  # Analyse is usable again as soon as the result is shown
        analysed, truthless = result
        self.truthless.show(truthless)
        if analysed is not None:
            self.show_analysis(analysed.analysis, analysed.warnings, truthless)
        elif truthless is not None:
            self.show_truthless(truthless)

    def show_analysis(self, analysis: PatchAnalysis, warnings: list[str] | None = None,
                      truthless: TruthlessResult | None = None) -> None:
        """Fill the table, the checklist chips, the pooled plot and the metric map."""
        self.analysis = analysis
        for part in (self.table, self.canvas, self.map_row.native):
            part.setVisible(True)
        fill_table(self.table, analysis)
        extra = truthless.checklist() if truthless is not None else []
        show_chips(self.chips, analysis.checklist + extra)
        self.summary.setText(analysis.summary_text() + truthless_summary(extra)
                             + self._smoothing_note)
        show_guard_warnings(self.summary, warnings or [])
        self.update_metric_map()
        self._plot_index = None
        self._show_plot()
        self.analysed.emit()

    def show_truthless(self, truthless: TruthlessResult) -> None:
        """No clean image: the checklist items the halves and picks judge, no patch table."""
        self.analysis = None
        self.table.setRowCount(0)
        items = truthless.checklist()
        show_chips(self.chips, items)
        self.summary.setText("No clean image: items 1–10 not judged (they need one)."
                             + truthless_summary(items) + self._smoothing_note)
        self.update_metric_map()
        self.canvas.show_placeholder("")
        for part in (self.table, self.canvas, self.map_row.native):  # all need a clean image
            part.setVisible(False)
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
        """Centre the viewer on patch ``index``, zoomed to it, and plot it (drawn in a worker)."""
        analysis = self.analysis
        if analysis is None:  # nothing analysed yet
            return
        row, size = analysis.rows[index], analysis.patch_size
        lo = np.array([row["y"], row["x"]], float) - 0.5  # the patch's outer pixel edges
        hi = lo + np.minimum(size, np.array(analysis.shape, float) - lo - 0.5)
        scale, translate = self._transform()
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
