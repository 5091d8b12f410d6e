"""The Inspect widget: per-patch metrics of a denoised micrograph, and the seed's checklist.

"Analyse" scores every patch of the denoised image against the clean one
(:func:`metrics.patch_metrics`) and the whole image (:func:`metrics.compare`, the noisy and
best-Gaussian baselines, :class:`metrics.ArtifactAccumulator`), then runs
:func:`checklist.run_checklist`. A row of the sortable table jumps the viewer to its patch,
outlines it and plots its scatter and histograms; "metric map" overlays one value per patch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, PushButton, SpinBox
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_cryoden._qt._models import MODELS
from napari_cryoden._qt.canvas import FigureCanvasWidget
from napari_cryoden.evaluation.inspection import PatchAnalysis, analyse, metric_map
from napari_cryoden.evaluation.metrics import METRICS

if TYPE_CHECKING:
    import napari

__all__ = ["InspectWidget", "PatchAnalysis", "analyse", "metric_map", "OUTLINE_NAME"]

OUTLINE_NAME = "inspected patch"
WORKER_PIXELS = 2048 * 2048  # larger images are analysed in a worker thread
MAP_METRICS = {m.label: m for m in METRICS}
COLUMNS = [("patch #", None, "{:.0f}"), ("y", "y", "{:.0f}"), ("x", "x", "{:.0f}"),
           *[(m.label, m.key, m.fmt) for m in METRICS], ("noisy RMSE", "noisy_rmse", "{:.4f}")]
_COLUMN_TIPS = ("patch number (row-major)", "top row (px)", "left column (px)",
                *[f"{m.description}, denoised vs clean "
                  f"({'higher' if m.higher_is_better else 'lower'} is better)" for m in METRICS],
                "RMSE of the noisy input vs clean")
_VERDICT = {True: ("✓", "#2e7d32"), False: ("✗", "#c62828"), None: ("–", "#616161")}


class _NumberItem(QTableWidgetItem):
    """A read-only cell that shows a formatted number and sorts by its value (NaN last)."""

    def __init__(self, value: float, fmt: str) -> None:
        super().__init__("" if math.isnan(value) else fmt.format(value))
        self.setData(Qt.ItemDataRole.UserRole, float(value))
        self.setFlags(Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a, b = self.data(Qt.ItemDataRole.UserRole), other.data(Qt.ItemDataRole.UserRole)
        return (not math.isnan(a)) and (math.isnan(b) or a < b)


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
        self.table = self._build_table()
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
        self._guessing, self._user_set = False, set()
        self._hints = {self.clean: lambda n: "clean" in n or "target" in n,
                       self.denoised: lambda n: "denois" in n,
                       self.noisy: lambda n: ("noisy" in n or "raw" in n) and "denois" not in n}
        for combo in self._hints:
            combo.changed.connect(lambda _v, c=combo: self._on_user_choice(c))
        self.analyse_button.changed.connect(self.run_analysis)
        self.show_map.changed.connect(self.update_metric_map)
        self.map_metric.changed.connect(self.update_metric_map)

    def _build_table(self) -> QTableWidget:
        table = QTableWidget(0, len(COLUMNS))
        table.setHorizontalHeaderLabels([c[0] for c in COLUMNS])
        for j, tip in enumerate(_COLUMN_TIPS):
            table.horizontalHeaderItem(j).setToolTip(tip)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSortIndicatorShown(True)
        table.verticalHeader().setDefaultSectionSize(22)
        table.horizontalHeader().setStretchLastSection(True)
        table.setToolTip("Click a column header to sort; click a row to go to its patch.")
        table.itemSelectionChanged.connect(self._on_row_selected)
        return table

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
        self._clean_layer = self.clean.value
        args = (*arrays, int(self.patch_size.value), float(self.data_range.value), history, epoch)
        if arrays[2].size <= WORKER_PIXELS:
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
        self._fill_table(analysis)
        self._show_checklist(analysis)
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

    def _fill_table(self, analysis: PatchAnalysis) -> None:
        table = self.table
        table.setSortingEnabled(False)
        table.clearContents()
        table.setRowCount(len(analysis.rows))
        for i, row in enumerate(analysis.rows):
            for j, (_, key, fmt) in enumerate(COLUMNS):
                value = i if key is None else row.get(key, math.nan)
                table.setItem(i, j, _NumberItem(float(value), fmt))
        table.setColumnHidden(len(COLUMNS) - 1, not analysis.has_noisy)
        table.resizeColumnsToContents()
        for j in range(len(COLUMNS) - 1):  # room for the sort arrow next to each header
            table.setColumnWidth(j, table.columnWidth(j) + 4)
        table.setSortingEnabled(True)

    def _show_checklist(self, analysis: PatchAnalysis) -> None:
        while self.chips.count():
            self.chips.takeAt(0).widget().deleteLater()
        for item in analysis.checklist:
            mark, colour = _VERDICT[item["passed"]]
            chip = QLabel(f"{item['id']} {mark}")
            chip.setAlignment(Qt.AlignmentFlag.AlignCenter)
            chip.setStyleSheet(f"background:{colour}; color:white; border-radius:4px; "
                               "padding:2px 6px; font-weight:bold;")
            chip.setToolTip(_chip_tooltip(item))
            self.chips.addWidget(chip)
        self.summary.setText(analysis.summary_text())

    # -- one patch -------------------------------------------------------------------------
    def _on_row_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        item = self.table.item(rows[0].row(), 0) if rows else None
        if item is not None and self.analysis is not None:
            self.show_patch(int(item.data(Qt.ItemDataRole.UserRole)))

    def show_patch(self, index: int) -> None:
        """Outline patch ``index``, centre the viewer on it and plot its intensities."""
        from napari_cryoden.plotting.weights import patch_figure

        analysis = self.analysis
        row, size = analysis.rows[index], analysis.patch_size
        y, x = int(row["y"]), int(row["x"])
        crops = [None if a is None else a[y:y + size, x:x + size] for a in analysis.images]
        lo = np.array([y, x], float) - 0.5  # pixel edges, in data coordinates
        hi = lo + np.array(crops[2].shape, float)
        scale, translate = self._transform()
        self._outline(np.array([lo, [lo[0], hi[1]], hi, [hi[0], lo[1]]]), scale, translate)
        self._focus(lo * scale + translate, hi * scale + translate)
        title = f"patch {index} (y {row['y']}, x {row['x']}): " + ", ".join(
            f"{m.label} {m.format(row[m.key])}" for m in METRICS)
        self.canvas.show_figure(patch_figure(*crops, title=title))

    def _transform(self) -> tuple[np.ndarray, np.ndarray]:
        layer = self._clean_layer
        if layer is None or layer not in self.viewer.layers:
            return np.ones(2), np.zeros(2)
        return np.asarray(layer.scale[-2:], float), np.asarray(layer.translate[-2:], float)

    def _outline(self, rect: np.ndarray, scale: np.ndarray, translate: np.ndarray) -> None:
        from napari.layers import Shapes

        width = max(self.analysis.patch_size / 48, 1.0)
        layer = next((lay for lay in self.viewer.layers
                      if lay.name == OUTLINE_NAME and isinstance(lay, Shapes)), None)
        if layer is None:
            with _keep_active(self.viewer):
                self.viewer.add_shapes([rect], shape_type="rectangle", name=OUTLINE_NAME,
                                       edge_color="#ffd400", face_color="transparent",
                                       edge_width=width, scale=scale, translate=translate)
            return
        layer.scale, layer.translate = scale, translate
        layer.data = [rect]
        layer.edge_width = [width]
        position = self.viewer.layers.index(layer)
        if position != len(self.viewer.layers) - 1:  # keep it above the metric map
            self.viewer.layers.move(position, len(self.viewer.layers))

    def _focus(self, lo: np.ndarray, hi: np.ndarray) -> None:
        camera = self.viewer.scene.camera if hasattr(self.viewer, "scene") else self.viewer.camera
        canvas = getattr(getattr(self.viewer, "canvas", None), "size", None) or \
            getattr(self.viewer, "_canvas_size", (600, 800))
        camera.center = tuple((lo + hi) / 2)
        camera.zoom = 0.9 * float(np.min(np.asarray(canvas, float) / (hi - lo)))

    # -- metric map ------------------------------------------------------------------------
    def update_metric_map(self, *_: Any) -> None:
        """Add, update or remove the ``"<metric> map"`` overlay (one value per patch)."""
        layer = self._map_layer if self._map_layer in self.viewer.layers else None
        if not self.show_map.value or self.analysis is None:
            if layer is not None:
                self.viewer.layers.remove(layer)
            self._map_layer = None
            return
        name, size = f"{self.map_metric.value} map", self.analysis.patch_size
        data = metric_map(self.analysis.rows, MAP_METRICS[self.map_metric.value].key)
        scale, translate = self._transform()
        kwargs = {"scale": scale * size, "translate": translate + scale * (size - 1) / 2}
        limits = _limits(data)
        if layer is None:
            with _keep_active(self.viewer):
                self._map_layer = self.viewer.add_image(
                    data, name=name, colormap="viridis", opacity=0.5, contrast_limits=limits,
                    blending="translucent", **kwargs)
            return
        layer.data, layer.name, layer.contrast_limits = data, name, limits
        layer.scale, layer.translate = kwargs["scale"], kwargs["translate"]


@contextmanager
def _keep_active(viewer: Any) -> Iterator[None]:
    """Add overlay layers without taking the layer controls away from the user's layer."""
    active = viewer.layers.selection.active
    yield
    if active is not None and active in viewer.layers:
        viewer.layers.selection.active = active


def _layer_array(layer: Any, label: str) -> np.ndarray:
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    array = np.asarray(data)
    if array.ndim != 2 or getattr(layer, "rgb", False):
        raise ValueError(f"{label}: '{layer.name}' has shape {array.shape}; Inspect needs a 2D "
                         "grey-scale micrograph")
    return array


def _limits(data: np.ndarray) -> tuple[float, float]:
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    return (low, high) if high > low else (low - 0.5, high + 0.5)


def _chip_tooltip(item: dict[str, Any]) -> str:
    verdict = {True: "PASS", False: "FAIL", None: "not judged"}[item["passed"]]
    lines = [f"<b>{item['id']}. {item['check']}: {verdict}</b>", f"measure: {item['measure']}",
             f"value: {_format_value(item['value'])}", f"need: {item['threshold']}"]
    if item.get("note"):
        lines.append(f"note: {item['note']}")
    return "<br>".join(lines)


def _format_value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_format_value(v)}" for k, v in value.items() if v is not None)
    return "–" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)

