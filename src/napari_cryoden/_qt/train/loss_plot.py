"""The Train widget's live loss plot.

While training, :class:`LossPlot` draws frames with Agg in a pool thread and shows them as images
(redrawn at most every 200 ms); when idle, the same curves sit on an interactive
:class:`~napari_cryoden._qt.canvas.FigureCanvasWidget` (zoom, pan, save).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QWidget

from napari_cryoden._qt.canvas import FigureCanvasWidget, apply_theme

if TYPE_CHECKING:
    import napari

    from napari_cryoden._qt.train.worker import PastCurves

__all__ = ["LossPlot"]

_REDRAW_MS = 200


def _loss_figure() -> Any:
    """One axes: per-step loss (raw, smoothed) and per-epoch train/val means, x in epochs."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4, 3.2), dpi=100)
    ax = figure.add_subplot()
    blue, orange = "#4f9be0", "#ff9f40"
    ax.plot([], [], color=blue, alpha=0.45, lw=0.8, label="train, per step")
    ax.plot([], [], color=blue, lw=1.6, label="train, smoothed")
    ax.plot([], [], ls="none", marker="o", color=blue, mec="white", label="train, epoch mean")
    ax.plot([], [], marker="o", color=orange, label="validation")
    ax.set(xlabel="epoch", ylabel="MSE loss")
    ax.grid(alpha=0.25)
    ax.legend(frameon=False, fontsize="small", loc="upper right")
    figure.text(0.5, 0.55, "The loss curves appear here\nwhile training.", ha="center",
                va="center", gid="placeholder")
    return figure


def _show_curves(figure: Any, curves: tuple[Any, ...], size_px: tuple[int, int] | None) -> None:
    """Put ``curves`` (x/y array pairs of the four lines) on ``figure``; fixed pixel margins."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    ax = figure.axes[0]
    if size_px is not None:
        width, height = size_px
        figure.set_size_inches(width / figure.dpi, height / figure.dpi)
        em = figure.dpi / 100  # margins in pixels at 100 dpi: room for tick and axis labels
        figure.subplots_adjust(left=min(80 * em / width, 0.4), right=1 - 12 * em / width,
                               bottom=min(50 * em / height, 0.4), top=1 - 10 * em / height)
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


def _render(figure: Any, curves: tuple[Any, ...], size_px: tuple[int, int], ratio: float,
            idle: threading.Event) -> Any:
    """Draw ``figure`` with Agg off the main thread; returns a QImage (a QPixmap is not
    thread-safe). Sets ``idle`` when done, so a GUI thread blocked in shutdown sees it."""
    from qtpy.QtGui import QImage

    try:
        figure.set_dpi(100 * ratio)
        _show_curves(figure, curves, (int(size_px[0] * ratio), int(size_px[1] * ratio)))
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
    at most every 200 ms; when idle, the same curves sit on an interactive FigureCanvasWidget."""

    def __init__(self, viewer: napari.Viewer | None, alpha: float = 0.1,
                 parent: QWidget | None = None) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from qtpy.QtWidgets import QSizePolicy, QStackedLayout

        super().__init__(parent)
        self.viewer, self.alpha, self.frames = viewer, alpha, 0
        self.canvas = FigureCanvasWidget(viewer)
        self.preview = QLabel()
        self.preview.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self._stack = QStackedLayout(self)
        self._stack.addWidget(self.canvas)
        self._stack.addWidget(self.preview)
        self._figure = _loss_figure()  # touched only by the render thread once live
        FigureCanvasAgg(self._figure)
        apply_theme(self._figure, viewer)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(_REDRAW_MS)
        self._timer.timeout.connect(self._render_async)
        self.idle = threading.Event()  # no render in flight
        self.idle.set()
        self._dirty = self._retheme = False
        self._started = 0.0
        if viewer is not None:
            viewer.events.theme.connect(self._on_theme)
        self.clear()
        self.show_interactive()

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
        self._timer.stop()
        figure = _loss_figure()
        _show_curves(figure, self.curves(), None)
        figure.set_layout_engine("constrained")
        self.canvas.show_figure(figure)
        self._stack.setCurrentWidget(self.canvas)

    def request_redraw(self) -> None:
        """Render a new frame within 200 ms (calls in between are merged)."""
        if not self._timer.isActive():
            self._timer.start()

    def _render_async(self) -> None:
        from superqt.utils import create_worker

        if not self.idle.is_set():
            self._dirty = True
            return
        self.idle.clear()
        if self._retheme:  # the figure is idle here: safe to touch
            apply_theme(self._figure, self.viewer)
            self._retheme = False
        self._started = time.monotonic()
        size = (max(self.preview.width(), 200), max(self.preview.height(), 150))
        worker = create_worker(_render, self._figure, self.curves(), size,
                               self.devicePixelRatioF(), self.idle, _start_thread=False,
                               _ignore_errors=True)
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
