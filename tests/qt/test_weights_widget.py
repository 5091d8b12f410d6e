"""The Weights widget: every kernel on one colour scale, live refresh, PNG export.

Run under Xvfb: ``xvfb-run -a python -m pytest tests/qt/test_weights_widget.py -q``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from matplotlib.image import imread  # noqa: E402

from napari_cryoden._qt._models import MODELS, SHIPPED_LABELS  # noqa: E402
from napari_cryoden._qt.weights_widget import WeightsWidget  # noqa: E402
from napari_cryoden.config.sections import Config  # noqa: E402
from napari_cryoden.models.checkpoint import save_checkpoint  # noqa: E402
from napari_cryoden.models.nets import build_model  # noqa: E402
from napari_cryoden.plotting.weights import kernel_mosaic  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated() -> None:
    MODELS.clear()


def save(path: Path, seed: int, epoch: int = 1) -> Any:
    model = build_model(seed=seed)
    save_checkpoint(path, model, Config(), epoch=epoch, val_loss=0.01 / epoch)
    return model


def make_widget(make_napari_viewer: Any) -> WeightsWidget:
    viewer = make_napari_viewer()
    widget = WeightsWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Weights")
    return widget


def shown_images(widget: WeightsWidget) -> list[Any]:
    return [im for ax in widget.canvas.figure.axes for im in ax.get_images()]


def test_a_registered_model_is_shown_with_one_symmetric_scale(make_napari_viewer: Any,
                                                              qtbot: Any, tmp_path: Path) -> None:
    widget = make_widget(make_napari_viewer)
    assert widget.canvas.figure is None and "No model" in widget.info.value
    model = save(tmp_path / "best.safetensors", seed=0)
    with qtbot.waitSignal(widget.canvas.rendered, timeout=30_000):
        MODELS.register("training", tmp_path / "best.safetensors")  # as the Train widget does
    assert widget.model_choice.value == "training"
    images = shown_images(widget)
    assert sum(int(np.isfinite(im.get_array()).sum()) // 9 for im in images) == 16 + 256 + 16
    vmax = max(float(getattr(model, f"conv{k}").weight.detach().abs().max()) for k in (1, 2, 3))
    assert {im.get_clim() for im in images} == {(-vmax, vmax)}
    assert [len(ax.patches) for ax in widget.canvas.figure.axes if ax.patches] == [16, 16, 1]
    assert "epoch 1" in widget.info.value and "2,625 parameters" in widget.info.value


def test_rewritten_best_file_refreshes_the_kernels_live(make_napari_viewer: Any, qtbot: Any,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "best.safetensors"
    save(path, seed=0)
    MODELS.register("training", path)
    widget = make_widget(make_napari_viewer)  # picks the model already known
    assert widget.model_choice.value == "training"
    qtbot.waitUntil(lambda: widget.canvas.figure is not None, timeout=30_000)
    before = np.array(shown_images(widget)[1].get_array())
    newer = save(path, seed=1, epoch=2)  # a new best epoch re-writes the file ...
    with qtbot.waitSignal(widget.canvas.rendered, timeout=30_000):
        MODELS.register("training", path)  # ... and re-registers it
    after = np.array(shown_images(widget)[1].get_array())
    expected = kernel_mosaic(newer.conv2.weight.detach().numpy())
    assert np.allclose(after, expected, equal_nan=True)
    assert not np.allclose(before, after, equal_nan=True)
    assert "epoch 2" in widget.info.value


def test_another_model_registered_does_not_replace_the_chosen_one(make_napari_viewer: Any,
                                                                   qtbot: Any,
                                                                   tmp_path: Path) -> None:
    save(tmp_path / "a.safetensors", seed=0)
    save(tmp_path / "b.safetensors", seed=1)
    widget = make_widget(make_napari_viewer)
    with qtbot.waitSignal(widget.canvas.rendered, timeout=30_000):
        MODELS.register("a", tmp_path / "a.safetensors")
    with qtbot.assertNotEmitted(widget.canvas.rendered, wait=300):  # "b" is not drawn
        MODELS.register("b", tmp_path / "b.safetensors")
    assert widget.model_choice.value == "a" and widget.path == tmp_path / "a.safetensors"
    assert set(widget.model_choice.choices) == {None, "a", "b", *SHIPPED_LABELS}


def test_file_picker_loads_and_registers_the_file(make_napari_viewer: Any, qtbot: Any,
                                                  tmp_path: Path) -> None:
    (tmp_path / "run1").mkdir()
    path = tmp_path / "run1" / "best.safetensors"
    save(path, seed=3)
    widget = make_widget(make_napari_viewer)
    with qtbot.waitSignal(widget.canvas.rendered, timeout=30_000):
        widget.file_edit.value = path
    assert MODELS.get("run1 · best (seed, epoch 1)") == path
    assert widget.model_choice.value == "run1 · best (seed, epoch 1)" and widget.path == path
    assert len(shown_images(widget)) == 3


def test_a_bad_file_is_reported_not_raised(make_napari_viewer: Any, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    errors: list[str] = []
    monkeypatch.setattr("napari.utils.notifications.show_error", errors.append)
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x80\x04 not safetensors")
    widget = make_widget(make_napari_viewer)
    widget.file_edit.value = bad
    assert errors and str(bad) in errors[0] and widget.state is None
    assert MODELS.registered() == []  # refused from its header: not listed


def test_export_writes_a_png(make_napari_viewer: Any, qtbot: Any, tmp_path: Path) -> None:
    save(tmp_path / "best.safetensors", seed=0)
    widget = make_widget(make_napari_viewer)
    assert widget.export_png(tmp_path / "none.png") is None  # nothing to export yet
    with qtbot.waitSignal(widget.canvas.rendered, timeout=30_000):
        MODELS.register("training", tmp_path / "best.safetensors")
    out = widget.export_png(tmp_path / "weights.png")
    assert out == tmp_path / "weights.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(out)
    assert image.shape[0] > 500 and image.shape[1] > 500 and image.std() > 0.05


def test_export_for_the_model_zoo_writes_a_package_off_the_ui_thread(
        make_napari_viewer: Any, qtbot: Any, tmp_path: Path, ui_gaps: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    save(tmp_path / "best.safetensors", seed=0)
    widget = make_widget(make_napari_viewer)
    with qtbot.waitSignal(widget.canvas.rendered, timeout=30_000):
        MODELS.register("training", tmp_path / "best.safetensors")
    with ui_gaps() as gaps, qtbot.waitSignal(widget.bmz_written, timeout=60_000) as blocker:
        widget.export_bmz(tmp_path / "best.bmz.zip")
        assert not widget.bmz_button.enabled  # one export at a time
    assert gaps.longest < 0.1, gaps
    assert blocker.args == [tmp_path / "best.bmz.zip"] and widget.bmz_button.enabled
    with zipfile.ZipFile(tmp_path / "best.bmz.zip") as archive:
        assert {"rdf.yaml", "weights.torchscript.pt", "README.md"} <= set(archive.namelist())
    errors: list[str] = []
    monkeypatch.setattr("napari.utils.notifications.show_error", errors.append)
    with qtbot.waitSignal(widget.bmz_written, timeout=60_000) as blocker:
        widget.export_bmz(tmp_path / "best.tar")
    reason = f"{tmp_path / 'best.tar'}: a BioImage Model Zoo package is a .zip file"
    assert blocker.args == [reason] and errors == [f"BioImage Model Zoo export failed: {reason}"]


@pytest.mark.parametrize(("preset", "first", "last"), [("deep", "conv1", "conv6"),
                                                       ("unet-small", "conv1", "conv11")])
def test_larger_presets_show_their_first_and_last_layers(make_napari_viewer: Any, qtbot: Any,
                                                         tmp_path: Path, preset: str, first: str,
                                                         last: str) -> None:
    config = Config.from_dict({"model": {"preset": preset}})
    path = tmp_path / f"{preset}.safetensors"
    save_checkpoint(path, build_model(config.model, seed=0), config, epoch=3)
    widget = make_widget(make_napari_viewer)
    with qtbot.waitSignal(widget.canvas.rendered, timeout=30_000):
        widget.load(path)
    figure = widget.canvas.figure
    titles = [ax.get_title() for ax in figure.axes if ax.get_images()]
    assert [t.split()[0] for t in titles] == [first, last]
    assert f"showing the first and last, {first} and {last}" in figure._suptitle.get_text()
    assert f"({preset})" in figure._suptitle.get_text()
    assert f"preset {preset}" in widget.info.value


def test_the_shipped_models_show_their_weights(make_napari_viewer: Any, qtbot: Any) -> None:
    widget = make_widget(make_napari_viewer)
    assert widget.model_choice.value is None  # nothing drawn until asked
    with qtbot.waitSignal(widget.canvas.rendered, timeout=30_000):
        widget.model_choice.value = "general (shipped)"
    assert widget.path is not None and widget.path.name == "general.safetensors"
