"""The Inspect widget, driven as a user would: analyse, sort, click a patch, map, checklist.

Run under Xvfb: ``xvfb-run -a python -m pytest tests/qt/test_inspect_widget.py -q``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from qtpy.QtCore import QPoint, Qt  # noqa: E402

from napari_cryoden._qt import inspect_widget  # noqa: E402
from napari_cryoden._qt._models import MODELS  # noqa: E402
from napari_cryoden._qt.inspect_widget import InspectWidget  # noqa: E402
from napari_cryoden.evaluation.metrics import patch_metrics  # noqa: E402

SIZE, PATCH = 128, 32  # 4 x 4 = 16 patches
SCALE, TRANSLATE = np.array([1.5, 2.0]), np.array([10.0, -20.0])
USER = Qt.ItemDataRole.UserRole


@pytest.fixture(autouse=True)
def _isolated() -> None:
    MODELS.clear()


def trio(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clean blobs in [0.3, 0.8], plus noise, and a Gaussian-filtered 'denoised' image."""
    rng = np.random.default_rng(seed)
    clean = gaussian_filter(rng.random((SIZE, SIZE)), 3.0)
    clean = 0.3 + 0.5 * (clean - clean.min()) / np.ptp(clean)
    noisy = clean + rng.normal(0, 0.1, clean.shape)
    denoised = gaussian_filter(noisy, 1.5)
    denoised[:, :40] += 0.05  # a brighter band: patches differ, so sorting means something
    return tuple(a.astype(np.float32) for a in (noisy, denoised, clean))  # type: ignore[return-value]


def make_widget(make_napari_viewer: Any, *, with_noisy: bool = True) -> tuple[Any, InspectWidget]:
    viewer = make_napari_viewer()
    noisy, denoised, clean = trio()
    names = [("noisy", noisy)] if with_noisy else []
    for name, data in [*names, ("noisy (denoised)", denoised), ("clean", clean)]:
        viewer.add_image(data, name=name, scale=SCALE, translate=TRANSLATE)
    widget = InspectWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Inspect")
    widget.patch_size.value = PATCH
    return viewer, widget


def analyse(qtbot: Any, widget: InspectWidget) -> None:
    """Press Analyse and wait for the analysis (it runs in a worker)."""
    assert widget.analyse_button.enabled, widget.problem.text()
    with qtbot.waitSignal(widget.analysed, timeout=30_000):
        widget.analyse_button.native.click()


def column(widget: InspectWidget, name: str) -> list[float]:
    j = [c[0] for c in inspect_widget.COLUMNS].index(name)
    return [widget.table.item(i, j).data(USER) for i in range(widget.table.rowCount())]


def click_row(qtbot: Any, widget: InspectWidget, row: int) -> int:
    """Click the table's ``row`` and wait for its plot; return the patch number shown in it."""
    widget.table.scrollToItem(widget.table.item(row, 1))
    rect = widget.table.visualItemRect(widget.table.item(row, 1))
    with qtbot.waitSignal(widget.canvas.rendered, timeout=30_000):
        qtbot.mouseClick(widget.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    return int(widget.table.item(row, 0).data(USER))


def test_layer_choices_are_guessed_from_names(make_napari_viewer: Any) -> None:
    _, widget = make_widget(make_napari_viewer)
    assert (widget.noisy.value.name, widget.denoised.value.name, widget.clean.value.name) == \
        ("noisy", "noisy (denoised)", "clean")


def test_table_has_one_row_per_patch_with_patch_metrics(make_napari_viewer: Any,
                                                        qtbot: Any) -> None:
    viewer, widget = make_widget(make_napari_viewer)
    analyse(qtbot, widget)
    noisy, denoised, clean = trio()
    expected = patch_metrics(denoised, clean, PATCH, 1.0)
    assert widget.table.rowCount() == 16
    order = [int(i) for i in column(widget, "patch #")]
    for name, key in (("y", "y"), ("x", "x"), ("MSE", "mse"), ("RMSE", "rmse"),
                      ("PSNR", "psnr"), ("r", "corr")):
        assert column(widget, name) == pytest.approx([expected[i][key] for i in order]), name
    noisy_rmse = [r["rmse"] for r in patch_metrics(noisy, clean, PATCH, 1.0)]
    assert column(widget, "noisy RMSE") == pytest.approx([noisy_rmse[i] for i in order])
    assert widget.table.item(0, 4).text() == f"{expected[order[0]]['rmse']:.4f}"


def test_clicking_the_rmse_header_sorts_numerically(make_napari_viewer: Any, qtbot: Any) -> None:
    _, widget = make_widget(make_napari_viewer)
    analyse(qtbot, widget)
    header = widget.table.horizontalHeader()
    x = header.sectionViewportPosition(4) + header.sectionSize(4) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))
    rmse = column(widget, "RMSE")
    assert rmse == sorted(rmse) or rmse == sorted(rmse, reverse=True)
    assert rmse[0] != rmse[-1]
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))
    assert column(widget, "RMSE") == rmse[::-1]


def test_clicking_a_row_centres_the_camera_on_the_patch_and_adds_no_layer(
        make_napari_viewer: Any, qtbot: Any) -> None:
    viewer, widget = make_widget(make_napari_viewer)
    analyse(qtbot, widget)
    layers = [layer.name for layer in viewer.layers]
    for row in (5, 11):
        patch = click_row(qtbot, widget, row)
        y, x = widget.analysis.rows[patch]["y"], widget.analysis.rows[patch]["x"]
        lo = (np.array([y, x]) - 0.5) * SCALE + TRANSLATE  # pixel edges, in world coordinates
        hi = lo + PATCH * SCALE
        assert viewer.scene.camera.center[-2:] == pytest.approx((lo + hi) / 2)
    width = np.min(np.asarray(viewer.canvas.size) / (PATCH * SCALE))
    assert viewer.scene.camera.zoom == pytest.approx(0.9 * width)  # the patch fills the view
    assert [layer.name for layer in viewer.layers] == layers  # a napari layer add blocks 60+ ms
    assert widget.canvas.figure.axes[0].get_xlabel() == "clean intensity"


def test_metric_map_has_one_value_per_patch_and_overlays_them(make_napari_viewer: Any,
                                                              qtbot: Any) -> None:
    viewer, widget = make_widget(make_napari_viewer)
    analyse(qtbot, widget)
    widget.show_map.value = True
    layer = viewer.layers["RMSE map"]
    assert layer.data.shape == (4, 4)
    for row in widget.analysis.rows:
        i, j = row["y"] // PATCH, row["x"] // PATCH
        assert layer.data[i, j] == pytest.approx(row["rmse"])
        centre = (np.array([row["y"], row["x"]]) + (PATCH - 1) / 2) * SCALE + TRANSLATE
        assert np.asarray(layer.data_to_world((i, j)))[-2:] == pytest.approx(centre)
    widget.map_metric.value = "PSNR"
    assert [layer.name for layer in viewer.layers if "map" in layer.name] == ["PSNR map"]
    assert viewer.layers["PSNR map"].data[0, 0] == pytest.approx(widget.analysis.rows[0]["psnr"])
    widget.show_map.value = False
    assert "PSNR map" not in viewer.layers


def map_colour_bars(widget: InspectWidget) -> list[Any]:
    """The plot's axes labelled as the metric map's colour bar."""
    return [ax for ax in widget.canvas.figure.axes if "per patch" in ax.get_xlabel()]


def test_the_metric_map_has_a_labelled_colour_bar(make_napari_viewer: Any, qtbot: Any) -> None:
    viewer, widget = make_widget(make_napari_viewer)
    analyse(qtbot, widget)
    qtbot.waitUntil(lambda: widget.canvas.figure is not None, timeout=30_000)
    assert map_colour_bars(widget) == []  # no map, no bar
    with qtbot.waitSignal(widget.canvas.rendered, timeout=30_000):
        widget.show_map.value = True
    [bar] = map_colour_bars(widget)
    assert bar.get_xlabel() == "RMSE per patch: the metric map (lower is better)"
    assert bar.get_xlim() == pytest.approx(viewer.layers["RMSE map"].contrast_limits)
    click_row(qtbot, widget, 3)  # a patch's plot keeps the bar
    assert len(map_colour_bars(widget)) == 1
    with qtbot.waitSignal(widget.canvas.rendered, timeout=30_000):
        widget.map_metric.value = "PSNR"
    [bar] = map_colour_bars(widget)
    assert bar.get_xlabel().startswith("PSNR per patch") and "higher is better" in bar.get_xlabel()
    with qtbot.waitSignal(widget.canvas.rendered, timeout=30_000):
        widget.show_map.value = False
    assert map_colour_bars(widget) == []


def test_checklist_shows_ten_items(make_napari_viewer: Any, qtbot: Any) -> None:
    _, widget = make_widget(make_napari_viewer)
    analyse(qtbot, widget)
    items = widget.analysis.checklist
    assert [i["id"] for i in items] == list(range(1, 11)) and widget.chips.count() == 10
    assert [i["passed"] for i in items[:3]] == [None, None, None]  # no training history
    assert items[6]["passed"] is not None  # the noisy image gives item 7's baselines
    chip = widget.chips.itemAt(3).widget()
    assert chip.text() in ("✓ 4 · correlation", "✗ 4 · correlation")  # words, not only "4 ✓"
    tip = chip.toolTip()
    assert "Correlation" in tip and "checked: Pearson r" in tip
    assert f"measured: {items[3]['value']:.4g}" in tip and "needed:" in tip
    assert "3 not judged" in widget.summary.text()


def test_without_noisy_item_7_is_not_judged(make_napari_viewer: Any, qtbot: Any) -> None:
    _, widget = make_widget(make_napari_viewer, with_noisy=False)
    assert widget.noisy.value is None
    analyse(qtbot, widget)
    assert widget.table.rowCount() == 16
    assert widget.table.isColumnHidden(len(inspect_widget.COLUMNS) - 1)
    assert widget.analysis.checklist[6]["passed"] is None
    assert "noisy image" in widget.summary.text()


def test_model_history_lets_items_1_to_3_be_judged(make_napari_viewer: Any, qtbot: Any,
                                                   tmp_path: Path) -> None:
    from napari_cryoden.config.sections import Config
    from napari_cryoden.models.checkpoint import save_checkpoint
    from napari_cryoden.models.nets import build_model

    epochs = [{"epoch": 1, "train_loss": 0.004, "val_loss": 0.0038, "val_mse": 0.0038},
              {"epoch": 2, "train_loss": 0.003, "val_loss": 0.0031, "val_mse": 0.0031}]
    path = save_checkpoint(tmp_path / "best.safetensors", build_model(seed=0), Config(),
                           epoch=2, epochs=epochs)
    _, widget = make_widget(make_napari_viewer)
    MODELS.register("run", path)
    widget.model.value = "run"
    analyse(qtbot, widget)
    first = widget.analysis.checklist[:3]
    assert all(item["passed"] is not None for item in first)
    assert first[0]["passed"] is True  # the loss went down smoothly


def test_mismatched_shapes_disable_analyse_with_the_reason(make_napari_viewer: Any) -> None:
    viewer, widget = make_widget(make_napari_viewer)
    viewer.add_image(np.zeros((64, 64), np.float32), name="small")
    widget.clean.value = viewer.layers["small"]
    assert not widget.analyse_button.enabled
    assert "Shapes differ" in widget.problem.text() and "(64, 64)" in widget.problem.text()
    assert not widget.problem.isHidden() and widget.table.rowCount() == 0


def test_without_images_analyse_is_disabled_and_says_what_is_missing(
        make_napari_viewer: Any) -> None:
    viewer = make_napari_viewer()
    widget = InspectWidget(viewer)  # no image layers: nothing to choose
    viewer.window.add_dock_widget(widget, name="Inspect")
    assert not widget.analyse_button.enabled
    assert "Choose the denoised image" in widget.problem.text() and not widget.problem.isHidden()


def test_the_sample_alone_is_not_scored_as_denoised(make_napari_viewer: Any) -> None:
    """Only a noisy and a clean layer open: no denoised guess, nothing to analyse."""
    viewer = make_napari_viewer()
    noisy, _, clean = trio()
    viewer.add_image(noisy, name="noisy (simulated)")
    viewer.add_image(clean, name="clean (simulated)")
    widget = InspectWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Inspect")
    assert widget.denoised.value is None and widget.clean.value.name == "clean (simulated)"
    assert not widget.analyse_button.enabled and "denoised" in widget.problem.text()
    widget.noisy.value = viewer.layers["noisy (simulated)"]
    widget.denoised.value = viewer.layers["noisy (simulated)"]  # the same layer twice: refused
    assert not widget.analyse_button.enabled
    assert "both denoised and noisy" in widget.problem.text()


def test_a_copy_of_the_noisy_image_is_refused_as_denoised(make_napari_viewer: Any) -> None:
    viewer, widget = make_widget(make_napari_viewer)
    viewer.add_image(viewer.layers["noisy"].data.copy(), name="copy")
    widget.denoised.value = viewer.layers["copy"]
    assert not widget.analyse_button.enabled
    assert "identical pixels" in widget.problem.text()


def test_denoise_output_names_its_noisy_input(make_napari_viewer: Any) -> None:
    """'<name> denoised' (the Denoise panel's layer) picks the denoised and its noisy input;
    two such layers are ambiguous and leave the choice to the user."""
    viewer = make_napari_viewer()
    noisy, denoised, clean = trio()
    for name, data in (("mic_01", noisy), ("mic_01 denoised", denoised), ("mic_02", noisy)):
        viewer.add_image(data, name=name)
    widget = InspectWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Inspect")
    assert (widget.noisy.value.name, widget.denoised.value.name) == ("mic_01", "mic_01 denoised")
    assert widget.clean.value is None  # no name says "clean": the user chooses
    viewer.add_image(denoised, name="mic_02 denoised")
    assert widget.denoised.value is None and widget.noisy.value is None


def test_a_scrambled_denoised_layer_is_flagged_loudly(make_napari_viewer: Any, qtbot: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    warned: list[str] = []
    monkeypatch.setattr("napari.utils.notifications.show_warning", warned.append)
    viewer, widget = make_widget(make_napari_viewer)
    analyse(qtbot, widget)
    assert warned == [] and "Check the weights" not in widget.summary.text()  # a fine denoiser
    viewer.layers["noisy (denoised)"].data = 1.0 - viewer.layers["clean"].data  # r = -1
    analyse(qtbot, widget)
    assert any(w.startswith("Check the weights: Pearson r = -1.000") for w in warned)
    assert "Check the weights" in widget.summary.text() and "color:#e03c31" in widget.summary.text()
    assert "Checklist:" in widget.summary.text()  # the usual summary is still there


def test_the_plot_is_never_a_blank_white_square(make_napari_viewer: Any, qtbot: Any) -> None:
    """Before Analyse: a text says what will appear; after: the whole image, pooled."""
    _, widget = make_widget(make_napari_viewer)
    assert "appear here after Analyse" in widget.canvas.text() and widget.canvas.figure is None
    with qtbot.waitSignal(widget.canvas.rendered, timeout=30_000):
        analyse(qtbot, widget)
    assert widget.canvas.figure._suptitle.get_text().startswith("whole image, 16 patches")
    assert not widget.canvas.pixmap().isNull()


def test_a_smoothed_layer_is_said_to_be_scored_as_smoothed(make_napari_viewer: Any,
                                                          qtbot: Any) -> None:
    """The Denoise panel flattens the background by default and records it on the layer;
    Inspect scores the layer as it is and says so, naming the smoothing."""
    viewer, widget = make_widget(make_napari_viewer)
    analyse(qtbot, widget)
    assert "smoothed after the model" not in widget.summary.text()  # no record: nothing said
    viewer.layers["noisy (denoised)"].metadata.update(
        smooth_sigma_px=16.0, smooth_where="background", smooth_keep_detail=0.0)
    analyse(qtbot, widget)
    text = widget.summary.text()
    assert "smoothed after the model (a Gaussian of σ 16 px on the background" in text, text
    assert "Denoise with Smoothing 0 to judge the model alone" in text
    assert "Checklist:" in text  # the usual summary is still there
    viewer.layers["noisy (denoised)"].metadata["smooth_sigma_px"] = 0.0  # Smoothing 0
    analyse(qtbot, widget)
    assert "smoothed after the model" not in widget.summary.text()
