"""The Denoise widget, driven as a user would: pick, click, wait for the layer, compare.

A hand-built seed model (seeded weights saved with ``save_checkpoint``) stands in for a trained
one: what is tested is the plumbing, and any fixed weights make a result that must equal the
core's :func:`inference.denoise` of the same image.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari.layers import Image  # noqa: E402
from napari.utils.notifications import NotificationSeverity, notification_manager  # noqa: E402

from napari_cryoden._qt._models import MODELS, SHIPPED_LABELS  # noqa: E402
from napari_cryoden._qt.denoise.widget import (  # noqa: E402
    FIELD_OF_VIEW,
    RECTANGLE,
    DenoiseWidget,
)
from napari_cryoden.config.sections import Config  # noqa: E402
from napari_cryoden.inference.denoiser import denoise  # noqa: E402
from napari_cryoden.inference.smoothing import FLAT_BACKGROUND, Smoothing, smoothed  # noqa: E402
from napari_cryoden.models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from napari_cryoden.models.nets import build_model  # noqa: E402

SCALE, TRANSLATE = (1.5, 1.5), (10.0, -4.0)
WAIT_MS = 20_000
SHIPPED = tuple(SHIPPED_LABELS)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = Config()  # the seed's net, meanstd normalisation
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_checkpoint(path, build_model(config.model, seed=0), config, epoch=1)


@pytest.fixture(autouse=True)
def empty_registry() -> Iterator[None]:
    MODELS.clear()
    yield
    MODELS.clear()


@pytest.fixture
def micrograph() -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :128] / 128.0
    clean = 0.5 + 0.2 * np.sin(6 * yy) * np.cos(4 * xx)
    return (clean + rng.normal(0, 0.2, clean.shape)).astype(np.float32)


@pytest.fixture
def notes() -> Iterator[list]:
    seen: list = []
    notification_manager.notification_ready.connect(seen.append)
    yield seen
    notification_manager.notification_ready.disconnect(seen.append)


def reference(weights: Path, image: np.ndarray,
              smoothing: Smoothing = FLAT_BACKGROUND) -> np.ndarray:
    """What the panel gives with its default rows: the model's output, background flattened."""
    model, checkpoint = load_checkpoint(weights)
    return smoothed(denoise(model, image, normalization=checkpoint.normalization), smoothing,
                    source=image)


def setup(make_napari_viewer, image: np.ndarray, weights: Path | None = None):
    viewer = make_napari_viewer()
    viewer.add_image(image, name="mic", scale=SCALE, translate=TRANSLATE)
    widget = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Denoise")
    if weights is not None:
        use(widget, weights)
    return viewer, widget


def use(widget: DenoiseWidget, weights: Path, label: str = "tiny") -> None:
    """Register a model (as Train or Open do) and choose it in the Model list, as a user would."""
    choose(widget, MODELS.register(label, weights))


def choose(widget: DenoiseWidget, label: str) -> None:
    combo = widget.model.native
    index = combo.findText(label)
    assert index >= 0, f"{label!r} not in {[combo.itemText(i) for i in range(combo.count())]}"
    combo.setCurrentIndex(index)


def chosen(widget: DenoiseWidget) -> str:
    return widget.model.native.currentText()


def click_denoise(qtbot, widget: DenoiseWidget) -> Image:
    done: list = []
    widget.finished.connect(done.append)
    widget.denoise_button.native.click()
    qtbot.waitUntil(lambda: bool(done) and not widget.busy, timeout=WAIT_MS)
    widget.finished.disconnect(done.append)
    return done[0]


def errors(notes: list) -> list[str]:
    return [str(n.message) for n in notes if n.severity == NotificationSeverity.ERROR]


def test_denoise_adds_a_layer_equal_to_the_core_result(make_napari_viewer, qtbot, weights,
                                                       micrograph):
    viewer, widget = setup(make_napari_viewer, micrograph, weights)
    layer = click_denoise(qtbot, widget)
    assert layer.name == "mic denoised" and viewer.layers[-1] is layer
    assert layer.data.shape == micrograph.shape and layer.data.dtype == np.float32
    np.testing.assert_allclose(layer.scale, SCALE)
    np.testing.assert_allclose(layer.translate, TRANSLATE)
    np.testing.assert_allclose(layer.data, reference(weights, micrograph), atol=1e-6)
    assert not np.allclose(layer.data, micrograph)  # the model did something
    assert widget.progress.value == widget.progress.max > 0
    # a second run updates the same layer instead of adding "mic denoised [1]"
    viewer.layers["mic"].data = micrograph[::-1].copy()
    again = click_denoise(qtbot, widget)
    assert again is layer and len(viewer.layers) == 2
    np.testing.assert_allclose(layer.data, reference(weights, micrograph[::-1].copy()),
                               atol=1e-6)


def test_the_shipped_general_model_denoises_before_anything_is_trained(make_napari_viewer, qtbot,
                                                                       micrograph):
    from napari_cryoden.models.pretrained import shipped_path

    viewer, widget = setup(make_napari_viewer, micrograph)
    assert chosen(widget) == "general (shipped)"
    layer = click_denoise(qtbot, widget)
    assert layer.data.shape == micrograph.shape
    model, ckpt = load_checkpoint(shipped_path("general"))
    expected = smoothed(denoise(model, micrograph, normalization=ckpt.normalization),
                        FLAT_BACKGROUND, source=micrograph)  # the default look
    np.testing.assert_allclose(layer.data, expected, atol=1e-5)
    assert ckpt.config.model.preset == "unet-small"


def test_a_model_registered_later_appears_but_is_used_only_once_chosen(
        make_napari_viewer, qtbot, weights, micrograph, tmp_path):
    viewer, widget = setup(make_napari_viewer, micrograph)
    texts = lambda: [widget.model.native.itemText(i)  # noqa: E731
                     for i in range(widget.model.native.count())]
    assert texts() == list(SHIPPED)  # before training: the shipped models
    assert chosen(widget) == "general (shipped)"
    other = tmp_path / "other.safetensors"
    config = Config()
    save_checkpoint(other, build_model(config.model, seed=1), config, epoch=2)
    MODELS.register("run 1 (best)", weights)  # as the Train widget does on a new best epoch
    MODELS.register("run 2 (best)", other)
    assert texts() == [*SHIPPED, "run 1 (best)", "run 2 (best)"]
    assert chosen(widget) == "general (shipped)"  # a model Train registers is not chosen for you
    choose(widget, "run 2 (best)")
    layer = click_denoise(qtbot, widget)
    np.testing.assert_allclose(layer.data, reference(other, micrograph), atol=1e-6)
    assert not np.allclose(layer.data, reference(weights, micrograph), atol=1e-3)


def test_a_stack_is_denoised_slice_by_slice(make_napari_viewer, qtbot, weights, micrograph):
    stack = np.stack([micrograph, micrograph.T * 2.0])
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="tilts", scale=(1.0, *SCALE))
    widget = DenoiseWidget(viewer)
    use(widget, weights)
    layer = click_denoise(qtbot, widget)
    assert layer.data.shape == stack.shape
    np.testing.assert_allclose(layer.data, reference(weights, stack), atol=1e-6)


def test_a_region_of_a_stack_is_denoised_on_the_slice_shown(make_napari_viewer, qtbot, weights,
                                                            micrograph):
    stack = np.stack([micrograph, micrograph.T.copy()])
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="tilts")
    viewer.add_shapes([[[10, 20], [10, 60], [50, 60], [50, 20]]], shape_type="rectangle")
    widget = DenoiseWidget(viewer)
    use(widget, weights)
    widget.region.value = RECTANGLE
    viewer.dims.set_current_step(0, 1)
    layer = click_denoise(qtbot, widget)
    viewer.dims.set_current_step(0, 0)  # moving on does not change where the result went
    np.testing.assert_array_equal(layer.data[0], stack[0])
    box = (slice(10, 51), slice(20, 61))
    np.testing.assert_allclose(layer.data[1][box], reference(weights, stack[1])[box], atol=1e-5)
    outside = layer.data[1].copy()
    outside[box] = stack[1][box]
    np.testing.assert_array_equal(outside, stack[1])


def test_rectangle_region_changes_only_the_rectangle(make_napari_viewer, qtbot, weights,
                                                     micrograph):
    viewer, widget = setup(make_napari_viewer, micrograph, weights)
    to_world = np.array(SCALE), np.array(TRANSLATE)

    def world(y: float, x: float) -> np.ndarray:
        return np.array([y, x]) * to_world[0] + to_world[1]

    first = np.array([world(5, 5), world(5, 20), world(20, 20), world(20, 5)])
    second = np.array([world(30, 40), world(30, 100), world(90, 100), world(90, 40)])
    shapes = viewer.add_shapes([first, second], shape_type="rectangle", name="roi")
    shapes.selected_data = {1}  # the selected rectangle wins over the first one
    widget.region.value = RECTANGLE
    widget.shapes.value = shapes
    layer = click_denoise(qtbot, widget)
    inside = (slice(30, 91), slice(40, 101))  # pixel centres within the rectangle
    outside = np.ones(micrograph.shape, bool)
    outside[inside] = False
    np.testing.assert_array_equal(layer.data[outside], micrograph[outside])
    np.testing.assert_allclose(layer.data[inside], reference(weights, micrograph)[inside],
                               atol=1e-5)
    assert np.all(layer.data[inside] != micrograph[inside])


def test_the_default_flattens_the_background_and_a_rectangle_matches_the_whole(
        make_napari_viewer, qtbot, weights, micrograph):
    """σ 16 px on the background by default; a rectangle gets the whole run's pixels (its
    threshold is the whole micrograph's)."""
    viewer, widget = setup(make_napari_viewer, micrograph, weights)
    layer = click_denoise(qtbot, widget)
    whole = reference(weights, micrograph)
    np.testing.assert_allclose(layer.data, whole, atol=1e-5)
    assert not np.allclose(layer.data, reference(weights, micrograph, Smoothing()), atol=1e-3)
    assert (layer.metadata["smooth_sigma_px"], layer.metadata["smooth_where"]) == (
        16.0, "background")
    corners = np.array([[30, 40], [30, 100], [90, 100], [90, 40]]) * np.array(SCALE) \
        + np.array(TRANSLATE)
    shapes = viewer.add_shapes([corners], shape_type="rectangle", name="roi")
    widget.region.value = RECTANGLE
    widget.shapes.value = shapes
    viewer.layers.remove(layer)  # a fresh layer: the box's pixels, the rest the input's
    boxed = click_denoise(qtbot, widget)
    inside = (slice(30, 91), slice(40, 101))
    np.testing.assert_allclose(boxed.data[inside], whole[inside], atol=1e-4)


def test_detail_kept_appears_with_smoothing_and_keeps_that_share(make_napari_viewer, qtbot,
                                                                 weights, micrograph):
    """The rows show only while there is a Gaussian to place and keep detail of; everywhere,
    the layer is the blend; at σ 0 it is the model's output as it is."""
    from scipy import ndimage

    viewer, widget = setup(make_napari_viewer, micrograph, weights)
    # the default: σ 16 px on the background, no share kept
    assert not widget.keep_detail.native.isHidden() and widget.keep_detail.value == 0
    assert not widget.smooth_where.native.isHidden()
    assert (widget.smooth.value, widget.smooth_where.value) == (16.0, "background")
    widget.smooth.value = 6.0
    widget.smooth_where.value = "everywhere"
    widget.keep_detail.value = 0.5
    layer = click_denoise(qtbot, widget)
    plain = reference(weights, micrograph, Smoothing())
    blurred = ndimage.gaussian_filter(plain, 6.0)
    np.testing.assert_allclose(layer.data, blurred + 0.5 * (plain - blurred), atol=1e-5)
    assert layer.metadata["smooth_sigma_px"] == 6.0
    assert layer.metadata["smooth_keep_detail"] == 0.5
    assert layer.metadata["smooth_where"] == "everywhere"
    widget.smooth.value = 0.0  # the rows hide, and their values no longer apply
    assert widget.keep_detail.native.isHidden() and widget.smooth_where.native.isHidden()
    viewer.layers.remove(layer)
    np.testing.assert_allclose(click_denoise(qtbot, widget).data, plain, atol=1e-5)


def test_field_of_view_changes_only_visible_pixels(make_napari_viewer, qtbot, weights,
                                                   micrograph):
    viewer, widget = setup(make_napari_viewer, micrograph, weights)
    image = viewer.layers["mic"]
    camera = viewer.scene.camera
    camera.zoom *= 4
    camera.center = (0.0, *(np.array([40.0, 70.0]) * SCALE + TRANSLATE))
    viewer.screenshot(canvas_only=True)  # a draw: napari updates the layer's visible corners
    (y0, x0), (y1, x1) = image.corner_pixels  # napari's own view of what is visible
    widget.region.value = FIELD_OF_VIEW
    layer = click_denoise(qtbot, widget)
    changed = np.argwhere(layer.data != micrograph)
    (cy0, cx0), (cy1, cx1) = changed.min(axis=0), changed.max(axis=0)
    assert y0 <= cy0 and cy1 <= y1 and x0 <= cx0 and cx1 <= x1  # only visible pixels changed
    assert cy0 - y0 <= 1 and y1 - cy1 <= 2 and cx0 - x0 <= 1 and x1 - cx1 <= 2  # all of them
    assert 0 < len(changed) < micrograph.size / 4  # zoomed in: a small part of the image
    box = (slice(cy0, cy1 + 1), slice(cx0, cx1 + 1))
    np.testing.assert_allclose(layer.data[box], reference(weights, micrograph)[box], atol=1e-5)


def test_compare_without_clean_shows_two_panels(make_napari_viewer, qtbot, weights, micrograph,
                                                notes):
    viewer, widget = setup(make_napari_viewer, micrograph, weights)
    widget.compare_button.native.click()  # nothing denoised yet: a warning, no grid
    assert not viewer.canvas.grid.enabled and notes
    click_denoise(qtbot, widget)
    assert widget.clean.value is None
    widget.compare_button.native.click()
    assert list(widget.side_by_side.positions()) == ["mic", "mic denoised"]
    for name in ("mic", "mic denoised"):  # each with its own contrast (see test_compare.py)
        expected = np.percentile(viewer.layers[name].data, [0.5, 99.5])
        np.testing.assert_allclose(viewer.layers[name].contrast_limits, expected, rtol=1e-4)
    viewer.canvas.grid.enabled = False  # the viewer's own grid button also ends the compare
    assert widget.compare_button.text == "Compare side by side"


def test_bad_weight_file_is_reported_and_the_viewer_still_works(
        make_napari_viewer, qtbot, weights, micrograph, tmp_path, monkeypatch, notes):
    from qtpy.QtWidgets import QFileDialog
    from safetensors import safe_open
    from safetensors.numpy import save_file

    viewer, widget = setup(make_napari_viewer, micrograph, weights)
    broken = tmp_path / "run" / "broken.safetensors"  # a sound header, a tensor cut short
    broken.parent.mkdir()
    with safe_open(str(weights), "np") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        save_file({**tensors, "conv1.weight": tensors["conv1.weight"][:8]}, str(broken),
                  metadata=f.metadata())
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(broken), ""))
    widget.open_button.native.click()
    assert chosen(widget) == "run · broken (seed, epoch 1)" and widget.model.value == broken
    widget.denoise_button.native.click()
    qtbot.waitUntil(lambda: bool(errors(notes)) and not widget.busy, timeout=WAIT_MS)
    [message] = errors(notes)
    assert "broken.safetensors" in message and "conv1.weight has shape" in message
    assert "mic denoised" not in viewer.layers and widget.denoise_button.enabled
    choose(widget, "tiny")
    assert click_denoise(qtbot, widget).name == "mic denoised"


def test_missing_layer_and_4d_data_are_reported(make_napari_viewer, weights, notes):
    viewer = make_napari_viewer()
    widget = DenoiseWidget(viewer)
    use(widget, weights)
    widget.denoise_button.native.click()
    assert "No image layer" in errors(notes)[-1]
    viewer.add_image(np.zeros((2, 2, 16, 16), np.float32), name="movie")
    widget.denoise_button.native.click()
    assert "'movie' is 4D" in errors(notes)[-1] and not widget.busy


def test_the_manifest_opens_the_widget_with_napari_s_viewer_proxy(make_napari_viewer, qtbot,
                                                                  weights, micrograph):
    viewer = make_napari_viewer()
    viewer.add_image(micrograph, name="mic", scale=SCALE, translate=TRANSLATE)
    _, widget = viewer.window.add_plugin_dock_widget("napari-cryoden", "Denoise")
    assert isinstance(widget, DenoiseWidget)
    use(widget, weights)
    layer = click_denoise(qtbot, widget)
    np.testing.assert_allclose(layer.data, reference(weights, micrograph), atol=1e-6)
    widget.compare_button.native.click()
    assert viewer.canvas.grid.enabled and len(viewer.layers) == 2


# ---- raw weight folders and the scramble guards -------------------------------------------------
def smoothing_model():
    """A seed net that really denoises: a 3×3 box filter passed through channel 0."""
    import torch

    model = build_model(Config().model, seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.conv1.weight[0, 0] = 1.0 / 9.0
        model.conv2.weight[0, 0, 1, 1] = 1.0
        model.conv3.weight[0, 0, 1, 1] = 1.0
    return model


@pytest.fixture
def smooth_pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:128, :128] / 128.0
    clean = (0.5 + 0.2 * np.sin(6 * yy) * np.cos(4 * xx)).astype(np.float32)
    return (clean + rng.normal(0, 0.2, clean.shape)).astype(np.float32), clean


def load_raw(qtbot, widget: DenoiseWidget, folder: Path, layout: str | None) -> str:
    with qtbot.waitSignal(widget.raw_loaded, timeout=WAIT_MS) as blocker:
        widget.add_raw_folder(folder, layout)
    qtbot.waitUntil(lambda: widget.raw_worker is None, timeout=WAIT_MS)
    return blocker.args[0]


@pytest.fixture
def warned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr("napari.utils.notifications.show_warning", seen.append)
    return seen


def test_a_fortran_raw_folder_denoises_like_the_original_model(make_napari_viewer, qtbot,
                                                               tmp_path, micrograph, warned):
    from napari_cryoden.interop.raw import write_raw

    model = build_model(Config().model, seed=3)
    write_raw(model, tmp_path / "fortran_run", layout="fortran")
    viewer, widget = setup(make_napari_viewer, micrograph)
    label = load_raw(qtbot, widget, tmp_path / "fortran_run", "fortran")
    assert label == "fortran_run (raw, fortran)" and chosen(widget) == label
    assert MODELS.get(label).suffix == ".safetensors"
    widget.smooth.value = 0.0  # the model's output, to compare the weights
    layer = click_denoise(qtbot, widget)
    np.testing.assert_allclose(layer.data, denoise(model, micrograph, normalization="none"),
                               atol=1e-5)
    assert not warned  # no clean layer: nothing to judge, nothing said


def test_seed_legacy_on_an_oihw_folder_warns_when_clean_is_set(make_napari_viewer, qtbot,
                                                                tmp_path, smooth_pair, warned):
    from napari_cryoden.interop.raw import write_raw

    noisy, clean = smooth_pair
    write_raw(smoothing_model(), tmp_path / "run", layout="oihw")
    viewer, widget = setup(make_napari_viewer, noisy)
    viewer.add_image(clean, name="reference")
    widget.clean.value = viewer.layers["reference"]
    # the right layout: a real denoiser, no warning
    assert load_raw(qtbot, widget, tmp_path / "run", "oihw") == "run (raw, oihw)"
    click_denoise(qtbot, widget)
    assert warned == []
    # the seed's bug: the same files read as hwio are scrambled, and the user is told
    with qtbot.waitSignal(widget.raw_loaded, timeout=WAIT_MS):
        widget.raw_layout.value = "seed-legacy"  # changing the layout re-reads the folder
    qtbot.waitUntil(lambda: widget.raw_worker is None, timeout=WAIT_MS)
    assert chosen(widget) == "run (raw, seed-legacy)"
    click_denoise(qtbot, widget)
    assert warned and all(w.startswith("Check the weights: ") for w in warned)
    assert any("worse than the identity" in w for w in warned)


def test_smoothing_is_not_blamed_on_the_weights(make_napari_viewer, qtbot, tmp_path, warned):
    """A real denoiser with a wide Gaussian chosen: the layer is smoothed (worse than the noisy
    input against the clean one here), but the scramble guards judge the model's own output,
    so nothing says "Check the weights"."""
    from scipy import ndimage

    from napari_cryoden.interop.raw import write_raw

    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:128, :128]
    clean = (0.5 + 0.2 * np.sin(2 * np.pi * yy / 16) * np.sin(2 * np.pi * xx / 16)).astype(
        np.float32)  # detail a Gaussian of σ 8 px erases
    noisy = (clean + rng.normal(0, 0.05, clean.shape)).astype(np.float32)
    write_raw(smoothing_model(), tmp_path / "run", layout="oihw")
    viewer, widget = setup(make_napari_viewer, noisy)
    viewer.add_image(clean, name="reference")
    widget.clean.value = viewer.layers["reference"]
    load_raw(qtbot, widget, tmp_path / "run", "oihw")
    widget.smooth.value, widget.smooth_where.value = 8.0, "everywhere"
    layer = click_denoise(qtbot, widget)
    plain = denoise(smoothing_model(), noisy, normalization="none")
    np.testing.assert_allclose(layer.data, ndimage.gaussian_filter(plain, 8.0), atol=1e-5)
    assert np.mean((layer.data - clean) ** 2) > np.mean((noisy - clean) ** 2)  # as the user chose
    assert np.mean((plain - clean) ** 2) < np.mean((noisy - clean) ** 2)  # the model denoises
    assert warned == []


def test_the_sidecar_sets_the_layout(make_napari_viewer, qtbot, tmp_path, weights, micrograph):
    from napari_cryoden.interop.raw import export_raw

    export_raw(weights, tmp_path / "exported", layout="hwio")
    viewer, widget = setup(make_napari_viewer, micrograph)
    assert load_raw(qtbot, widget, tmp_path / "exported", None) == "exported (raw, hwio)"
    assert widget.raw_layout.value == "hwio"
    layer = click_denoise(qtbot, widget)
    np.testing.assert_allclose(layer.data, reference(weights, micrograph), atol=1e-5)


def test_auto_without_a_clean_layer_is_an_error(make_napari_viewer, tmp_path, micrograph,
                                                notes):
    from napari_cryoden.interop.raw import write_raw

    write_raw(build_model(Config().model, seed=0), tmp_path / "run")
    viewer, widget = setup(make_napari_viewer, micrograph)
    widget.add_raw_folder(tmp_path / "run", "auto")
    assert widget.raw_worker is None and MODELS.registered() == []
    assert any("auto needs a noisy/clean pair" in e for e in errors(notes))


def test_auto_that_cannot_decide_shows_the_ranking(make_napari_viewer, qtbot, tmp_path,
                                                   smooth_pair, notes):
    from napari_cryoden.interop.raw import write_raw

    noisy, clean = smooth_pair
    write_raw(smoothing_model(), tmp_path / "run")  # a symmetric kernel: kH, kW swap ties
    viewer, widget = setup(make_napari_viewer, noisy)
    viewer.add_image(clean, name="reference")
    widget.clean.value = viewer.layers["reference"]
    widget.add_raw_folder(tmp_path / "run", "auto")
    qtbot.waitUntil(lambda: widget.raw_worker is None, timeout=WAIT_MS)
    assert MODELS.registered() == []
    message = next(e for e in errors(notes) if "raw weight folder" in e)
    assert "refusing to guess" in message and "val MSE" in message
