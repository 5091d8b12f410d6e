"""The Train widget's live loss plot.

While training, :class:`LossPlot` draws frames with Agg in a pool thread and shows them as images
(redrawn at most every 200 ms); when a run has ended, the same curves sit on an interactive
:class:`~napari_cryoden._qt.canvas.FigureCanvasWidget` (zoom, pan, save). matplotlib is imported
and the first (empty) frame drawn in a worker too, so opening the panel does not block napari.
The legend sits above the axes, off the curves; the loss axis names the loss of the run's mode
(:data:`LOSS_LABELS`).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QWidget

if TYPE_CHECKING:
    import napari

    from napari_cryoden._qt.train.worker import PastCurves

__all__ = ["LOSS_LABELS", "LossPlot"]

_REDRAW_MS = 200
LOSS_LABELS = {"n2c": "MSE vs. clean", "n2n": "MSE vs. the other half (even/odd)",
               "n2v": "masked-pixel MSE"}
"""What the loss is in each training mode (``train.mode``; see :mod:`napari_cryoden.training.modes`:
n2n swaps input and target at random per patch, n2v scores the masked pixels only)."""


def _loss_figure(ylabel: str = LOSS_LABELS["n2c"]) -> Any:
    """One axes: per-step loss (raw, smoothed) and per-epoch train/val means, x in epochs;
    the legend above the axes, where it cannot cover a curve."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4, 3.2), dpi=100)
    ax = figure.add_subplot()
    blue, orange = "#4f9be0", "#ff9f40"
    ax.plot([], [], color=blue, alpha=0.45, lw=0.8, label="train, per step")
    ax.plot([], [], color=blue, lw=1.6, label="train, smoothed")
    ax.plot([], [], ls="none", marker="o", color=blue, mec="white", label="train, epoch mean")
    ax.plot([], [], marker="o", color=orange, label="validation")
    ax.set(xlabel="epoch", ylabel=ylabel)
    ax.grid(alpha=0.25)
    ax.legend(frameon=False, fontsize="small", loc="lower left", ncols=2, mode="expand",
              bbox_to_anchor=(0.0, 1.01, 1.0, 0.2), borderaxespad=0.0)
    figure.text(0.5, 0.55, "The loss curves appear here\nwhile training.", ha="center",
                va="center", gid="placeholder")
    return figure


def _show_curves(figure: Any, curves: tuple[Any, ...], size_px: tuple[int, int] | None,
                 ylabel: str | None = None) -> None:
    """Put ``curves`` (x/y array pairs of the four lines) on ``figure``; fixed pixel margins."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    ax = figure.axes[0]
    if size_px is not None:
        width, height = size_px
        figure.set_size_inches(width / figure.dpi, height / figure.dpi)
        em = figure.dpi / 100  # margins in pixels at 100 dpi: room for tick and axis labels
        figure.subplots_adjust(left=min(80 * em / width, 0.4), right=1 - 12 * em / width,
                               bottom=min(50 * em / height, 0.4),
                               top=max(1 - 48 * em / height, 0.6))  # the legend above
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    for line, (x, y) in zip(ax.lines, curves, strict=True):
        line.set_data(x, y)
    values = np.concatenate([y for _, y in curves])
    positive = values[values > 0]
    log = positive.size > 0 and positive.max() > 20 * positive.min()
    ax.set_yscale("log" if log else "linear")
    if log:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    empty = values.size == 0
    ax.set_autoscale_on(not empty)
    if empty:
        ax.set(xlim=(0, 1), ylim=(0, 1))
    else:
        ax.relim()
        ax.autoscale_view()
    ax.tick_params(labelleft=not empty, labelbottom=not empty)
    ax.get_legend().set_visible(not empty)
    for text in figure.texts:
        text.set_visible(empty and text.get_gid() == "placeholder")


def _new_figure(viewer: napari.Viewer | None) -> Any:
    """Import matplotlib and build the themed Agg figure of the live frames (in a worker)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from napari_cryoden._qt.canvas import apply_theme

    figure = _loss_figure()
    FigureCanvasAgg(figure)
    apply_theme(figure, viewer)
    return figure


def _render(figure: Any, curves: tuple[Any, ...], size_px: tuple[int, int], ratio: float,
            idle: threading.Event, ylabel: str | None = None) -> Any:
    """Draw ``figure`` with Agg off the main thread; returns a QImage (a QPixmap is not
    thread-safe). Sets ``idle`` when done, so a GUI thread blocked in shutdown sees it."""
    from qtpy.QtGui import QImage

    try:
        figure.set_dpi(100 * ratio)
        _show_curves(figure, curves, (int(size_px[0] * ratio), int(size_px[1] * ratio)), ylabel)
        figure.canvas.draw()
        rgba = np.asarray(figure.canvas.buffer_rgba())
        height, width = rgba.shape[:2]
        image = QImage(rgba.tobytes(), width, height, 4 * width, QImage.Format.Format_RGBA8888)
        image = image.copy()
        image.setDevicePixelRatio(ratio)
        return image
    finally:
        idle.set()


class LossPlot(QWidget):
    """Live loss curves. While training, frames are drawn by Agg in a pool thread (a full draw
    takes 100-300 ms on a busy laptop CPU, too long for the GUI thread) and shown as images,
    at most every 200 ms; after a run, the same curves sit on an interactive FigureCanvasWidget.
    Until the worker that imports matplotlib has built the figure, a line of text holds the
    place."""

    def __init__(self, viewer: napari.Viewer | None, alpha: float = 0.1,
                 parent: QWidget | None = None) -> None:
        from qtpy.QtCore import Qt
        from qtpy.QtWidgets import QSizePolicy, QStackedLayout
        from superqt.utils import create_worker

        super().__init__(parent)
        self.viewer, self.alpha, self.frames = viewer, alpha, 0
        self.canvas: Any = None  # the interactive FigureCanvasWidget, made after a first run
        self.preview = QLabel("The loss curves appear here while training.")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self._stack = QStackedLayout(self)
        self._stack.addWidget(self.preview)
        self._figure: Any = None  # touched only by the render thread once built
        self.ylabel = LOSS_LABELS["n2c"]
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(_REDRAW_MS)
        self._timer.timeout.connect(self._render_async)
        self.idle = threading.Event()  # no render in flight (clear while the figure is built)
        self._dirty = self._retheme = False
        self._started = 0.0
        if viewer is not None:
            viewer.events.theme.connect(self._on_theme)
        self.clear()
        setup = create_worker(_new_figure, viewer, _start_thread=False, _ignore_errors=True)
        setup.returned.connect(self._adopt_figure)
        setup.finished.connect(self.idle.set)
        setup.start()

    def _adopt_figure(self, figure: Any) -> None:
        self._figure = figure
        self.idle.set()
        self.request_redraw()

    def set_mode(self, mode: str) -> None:
        """Name the loss of ``mode`` (``train.mode``) on the loss axis."""
        self.ylabel = LOSS_LABELS[mode]
        self.request_redraw()

    # -- data (main thread) -----------------------------------------------------------------
    def clear(self) -> None:
        self._steps: tuple[list[float], list[float], list[float]] = ([], [], [])  # x, raw, smooth
        self._epochs: dict[int, tuple[float, float | None]] = {}
        self._average = 0.0

    def add_step(self, epoch_fraction: float, loss: float) -> None:
        """One step's loss at ``epoch - 1 + step / steps_per_epoch``."""
        x, raw, smoothed = self._steps
        self._average = (1 - self.alpha) * self._average + self.alpha * loss
        x.append(epoch_fraction)
        raw.append(loss)
        smoothed.append(self._average / (1 - (1 - self.alpha) ** len(raw)))

    def add_epoch(self, epoch: int, train_loss: float, val_loss: float | None) -> None:
        self._epochs[epoch] = (train_loss, val_loss)

    def add_past(self, past: PastCurves) -> None:
        """Start over with the curves of a resumed run's earlier epochs."""
        self.clear()
        for x, loss in past.steps:
            self.add_step(x, loss)
        for epoch, train_loss, val_loss in past.epochs:
            self.add_epoch(epoch, train_loss, val_loss)

    def points(self) -> int:
        """Points on the plot: one per step plus one per epoch and curve."""
        return len(self._steps[0]) + sum(1 + (val is not None) for _, val in self._epochs.values())

    def curves(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        x, raw, smoothed = (np.asarray(v, dtype=float) for v in self._steps)
        epochs = sorted(self._epochs)
        vals = [(e, self._epochs[e][1]) for e in epochs if self._epochs[e][1] is not None]
        return ((x, raw), (x, smoothed),
                (np.asarray(epochs, float), np.asarray([self._epochs[e][0] for e in epochs])),
                (np.asarray([e for e, _ in vals], float), np.asarray([v for _, v in vals])))

    # -- display ----------------------------------------------------------------------------
    def show_live(self) -> None:
        """Switch to the image preview (while training)."""
        if self._stack.currentWidget() is not self.preview:
            self.preview.setPixmap(self.canvas.canvas.grab())
            self._stack.setCurrentWidget(self.preview)

    def show_interactive(self) -> None:
        """Show the curves on the interactive canvas (zoom, pan, save); drawn on this thread."""
        from napari_cryoden._qt.canvas import FigureCanvasWidget

        self._timer.stop()
        if self.canvas is None:
            self.canvas = FigureCanvasWidget(self.viewer)
            self._stack.addWidget(self.canvas)
        figure = _loss_figure(self.ylabel)
        _show_curves(figure, self.curves(), None)
        figure.set_layout_engine("constrained")
        self.canvas.show_figure(figure)
        self._stack.setCurrentWidget(self.canvas)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if self._stack.currentWidget() is self.preview:
            self.request_redraw()  # a frame at the new size

    def request_redraw(self) -> None:
        """Render a new frame within 200 ms (calls in between are merged)."""
        if not self._timer.isActive():
            self._timer.start()

    def _render_async(self) -> None:
        from superqt.utils import create_worker

        if not self.idle.is_set():
            self._dirty = True
            return
        if self._figure is None:  # the setup worker failed: keep the line of text
            return
        self.idle.clear()
        if self._retheme:  # the figure is idle here: safe to touch
            from napari_cryoden._qt.canvas import apply_theme

            apply_theme(self._figure, self.viewer)
            self._retheme = False
        self._started = time.monotonic()
        size = (max(self.preview.width(), 200), max(self.preview.height(), 150))
        worker = create_worker(_render, self._figure, self.curves(), size,
                               self.devicePixelRatioF(), self.idle, self.ylabel,
                               _start_thread=False, _ignore_errors=True)
        worker.returned.connect(self._show_frame)
        worker.finished.connect(self._render_done)
        worker.start()

    def _show_frame(self, image: Any) -> None:
        from qtpy.QtGui import QPixmap

        self.frames += 1
        if self._stack.currentWidget() is self.preview:
            self.preview.setPixmap(QPixmap.fromImage(image))

    def _on_theme(self, event: object = None) -> None:
        self._retheme = True

    def _render_done(self) -> None:
        # frames cost CPU that training needs: keep drawing under ~1/3 of one core
        spent_ms = 1000 * (time.monotonic() - self._started)
        self._timer.setInterval(min(max(_REDRAW_MS, int(3 * spent_ms)), 1000))
        if self._dirty:
            self._dirty = False
            self.request_redraw()
