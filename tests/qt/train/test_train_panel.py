"""The Train panel as a user first meets it: field words, fits a small screen, opens at once.

Run under Xvfb: ``xvfb-run -a python -m pytest tests/qt/train/test_train_panel.py -q``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from qtpy.QtWidgets import QComboBox, QLabel, QWidget  # noqa: E402

from napari_cryoden._qt._models import MODELS  # noqa: E402
from napari_cryoden._qt.train.widget import TrainWidget  # noqa: E402

DEVELOPER_WORDS = re.compile(r"\b(n2c|n2n|n2v|lr|amp|fused|meanstd|percentile)\b")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    MODELS.clear()


def open_train(make_napari_viewer: Any, size: tuple[int, int] = (1366, 768)) -> TrainWidget:
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(*size)
    viewer.add_image(np.zeros((64, 64), np.float32), name="noisy")
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train")
    return widget


def shown_words(widget: QWidget) -> list[str]:
    """Every label and combo-box entry the panel shows (advanced settings included)."""
    words = [label.text() for label in widget.findChildren(QLabel)]
    for combo in widget.findChildren(QComboBox):
        words += [combo.itemText(i) for i in range(combo.count())]
    return words


def test_settings_speak_the_fields_words(make_napari_viewer) -> None:
    widget = open_train(make_napari_viewer)
    mode = widget.form.widget("train.mode")
    assert [mode.native.itemText(i) for i in range(3)] == [
        "noisy → clean pairs", "even/odd frame sums (Noise2Noise)",
        "single noisy micrographs (Noise2Void)"]
    mode.native.setCurrentIndex(1)  # the user picks the words; the config keeps its key
    assert widget.form.config().train.mode == "n2n"
    assert widget.data.noisy_layer.label == "even layer"
    labels = {key: widget.form.widget(key).label for key in (
        "train.lr", "train.amp", "train.fused", "data.normalization")}
    assert labels == {"train.lr": "learning rate", "train.amp": "mixed precision (GPU)",
                      "train.fused": "fused GPU kernels", "data.normalization": "normalisation"}
    assert widget.form.widget("data.normalization").native.currentText() == "mean/std"
    assert [w for w in shown_words(widget) if DEVELOPER_WORDS.search(w)] == []
    for key in ("train.lr", "train.amp", "train.fused", "train.mode"):
        assert len(widget.form.widget(key).tooltip or "") > 20  # each still says what it does


def test_panel_fits_a_1366x768_screen_and_scrolls_to_start(make_napari_viewer, qtbot) -> None:
    widget = open_train(make_napari_viewer)
    window = widget.viewer.window._qt_window
    qtbot.waitUntil(lambda: widget.isVisible())
    qtbot.wait(50)  # one pass of the event loop for the layout
    assert window.height() <= 768, f"the Train dock made the window {window.height()} px tall"
    assert widget.height() <= window.height()
    assert not widget.advanced_section.isExpanded()  # the advanced settings start collapsed
    assert widget.form.widget("train.schedule").native.visibleRegion().isEmpty()
    for row in widget.settings:  # no row squeezed below its minimum (the "data from" row)
        if row.native.isVisible():
            assert row.native.height() >= row.native.minimumSizeHint().height(), row.label
    area = widget.scroll_area
    area.ensureWidgetVisible(widget.start_button)  # scroll down, as a user would
    assert not widget.start_button.visibleRegion().isEmpty()
    assert widget.start_button.isEnabled() is False  # no data choice yet: n2c needs two layers


def test_the_closed_advanced_section_built_early_does_not_widen_the_panel(make_napari_viewer,
                                                                         qtbot) -> None:
    widget = open_train(make_napari_viewer, (1920, 1080))
    qtbot.waitUntil(lambda: widget.rows.done and widget.advanced_section.built)
    inner = widget.scroll_area.widget()  # the column of rows the dock must fit
    closed = inner.minimumSizeHint().width()
    assert closed == widget.rows.settings.native.minimumSizeHint().width() \
        + sum(inner.layout().getContentsMargins()[::2])  # the basic rows set the width
    widget.advanced_section.expand(animate=False)
    qtbot.wait(50)
    assert inner.minimumSizeHint().width() > closed  # its wider rows count once it is open
    assert widget.form.widget("train.schedule").native.isVisible()
    qtbot.waitUntil(lambda: "CPU" in widget.device_label.text())  # its worker has finished


@pytest.mark.parametrize(("mode", "words"), [("n2c", "MSE vs. clean"), ("n2v", "masked-pixel")])
def test_loss_legend_sits_off_the_curves_and_the_axis_names_the_loss(mode, words) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from napari_cryoden._qt.train.loss_plot import LOSS_LABELS, _loss_figure, _show_curves

    figure = _loss_figure(LOSS_LABELS[mode])
    FigureCanvasAgg(figure)
    x = np.linspace(0, 3, 60)
    curves = ((x, 1 / (1 + x)), (x, 1 / (1 + x)), (np.arange(1.0, 4.0), np.full(3, 0.4)),
              (np.arange(1.0, 4.0), np.full(3, 0.45)))
    _show_curves(figure, curves, (420, 300))
    figure.canvas.draw()
    ax = figure.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert legend.y0 >= ax.get_window_extent().y1 - 1  # above the axes: it covers no curve
    assert words in ax.get_ylabel() and ax.get_ylabel() != "MSE loss"


def train_by_clicks(make_napari_viewer: Any, qtbot: Any, tmp_path: Path,
                    change_advanced: dict[str, Any] | None = None) -> tuple[TrainWidget, Any]:
    """Open Train on a noisy/clean pair, set a one-epoch run, optionally open "Advanced" and
    change some of its rows, press Start; the run's saved config."""
    from qtpy.QtCore import Qt

    from napari_cryoden.models.checkpoint import load_checkpoint

    viewer = make_napari_viewer(show=True)
    rng = np.random.default_rng(0)
    clean = rng.random((96, 96)).astype(np.float32)
    viewer.add_image(clean + rng.normal(0, 0.2, clean.shape).astype(np.float32), name="noisy")
    viewer.add_image(clean, name="clean")
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train")
    qtbot.waitUntil(lambda: widget.rows.done)  # the panel has finished opening
    for key, value in {"data.patch_size": 32, "train.batch_size": 4, "train.epochs": 1,
                       "data.val_fraction": 0.34}.items():
        widget.form.widget(key).value = value
    widget.run_folder.value = tmp_path / "run"
    if change_advanced:
        qtbot.mouseClick(widget.advanced_section.toggleButton(), Qt.MouseButton.LeftButton)
        for key, value in change_advanced.items():
            row = widget.form.widget(key)
            qtbot.waitUntil(row.native.isVisible)  # a row of the opened section
            row.value = value
    with qtbot.waitSignal(widget.finished, timeout=60_000):
        qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    return widget, load_checkpoint(tmp_path / "run" / "best.safetensors")[1].config


def test_start_without_opening_advanced_trains_with_its_defaults(make_napari_viewer, qtbot,
                                                                 tmp_path) -> None:
    from napari_cryoden._qt.train.form import BASIC_FIELDS, ConfigForm
    from napari_cryoden.config.sections import FIELDS, Config

    widget, config = train_by_clicks(make_napari_viewer, qtbot, tmp_path)
    # the Advanced rows were built in the panel's idle turns but never opened or touched
    assert "learning-rate schedule" in shown_words(widget)
    assert not widget.advanced_section.isExpanded()
    shown = ConfigForm()
    shown.advanced()  # what the section shows once opened
    expected = shown.config()
    advanced = [spec for spec in FIELDS if spec.key not in BASIC_FIELDS]
    assert len(advanced) > 10
    for spec in advanced:
        saved = getattr(getattr(config, spec.section), spec.name)
        assert saved == getattr(getattr(expected, spec.section), spec.name), spec.key
    defaults = Config()  # the dataclasses' defaults, which the GUI keeps for these rows
    assert (config.model, config.train.schedule) == (defaults.model, defaults.train.schedule)


def test_a_value_changed_in_advanced_reaches_the_run(make_napari_viewer, qtbot,
                                                     tmp_path) -> None:
    widget, config = train_by_clicks(make_napari_viewer, qtbot, tmp_path, {
        "model.channels": 8, "train.schedule": "cosine", "train.seed": 7})
    assert "learning-rate schedule" in shown_words(widget)
    assert (config.model.channels, config.train.schedule, config.train.seed) == (8, "cosine", 7)


def test_a_run_started_from_a_shipped_model_with_coloured_noise(make_napari_viewer, qtbot,
                                                                tmp_path) -> None:
    from napari_cryoden.models.checkpoint import load_checkpoint

    widget, config = train_by_clicks(make_napari_viewer, qtbot, tmp_path, {
        "train.init": "general-fast", "train.noise_colour": "0:1.5"})
    assert "start from model (file or name)" in shown_words(widget)
    assert (config.train.init, config.train.noise_colour) == ("general-fast", "0:1.5")
    _, ckpt = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert ckpt.metadata["init"]["model"] == "general-fast"
