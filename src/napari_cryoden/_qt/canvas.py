"""One themed matplotlib canvas for every plot widget (napari-matplotlib's approach).

Figures are built Qt-free by :mod:`napari_cryoden.plotting`; :class:`FigureCanvasWidget` shows a
:class:`~matplotlib.figure.Figure` in a ``FigureCanvasQTAgg`` with the navigation toolbar, themed
from the viewer's napari theme, and exports it as PNG. Subclasses override :meth:`draw_figure`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg, NavigationToolbar2QT
from matplotlib.figure import Figure
from qtpy.QtWidgets import QVBoxLayout, QWidget

if TYPE_CHECKING:
    import napari

__all__ = ["FigureCanvasWidget", "apply_theme"]


def apply_theme(figure: Figure, viewer: napari.Viewer | None) -> None:
    """Colour ``figure`` like the viewer's napari theme (dark by default)."""
    from napari.utils.theme import get_theme

    theme = get_theme(viewer.theme if viewer is not None else "dark")
    background = theme.canvas.as_hex()
    text = theme.text.as_hex()
    figure.set_facecolor(background)
    for ax in figure.axes:
        ax.set_facecolor(background)
        for spine in ax.spines.values():
            spine.set_color(text)
        ax.tick_params(colors=text, which="both")
        ax.xaxis.label.set_color(text)
        ax.yaxis.label.set_color(text)
        ax.title.set_color(text)
        legend = ax.get_legend()
        if legend is not None:
            legend.get_frame().set_facecolor(background)
            for label in legend.get_texts():
                label.set_color(text)
    for text_artist in figure.texts:
        text_artist.set_color(text)


class FigureCanvasWidget(QWidget):
    """A matplotlib canvas + toolbar; ``show_figure`` swaps in a new Figure and themes it."""

    def __init__(self, viewer: napari.Viewer | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.figure = Figure(figsize=(5, 3), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.toolbar = NavigationToolbar2QT(self.canvas, self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.canvas)
        if viewer is not None:
            viewer.events.theme.connect(self._on_theme)

    def show_figure(self, figure: Figure) -> None:
        """Display ``figure`` (built by :mod:`napari_cryoden.plotting`) in this canvas."""
        self.figure = figure
        self.canvas.figure = figure
        figure.set_canvas(self.canvas)
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
