"""A figure drawn off the UI thread: built and rendered with Agg in a worker, shown as an image.

Drawing a figure of many images or a 2D histogram takes 0.3–1.2 s; on the UI thread that
freezes napari. :class:`FigureImage` takes a function that builds the figure (Qt-free, from
:mod:`napari_cryoden.plotting`), runs it and the Agg draw in a worker at the widget's size and
the viewer's theme colours, and shows the result as a pixmap (the Train loss plot's approach,
:mod:`napari_cryoden._qt.train.loss_plot`). A resize re-renders the same figure, also in a
worker. Before any figure, or when asked, it shows a placeholder text. Right-click saves the
shown figure as a PNG (the toolbar of an interactive canvas did that before).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QSize, Qt, QTimer, Signal
from qtpy.QtWidgets import QLabel, QSizePolicy

from napari_cryoden._qt.canvas import apply_colours, theme_colours
from napari_cryoden._qt.quiet_gc import short_gil_turns

if TYPE_CHECKING:
    import napari
    from matplotlib.figure import Figure
    from qtpy.QtGui import QContextMenuEvent, QResizeEvent

__all__ = ["FigureImage", "render"]

_RESIZE_MS = 150


def render(build: Callable[[], Figure] | Figure, size_px: tuple[int, int], ratio: float,
           colours: tuple[str, str]) -> tuple[Figure, Any]:
    """Build (or take) a figure, theme it, size it and draw it with Agg; a worker's job.

    Returns the figure and a QImage of it (a QPixmap may not be made off the UI thread).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from qtpy.QtGui import QImage

    figure = build if isinstance(build, Figure) else build()
    FigureCanvasAgg(figure)
    apply_colours(figure, *colours)
    width, height = size_px
    figure.set_dpi(100 * ratio)
    figure.set_size_inches(width / 100, height / 100)
    figure.canvas.draw()
    rgba = np.asarray(figure.canvas.buffer_rgba())  # type: ignore[attr-defined]
    rows, cols = rgba.shape[:2]
    image = QImage(rgba.tobytes(), cols, rows, 4 * cols, QImage.Format.Format_RGBA8888).copy()
    image.setDevicePixelRatio(ratio)
    return figure, image


def _job(build: Callable[[], Figure] | Figure, size_px: tuple[int, int], ratio: float,
         colours: tuple[str, str], generation: int) -> tuple[Figure, Any, int]:
    return (*render(build, size_px, ratio, colours), generation)


class FigureImage(QLabel):
    """Shows figures rendered in a worker; ``rendered`` is emitted when one is on screen."""

    rendered = Signal()

    def __init__(self, viewer: napari.Viewer | None, placeholder: str = "") -> None:
        super().__init__()
        self.viewer = viewer
        self.figure: Figure | None = None
        self._generation = 0
        self._busy = False
        self._resize = QTimer(self)
        self._resize.setSingleShot(True)
        self._resize.setInterval(_RESIZE_MS)
        self._resize.timeout.connect(self._rerender)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setMinimumSize(200, 150)
        self.show_placeholder(placeholder)
        short_gil_turns()  # the workers draw in Python: the window's repaints must not wait

    def show_placeholder(self, text: str) -> None:
        """Show ``text`` instead of a figure."""
        self._generation += 1  # results of renders in flight are dropped
        self.figure = None
        self.clear()
        self.setText(text)

    def show_figure(self, build: Callable[[], Figure] | Figure) -> None:
        """Build and draw a figure in a worker, then show it (a newer call wins)."""
        self._generation += 1
        self._start(build, self._generation)

    def _start(self, build: Callable[[], Figure] | Figure, generation: int) -> None:
        from superqt.utils import create_worker

        size = (max(self.width(), 200), max(self.height(), 150))
        colours = theme_colours(self.viewer)
        self._busy = True
        worker = create_worker(_job, build, size, self.devicePixelRatioF(), colours, generation,
                               _start_thread=False)
        worker.returned.connect(self._show)  # bound methods: dropped if this widget is deleted
        worker.errored.connect(self._failed)
        worker.finished.connect(self._done)
        worker.start()

    def _show(self, result: tuple[Figure, Any, int]) -> None:
        from qtpy.QtGui import QPixmap

        figure, image, generation = result
        if generation != self._generation:
            return
        self.figure = figure
        self.setPixmap(QPixmap.fromImage(image))
        self.rendered.emit()

    def _failed(self, exc: BaseException) -> None:
        self.show_placeholder(f"Could not draw the figure: {exc}")

    def _done(self, *_: Any) -> None:
        self._busy = False

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        """The minimum size: a QLabel's hint is its pixmap's size, and a scroll area's layout
        would then grow the label to it, redraw the figure larger, grow again…"""
        return self.minimumSize()

    def resizeEvent(self, event: QResizeEvent | None) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if self.figure is not None:
            self._resize.start()

    def _rerender(self) -> None:
        if self._busy:  # one render of a figure at a time: try again shortly
            self._resize.start()
        elif self.figure is not None:
            self._start(self.figure, self._generation)

    def contextMenuEvent(self, event: QContextMenuEvent | None) -> None:  # noqa: N802 - Qt's
        """Right-click: *Save figure as PNG…* (only while a figure is shown)."""
        from qtpy.QtWidgets import QFileDialog, QMenu

        if self.figure is None or event is None:
            return
        menu = QMenu(self)
        save = menu.addAction("Save figure as PNG…")
        if menu.exec(event.globalPos()) is save:
            path, _ = QFileDialog.getSaveFileName(self, "Save figure", "figure.png",
                                                  "PNG image (*.png)")
            if path:
                self.export_png(path)

    def export_png(self, path: str | Path, dpi: int = 150) -> Path | None:
        """Save the shown figure as PNG (theme colours kept); ``None`` when there is none."""
        if self.figure is None:
            return None
        path = Path(path).with_suffix(".png")
        self.figure.savefig(path, dpi=dpi, facecolor=self.figure.get_facecolor())
        return path
