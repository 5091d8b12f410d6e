"""The shared plot canvas: a shown figure fits the canvas and every text follows the theme.

Run under Xvfb: ``xvfb-run -a python -m pytest tests/qt/test_canvas.py -q``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from napari.utils.theme import get_theme  # noqa: E402
from qtpy.QtWidgets import QVBoxLayout, QWidget  # noqa: E402

from napari_cryoden._qt.canvas import FigureCanvasWidget  # noqa: E402


def busy_figure() -> Figure:
    """Texts of every kind, in matplotlib's default (black) colours, at a large natural size."""
    figure = Figure(figsize=(9, 11), dpi=100, layout="constrained")
    ax = figure.add_subplot()
    image = ax.imshow(np.arange(16.0).reshape(4, 4))
    figure.colorbar(image, ax=ax, label="counts").ax.set_title("bar title")
    ax.plot([0, 3], [0, 3], label="a line")
    ax.legend(title="legend title")
    ax.set(xlabel="x label", ylabel="y label", title="centre title")
    ax.set_title("left title", loc="left")
    ax.set_title("right title", loc="right")
    ax.text(1, 1, "inside the axes")
    ax.annotate("an arrow", (2, 2), (3, 3), arrowprops={})
    figure.suptitle("figure title")
    figure.text(0.01, 0.01, "figure text")
    return figure


def texts(figure: Figure) -> dict[str, str]:
    """Every non-empty text of ``figure`` and its colour, after a draw (ticks exist then)."""
    figure.canvas.draw()
    return {t.get_text(): to_hex(t.get_color()) for t in figure.findobj(Text) if t.get_text()}


@pytest.fixture
def host(qtbot: Any) -> QWidget:
    """A shown top-level window of 420 x 360 px to put a canvas in."""
    widget = QWidget()
    QVBoxLayout(widget)
    qtbot.addWidget(widget)  # closed at teardown (pytest-qt holds it weakly: the fixture keeps it)
    widget.resize(420, 360)
    return widget


def shown_canvas(make_napari_viewer: Any, qtbot: Any, host: QWidget) -> tuple[Any, Any]:
    viewer = make_napari_viewer()
    canvas = FigureCanvasWidget(viewer)
    host.layout().addWidget(canvas)
    host.show()
    qtbot.waitExposed(host)
    return viewer, canvas


def figure_size(canvas: FigureCanvasWidget) -> np.ndarray:
    """The figure's size in the canvas's (logical) pixels."""
    return np.asarray(canvas.figure.bbox.size) / canvas.canvas.device_pixel_ratio


def canvas_size(canvas: FigureCanvasWidget) -> np.ndarray:
    return np.array([canvas.canvas.width(), canvas.canvas.height()], float)


def test_every_text_takes_the_theme_colour_and_follows_it(make_napari_viewer: Any, qtbot: Any,
                                                          host: QWidget) -> None:
    viewer, canvas = shown_canvas(make_napari_viewer, qtbot, host)
    canvas.show_figure(figure := busy_figure())
    colours = texts(figure)
    for name in ("left title", "right title", "centre title", "bar title", "counts",
                 "inside the axes", "an arrow", "figure title", "legend title", "a line"):
        assert name in colours  # the figure really has each kind of text
    tick_labels = {t.get_text() for ax in figure.axes for t in ax.get_yticklabels()}
    assert len(tick_labels) > 4 and tick_labels <= set(colours)  # plot and colorbar ticks
    assert set(colours.values()) == {get_theme("dark").text.as_hex()}
    viewer.theme = "light"
    assert set(texts(figure).values()) == {get_theme("light").text.as_hex()}


def test_a_new_figure_is_drawn_at_the_canvas_size(make_napari_viewer: Any, qtbot: Any,
                                                   host: QWidget) -> None:
    _, canvas = shown_canvas(make_napari_viewer, qtbot, host)
    before = canvas_size(canvas)
    hint = canvas.canvas.sizeHint()
    canvas.show_figure(busy_figure())  # 900 x 1100 px on its own
    assert np.abs(figure_size(canvas) - before).max() <= 2
    assert canvas.canvas.sizeHint() == hint  # a dock around it does not grow
    assert hint.width() < 900 and hint.height() < 1100


def test_a_figure_shown_while_hidden_fits_when_the_canvas_appears(
        make_napari_viewer: Any, qtbot: Any, host: QWidget) -> None:
    _, canvas = shown_canvas(make_napari_viewer, qtbot, host)
    canvas.hide()
    canvas.show_figure(busy_figure())
    canvas.show()
    qtbot.waitExposed(canvas)
    assert np.abs(figure_size(canvas) - canvas_size(canvas)).max() <= 2
