"""One themed matplotlib canvas for every plot widget (napari-matplotlib's approach).

Figures are built Qt-free by :mod:`napari_cryoden.plotting.reports`; :class:`FigureCanvasWidget`
shows a :class:`~matplotlib.figure.Figure` in a ``FigureCanvasQTAgg`` with the navigation toolbar,
themed
from the viewer's napari theme, and exports it as PNG. A figure is drawn at the canvas's size,
and the canvas's size hint does not follow the figures it shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg, NavigationToolbar2QT
from matplotlib.figure import Figure
from matplotlib.text import Text
from qtpy.QtCore import QSize
from qtpy.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

if TYPE_CHECKING:
    import napari
    from qtpy.QtGui import QShowEvent

__all__ = ["FigureCanvasWidget", "apply_colours", "apply_theme", "theme_colours"]


def theme_colours(viewer: napari.Viewer | None) -> tuple[str, str]:
    """The (background, text) colours of the viewer's napari theme (dark by default)."""
    from napari.utils.theme import get_theme

    theme = get_theme(viewer.theme if viewer is not None else "dark")
    return theme.canvas.as_hex(), theme.text.as_hex()


def apply_theme(figure: Figure, viewer: napari.Viewer | None) -> None:
    """Colour ``figure`` like the viewer's napari theme (dark by default)."""
    apply_colours(figure, *theme_colours(viewer))


def apply_colours(figure: Figure, background: str, text: str) -> None:
    """Colour ``figure``: backgrounds in ``background``; spines, ticks and every text of the
    figure (titles at any ``loc``, axis and colorbar labels, tick labels, texts inside axes,
    legends, the suptitle) in ``text``. Touches only the figure: safe in a worker."""
    figure.set_facecolor(background)
    for ax in figure.axes:  # plot axes and colorbar axes
        ax.set_facecolor(background)
        for spine in ax.spines.values():
            spine.set_color(text)
        ax.tick_params(colors=text, which="both")  # also the ticks made at the next draw
        legend = ax.get_legend()
        if legend is not None:
            legend.get_frame().set_facecolor(background)
    for artist in figure.findobj(Text):
        artist.set_color(text)


class _Canvas(FigureCanvasQTAgg):
    """A ``FigureCanvasQTAgg`` that sizes a swapped-in figure to itself. Its size hint stays
    that of its first figure (matplotlib's follows the figure shown: a dock would grow to a
    new figure's natural size)."""

    def __init__(self, figure: Figure) -> None:
        super().__init__(figure)
        self._hint = QSize(*self.get_width_height())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(self._hint)

    def adopt(self, figure: Figure) -> None:
        """Show ``figure`` here, at the screen's pixel ratio; sized now if the canvas is
        visible, else when it is shown (a hidden canvas's size is not final)."""
        self.figure = figure
        figure.set_canvas(self)
        original_dpi = getattr(figure, "_original_dpi", figure.dpi)  # set by matplotlib
        figure.set_dpi(original_dpi * self.device_pixel_ratio)  # as for the first figure
        if self.isVisible():
            self.fit_figure()

    def fit_figure(self) -> bool:
        """Size the figure to the canvas (in physical pixels); whether its size changed."""
        ratio, figure = self.device_pixel_ratio, self.figure
        width, height = max(self.width(), 1) * ratio, max(self.height(), 1) * ratio
        if (round(figure.bbox.width), round(figure.bbox.height)) == (round(width), round(height)):
            return False
        figure.set_size_inches(width / figure.dpi, height / figure.dpi, forward=False)
        return True

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if self.fit_figure():  # a figure adopted while hidden
            self.draw_idle()


class FigureCanvasWidget(QWidget):
    """A matplotlib canvas + toolbar; ``show_figure`` swaps in a new Figure and themes it."""

    def __init__(self, viewer: napari.Viewer | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.figure = Figure(figsize=(5, 3), layout="constrained")
        self.canvas = _Canvas(self.figure)  # size hint: 500 x 300 px
        self.toolbar = NavigationToolbar2QT(self.canvas, self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.canvas)
        # napari adds a stretch below dock widgets with no expanding child: expand to fill
        expanding = QSizePolicy.Policy.Expanding
        self.canvas.setSizePolicy(expanding, expanding)
        self.setSizePolicy(expanding, expanding)
        if viewer is not None:
            viewer.events.theme.connect(self._on_theme)

    def show_figure(self, figure: Figure) -> None:
        """Display ``figure`` (built by :mod:`napari_cryoden.plotting.reports`) in this canvas,
        sized to the canvas and themed."""
        self.figure = figure
        self.canvas.adopt(figure)
        apply_theme(figure, self.viewer)
        self.canvas.draw_idle()

    def export_png(self, path: str | Path, dpi: int = 150) -> Path:
        """Save the current figure as PNG (white-on-theme colours kept)."""
        path = Path(path)
        self.figure.savefig(path, dpi=dpi, facecolor=self.figure.get_facecolor())
        return path

    def _on_theme(self, event: object = None) -> None:
        apply_theme(self.figure, self.viewer)
        self.canvas.draw_idle()
