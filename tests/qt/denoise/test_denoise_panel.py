"""The Denoise panel on a user's screen: it fits, scrolls, keeps rarely used settings collapsed,
and a region result leaves the rectangle it came from in sight.

Run under Xvfb: ``xvfb-run -a python -m pytest tests/qt/denoise/test_denoise_panel.py -q``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from qtpy.QtCore import Qt  # noqa: E402
from qtpy.QtWidgets import QWidget  # noqa: E402

from napari_cryoden._qt._models import MODELS  # noqa: E402
from napari_cryoden._qt.denoise.widget import RECTANGLE, DenoiseWidget  # noqa: E402
from napari_cryoden.config.sections import Config  # noqa: E402
from napari_cryoden.models.checkpoint import save_checkpoint  # noqa: E402
from napari_cryoden.models.nets import build_model  # noqa: E402

WAIT_MS = 20_000


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    MODELS.clear()
    yield
    MODELS.clear()


def open_denoise(make_napari_viewer: Any, size: tuple[int, int]) -> DenoiseWidget:
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(*size)
    viewer.add_image(np.zeros((64, 64), np.float32), name="mic")
    widget = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Denoise")
    return widget


def seen(widget: QWidget) -> bool:
    """Whether any of ``widget`` is on the screen (not scrolled away, not collapsed)."""
    return widget.isVisible() and not widget.visibleRegion().isEmpty()


def rows(widget: DenoiseWidget) -> list[Any]:
    """The rows a user can scroll to: the main ones and those of the open sections."""
    shown = [*widget.main]
    if widget.advanced_section.isExpanded():
        shown += widget.advanced
    if widget.folder.section.isExpanded():
        shown += widget.folder
    return shown


def squeezed(widget: DenoiseWidget) -> list[str]:
    """The visible rows squeezed below their minimum height."""
    return [row.label for row in rows(widget) if row.native.isVisible()
            and row.native.height() < row.native.minimumSizeHint().height()]


def assert_rows_keep_their_height(qtbot: Any, widget: DenoiseWidget) -> None:
    """Once a section's opening animation ends (its length varies with the machine's load),
    no row is squeezed below its minimum."""
    try:
        qtbot.waitUntil(lambda: not squeezed(widget), timeout=5000)
    except AssertionError:
        raise AssertionError(f"rows squeezed after 5 s: {squeezed(widget)}") from None


def test_panel_fits_1366x768_and_scrolls_to_every_section(make_napari_viewer, qtbot) -> None:
    widget = open_denoise(make_napari_viewer, (1366, 768))
    window = widget.viewer.window._qt_window
    qtbot.waitUntil(lambda: widget.native.isVisible())
    qtbot.wait(50)  # one pass of the event loop for the layout
    assert window.height() <= 768, f"the Denoise dock made the window {window.height()} px tall"
    assert seen(widget.denoise_button.native) and seen(widget.model.native)
    assert seen(widget.open_button.native) and seen(widget.region.native)
    assert not widget.advanced_section.isExpanded()  # rarely used settings start collapsed
    assert not widget.folder.section.isExpanded()
    for hidden in (widget.device, widget.pixel_cutoff, widget.raw_layout, widget.raw_button):
        assert not seen(hidden.native), hidden.label
    qtbot.mouseClick(widget.advanced_section._toggle_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: seen(widget.raw_button.native))  # the panel grows, no scrolling
    qtbot.mouseClick(widget.folder.section._toggle_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.folder.open_button.native.isVisible())
    assert_rows_keep_their_height(qtbot, widget)  # after the sections' opening animation
    assert window.height() <= 768, f"open sections made the window {window.height()} px tall"
    for row in (widget.device, widget.raw_button, widget.folder.open_button):
        widget.scroll_area.ensureWidgetVisible(row.native)  # scroll down, as a user would
        assert seen(row.native), row.text if hasattr(row, "text") else row.label


def test_denoise_with_train_docked_below_at_1920x1080(make_napari_viewer, qtbot) -> None:
    from napari_cryoden._qt.train.widget import TrainWidget

    widget = open_denoise(make_napari_viewer, (1920, 1080))
    viewer = widget.viewer
    qtbot.waitUntil(widget.native.isVisible)  # Denoise is open when the user opens Train
    qtbot.wait(100)
    train = TrainWidget(viewer)
    viewer.window.add_dock_widget(train, name="Train")
    window = viewer.window._qt_window
    qtbot.waitUntil(lambda: widget.native.isVisible() and train.isVisible())
    qtbot.wait(100)
    assert window.height() <= 1080, f"Denoise + Train made the window {window.height()} px tall"
    for row in (widget.image, widget.model, widget.denoise_button, widget.compare_button):
        assert seen(row.native), "the Denoise panel's everyday rows are in sight without scrolling"
    try:  # room for its loss plot, once the dock area has shared out its height
        qtbot.waitUntil(lambda: train.height() >= 400, timeout=5000)
    except AssertionError:
        raise AssertionError(f"Train got {train.height()} px") from None
    qtbot.mouseClick(widget.folder.section._toggle_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.folder.open_button.native.isVisible())
    assert_rows_keep_their_height(qtbot, widget)
    assert window.height() <= 1080
    widget.scroll_area.ensureWidgetVisible(widget.folder.open_button.native)
    assert seen(widget.folder.open_button.native)
    train.scroll_area.ensureWidgetVisible(train.start_button)
    assert seen(train.start_button)


# ---- a region result keeps its rectangle in sight ------------------------------------------------
@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = Config()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_checkpoint(path, build_model(config.model, seed=0), config, epoch=1)


def test_a_region_result_leaves_its_rectangle_visible(make_napari_viewer, qtbot,
                                                       weights: Path) -> None:
    viewer = make_napari_viewer(show=True)
    image = np.random.default_rng(0).normal(0.5, 0.2, (128, 128)).astype(np.float32)
    viewer.add_image(image, name="mic")
    shapes = viewer.add_shapes(name="regions")
    shapes.add_rectangles(np.array([[20, 30], [80, 100]]))  # what drawing a rectangle adds
    shapes.selected_data = {0}
    widget = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Denoise")
    label = MODELS.register("tiny", weights)
    widget.model.native.setCurrentIndex(widget.model.native.findText(label))
    widget.region.native.setCurrentIndex(widget.region.native.findText(RECTANGLE))
    qtbot.waitUntil(widget.shapes.native.isVisible)  # the Shapes layer row appears
    assert widget.shapes.value is shapes
    with qtbot.waitSignal(widget.finished, timeout=WAIT_MS) as blocker:
        widget.denoise_button.native.click()
    result = blocker.args[0]
    names = [layer.name for layer in viewer.layers]
    assert names.index("regions") > names.index("mic denoised"), names  # drawn above the result
    assert shapes.visible and result.visible
    assert names[-1] == "regions"
    np.testing.assert_array_equal(result.data[:20], image[:20])  # outside the box: the input
    assert not np.array_equal(result.data[20:80, 30:100], image[20:80, 30:100])
