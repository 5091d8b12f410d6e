"""Compare side by side, driven as a user would: denoise, click Compare, look, click Back.

The micrograph has hot pixels (a few pixels at 500 while the rest is ~0.5), as counting-mode
micrographs do: one shared or min..max contrast would turn its panel black.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari.layers import Image  # noqa: E402

from napari_cryoden._qt._models import MODELS  # noqa: E402
from napari_cryoden._qt.denoise.compare import grid_shape  # noqa: E402
from napari_cryoden._qt.denoise.widget import DenoiseWidget  # noqa: E402
from napari_cryoden.config.sections import Config  # noqa: E402
from napari_cryoden.models.checkpoint import save_checkpoint  # noqa: E402
from napari_cryoden.models.nets import build_model  # noqa: E402

SCALE, TRANSLATE = (1.5, 1.5), (10.0, -4.0)
WAIT_MS = 20_000
PANELS = ("mic", "mic denoised", "reference")
GRID = ("enabled", "shape", "stride", "spacing")


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = Config()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_checkpoint(path, build_model(config.model, seed=0), config, epoch=1)


@pytest.fixture(autouse=True)
def empty_registry() -> Iterator[None]:
    MODELS.clear()
    yield
    MODELS.clear()


def hot_micrograph() -> tuple[np.ndarray, np.ndarray]:
    """(noisy with 20 hot pixels at 500, clean) — 128² with a smooth pattern."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :128] / 128.0
    clean = (0.5 + 0.2 * np.sin(6 * yy) * np.cos(4 * xx)).astype(np.float32)
    noisy = (clean + rng.normal(0, 0.2, clean.shape)).astype(np.float32)
    noisy[rng.integers(0, 128, 20), rng.integers(0, 128, 20)] = 500.0
    return noisy, clean


def denoised_viewer(make_napari_viewer, qtbot, weights: Path):
    """A viewer with mic, reference (clean) and, after one Denoise click, mic denoised."""
    viewer = make_napari_viewer()
    noisy, clean = hot_micrograph()
    viewer.add_image(noisy, name="mic", scale=SCALE, translate=TRANSLATE)
    viewer.add_image(clean, name="reference", scale=SCALE, translate=TRANSLATE)
    widget = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Denoise")
    MODELS.register("tiny", weights)
    widget.model.value, widget.image.value = weights, viewer.layers["mic"]  # the entry's value
    with qtbot.waitSignal(widget.finished, timeout=WAIT_MS):
        widget.denoise_button.native.click()
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    widget.clean.value = viewer.layers["reference"]
    return viewer, widget


def visible_extent(viewer) -> np.ndarray:
    """World (height, width) one grid cell shows with the camera as it is now."""
    cell = np.asarray(viewer.canvas.viewbox_size(viewer.layers), float)
    return cell / viewer.scene.camera.zoom


def label_visuals(viewer) -> dict[str, tuple[str, object]]:
    """What each panel shows as its label: text and the grid cell it is drawn in, by layer."""
    canvas = viewer.window._qt_viewer.canvas
    shown = {}
    for layer in viewer.layers:
        visual = canvas._layer_overlay_to_visual.get(layer, {}).get(layer.name_overlay)
        if layer.name_overlay.visible and visual is not None and visual.node.parent is not None:
            shown[layer.name] = (visual.node.text, visual.node.parent)
    return shown


def test_each_panel_is_labelled_with_its_image_name(make_napari_viewer, qtbot, weights):
    viewer, widget = denoised_viewer(make_napari_viewer, qtbot, weights)
    widget.compare_button.native.click()
    viewer.screenshot(canvas_only=True)  # a draw
    labels = label_visuals(viewer)
    assert {name: text for name, (text, _) in labels.items()} == {n: n for n in PANELS}
    grid = viewer.window._qt_viewer.canvas.grid
    for name in PANELS:  # each label sits in its own panel's grid cell
        row, column = widget.side_by_side.positions()[name]
        assert labels[name][1] is grid[row, column]


def test_each_panel_has_its_own_robust_contrast(make_napari_viewer, qtbot, weights):
    viewer, widget = denoised_viewer(make_napari_viewer, qtbot, weights)
    widget.compare_button.native.click()
    limits = {n: np.array(viewer.layers[n].contrast_limits) for n in PANELS}
    for name in PANELS:  # the 0.5-99.5 % of its own pixels: the 20 hot pixels do not count
        expected = np.percentile(viewer.layers[name].data, [0.5, 99.5])
        np.testing.assert_allclose(limits[name], expected, rtol=1e-4)
    assert limits["mic"][1] < 5  # not 500: the noisy panel is not black
    assert not np.allclose(limits["mic"], limits["reference"])
    assert not np.allclose(limits["mic denoised"], limits["reference"])


def test_the_camera_frames_the_compared_images_only(make_napari_viewer, qtbot, weights):
    viewer, widget = denoised_viewer(make_napari_viewer, qtbot, weights)
    big = viewer.add_image(np.zeros((2000, 3000), np.float32), name="overview",
                           translate=(-500, 800))  # far larger, elsewhere: hidden by Compare
    viewer.add_points([[5000, 5000]], name="picks")
    viewer.reset_view()  # the single view fits everything, as napari does
    widget.compare_button.native.click()
    assert not big.visible and not viewer.layers["picks"].visible
    size = np.array([128, 128]) * SCALE  # world size of each compared image
    centre = np.array(TRANSLATE) + (size - np.array(SCALE)) / 2  # pixel centres from TRANSLATE
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], centre, atol=1e-6)
    shown = visible_extent(viewer)
    assert np.all(shown >= size)  # every panel whole
    assert np.min(shown / size) <= 1.1  # and filling its cell (within 10 %) on one axis


def test_the_grid_shape_shows_the_panels_largest():
    square = np.array([100.0, 100.0])
    assert grid_shape(3, (300, 1200), square) == (1, 3)  # a wide canvas: one row
    assert grid_shape(3, (700, 670), square) == (2, 2)  # a squarish one: two rows
    assert grid_shape(2, (700, 300), square) == (2, 1)  # a tall one: one above the other


def test_panels_keep_reading_order_noisy_denoised_clean(make_napari_viewer, qtbot, weights):
    viewer, widget = denoised_viewer(make_napari_viewer, qtbot, weights)
    viewer.layers.move(2, 0)  # list: mic denoised, mic, reference
    widget.compare_button.native.click()
    positions = widget.side_by_side.positions()
    assert list(positions) == list(PANELS)
    assert sorted(positions.values()) == [positions[n] for n in PANELS]  # row by row
    # grid mode: every panel is drawn through the one scene camera
    cameras = viewer.window._qt_viewer.canvas.grid_cameras
    viewer.scene.camera.center, viewer.scene.camera.zoom = (0.0, 70.0, 90.0), 3.0
    for camera in cameras:
        assert camera.center[-2:] == pytest.approx((70.0, 90.0))


def view_state(viewer) -> dict:
    camera = viewer.scene.camera
    return {
        "order": [layer.name for layer in viewer.layers],
        "translate": {lay.name: tuple(lay.translate) for lay in viewer.layers},
        "limits": {lay.name: tuple(lay.contrast_limits) for lay in viewer.layers
                   if isinstance(lay, Image)},
        "visible": {lay.name: lay.visible for lay in viewer.layers},
        "labels": {lay.name: lay.name_overlay.visible for lay in viewer.layers},
        "camera": (tuple(camera.center), camera.zoom, tuple(camera.angles)),
        "grid": {k: getattr(viewer.canvas.grid, k) for k in GRID},
    }


@pytest.mark.parametrize("back", ["button", "viewer grid button"])
def test_back_restores_exactly_the_view_before(make_napari_viewer, qtbot, weights, back):
    viewer, widget = denoised_viewer(make_napari_viewer, qtbot, weights)
    viewer.add_points([[20, 20]], name="picks")
    viewer.layers.move(viewer.layers.index("mic denoised"), 0)  # a user's own order
    viewer.layers["reference"].visible = False
    viewer.layers["mic"].contrast_limits = (0.0, 500.0)  # min..max, hot pixels and all
    viewer.layers["picks"].translate = (3.0, 4.0)
    viewer.canvas.grid.spacing = 0.1
    viewer.scene.camera.center, viewer.scene.camera.zoom = (0.0, 40.0, 60.0), 7.5
    before = view_state(viewer)
    widget.compare_button.native.click()
    assert view_state(viewer) != before
    viewer.scene.camera.zoom *= 2  # the user zooms into the panels meanwhile
    if back == "button":
        widget.compare_button.native.click()
    else:
        viewer.canvas.grid.enabled = False
    assert view_state(viewer) == before
    assert widget.compare_button.text == "Compare side by side"
