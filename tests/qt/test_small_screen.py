"""Inspect and Weights in a 1366×768 napari window: the dock fits, its controls are reachable.

Run under Xvfb: ``xvfb-run -a python -m pytest tests/qt/test_small_screen.py -q``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from qtpy.QtWidgets import QScrollArea, QTableWidget, QWidget  # noqa: E402

from napari_cryoden._qt._models import MODELS  # noqa: E402
from napari_cryoden._qt.inspect_widget import InspectWidget  # noqa: E402
from napari_cryoden._qt.weights_widget import WeightsWidget  # noqa: E402

SCREEN = (1366, 768)


@pytest.fixture(autouse=True)
def _isolated() -> None:
    MODELS.clear()


def small_window(make_napari_viewer: Any, qtbot: Any) -> Any:
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(*SCREEN)
    qtbot.waitUntil(lambda: window.width() <= SCREEN[0] and window.height() <= SCREEN[1])
    return viewer


def docked(qtbot: Any, viewer: Any, widget: QWidget, name: str) -> QScrollArea:
    """Dock ``widget`` and wait until its scrolled content is laid out; return the scroll area."""
    viewer.window.add_dock_widget(widget, name=name)
    qtbot.waitExposed(widget)
    scroll = widget.findChild(QScrollArea)
    assert scroll is not None, f"the {name} panel does not scroll"
    content = scroll.widget()

    def fits_across() -> None:
        assert content.width() == scroll.viewport().width(), "content wider than the dock"
        wide = [c for c in content.findChildren(QWidget)
                if c.isVisible() and c.width() > content.width()]
        assert not wide, f"{wide} wider than the panel: its right side is cut off"

    qtbot.waitUntil(fits_across)
    laid_out(qtbot, scroll)
    return scroll


def laid_out(qtbot: Any, scroll: QScrollArea) -> None:
    """Wait until the scroll range follows the content's height (after it changed)."""
    content, bar = scroll.widget(), scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() == max(content.height() - scroll.viewport().height(),
                                                 0))


def reachable(scroll: QScrollArea, widget: QWidget, whole: bool = True) -> bool:
    """Whether scrolling ``scroll`` to ``widget`` shows it (all of it, or its top when it is
    taller than the viewport) in the viewport."""
    scroll.ensureWidgetVisible(widget, 0, 0)
    viewport = scroll.viewport()
    top_left = widget.mapTo(viewport, widget.rect().topLeft())
    bottom_right = widget.mapTo(viewport, widget.rect().bottomRight())
    inside = viewport.rect().contains(top_left)
    return inside and (not whole or viewport.rect().contains(bottom_right))


def rows_on_screen(scroll: QScrollArea, table: QTableWidget) -> list[int]:
    """The table rows wholly shown in the table's viewport and in the scroll area's."""
    inner, outer = table.viewport(), scroll.viewport()
    shown = []
    for i in range(table.rowCount()):
        rect = table.visualItemRect(table.item(i, 1))
        corners = [inner.mapTo(outer, p) for p in (rect.topLeft(), rect.bottomRight())]
        if inner.rect().contains(rect) and all(outer.rect().contains(p) for p in corners):
            shown.append(i)
    return shown


def fits(viewer: Any, dock_widget: QWidget) -> None:
    window = viewer.window._qt_window
    assert window.height() <= SCREEN[1] and window.width() <= SCREEN[0], window.size()
    top = dock_widget.mapTo(window, dock_widget.rect().topLeft()).y()
    assert top + dock_widget.height() <= window.height(), "the dock runs off the window"


def test_inspect_fits_a_1366x768_window(make_napari_viewer: Any, qtbot: Any) -> None:
    viewer = small_window(make_napari_viewer, qtbot)
    rng = np.random.default_rng(0)
    clean = gaussian_filter(rng.random((256, 256)), 3.0).astype(np.float32)
    noisy = (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)
    for name, data in (("noisy", noisy), ("noisy denoised", gaussian_filter(noisy, 1.5)),
                       ("clean", clean)):
        viewer.add_image(data, name=name)
    widget = InspectWidget(viewer)
    scroll = docked(qtbot, viewer, widget, "Inspect")
    widget.patch_size.value = 32  # 64 patches: more rows than fit
    assert reachable(scroll, widget.analyse_button.native)
    with qtbot.waitSignal(widget.canvas.rendered, timeout=60_000):
        widget.analyse_button.native.click()
    laid_out(qtbot, scroll)
    fits(viewer, widget)
    table = widget.table
    assert reachable(scroll, table, whole=False)
    assert len(rows_on_screen(scroll, table)) >= 5
    assert reachable(scroll, widget.canvas) and widget.canvas.height() >= 260


def test_weights_fits_a_1366x768_window(make_napari_viewer: Any, qtbot: Any,
                                        tmp_path: Path) -> None:
    from napari_cryoden.config.sections import Config
    from napari_cryoden.models.checkpoint import save_checkpoint
    from napari_cryoden.models.nets import build_model

    path = tmp_path / "best.safetensors"
    save_checkpoint(path, build_model(seed=0), Config(), epoch=2)
    viewer = small_window(make_napari_viewer, qtbot)
    widget = WeightsWidget(viewer)
    scroll = docked(qtbot, viewer, widget, "Weights")
    with qtbot.waitSignal(widget.canvas.rendered, timeout=60_000):
        widget.file_edit.value = path
    laid_out(qtbot, scroll)
    fits(viewer, widget)
    assert reachable(scroll, widget.file_edit.native)
    assert reachable(scroll, widget.export_button.native)
    assert reachable(scroll, widget.canvas, whole=False) and widget.canvas.height() >= 560


def test_browse_and_the_denoise_panel_it_opens_fit_a_1366x768_window(
        make_napari_viewer: Any, qtbot: Any, tmp_path: Path) -> None:
    from napari_cryoden._qt.browse import BrowseWidget
    from napari_cryoden.io.images import write_mrc

    folder = tmp_path / "mics"
    folder.mkdir()
    for i in range(20):  # more names than the list shows: it scrolls
        write_mrc(folder / f"exposure_{i:03d}.mrc",
                  np.random.default_rng(i).normal(size=(64, 64)).astype(np.float32), 1.0)
    viewer = small_window(make_napari_viewer, qtbot)
    widget = BrowseWidget(viewer)
    scroll = docked(qtbot, viewer, widget.native, "Browse")
    widget.open(folder)
    qtbot.waitUntil(lambda: widget.layer is not None, timeout=30_000)
    panel = widget._denoise_panel()  # what Denoise this / Denoise all… open
    qtbot.waitExposed(panel.native)
    laid_out(qtbot, scroll)
    fits(viewer, widget.native)
    fits(viewer, panel.native)
    for control in (widget.next_button, widget.denoise_button, widget.all_button):
        assert reachable(scroll, control.native)
    assert widget.list.height() >= 3 * widget.list.fontMetrics().lineSpacing()
    import sys  # let the Denoise panel's warm-up (a torch import in a worker) end with the test

    qtbot.waitUntil(lambda: "napari_cryoden.models.checkpoint" in sys.modules, timeout=60_000)
    qtbot.wait(500)
