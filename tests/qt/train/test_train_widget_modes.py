"""The Train widget without clean targets: Noise2Noise on even/odd halves, Noise2Void alone.

Run under Xvfb: ``xvfb-run -a python -m pytest tests/qt/test_train_widget_modes.py -q``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from qtpy.QtCore import Qt  # noqa: E402

from napari_cryoden._qt._models import MODELS  # noqa: E402
from napari_cryoden._qt.train.widget import TrainWidget  # noqa: E402
from napari_cryoden.io.images import write_mrc  # noqa: E402
from napari_cryoden.models.checkpoint import load_checkpoint  # noqa: E402

TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    MODELS.clear()


def halves(ny: int = 96, nx: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth specimen seen twice with independent noise (an even and an odd frame sum)."""
    rng = np.random.default_rng(seed)
    clean = gaussian_filter(rng.random((ny, nx)), 2.0)
    clean = 0.3 + 0.5 * (clean - clean.min()) / np.ptp(clean)
    even, odd = (clean + rng.normal(0, 0.15, clean.shape) for _ in range(2))
    return even.astype(np.float32), odd.astype(np.float32)


def make_widget(make_napari_viewer: Any, tmp_path: Path, mode: str,
                layers: dict[str, np.ndarray]) -> TrainWidget:
    viewer = make_napari_viewer()
    for name, data in layers.items():
        viewer.add_image(data, name=name, scale=(1.5, 1.5))
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train")
    widget.form.widget("train.mode").value = mode  # as a user picks it in the combo box
    for key, value in {"data.patch_size": 32, "train.batch_size": 4, "train.epochs": 2,
                       "data.val_fraction": 0.34}.items():
        widget.form.widget(key).value = value
    widget.run_folder.value = tmp_path / "run"
    return widget


def click_start(qtbot: Any, widget: TrainWidget) -> list[Any]:
    epochs: list[Any] = []
    widget.epoch_finished.connect(epochs.append)
    with qtbot.waitSignal(widget.finished, timeout=TIMEOUT_MS):
        qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    return epochs


def check_run(widget: TrainWidget, run: Path, epochs: list[Any], mode: str) -> dict:
    assert [e.epoch for e in epochs] == [1, 2]
    assert all(e.val_loss is not None for e in epochs)  # the held-out strip validates
    history = json.loads((run / "history.json").read_text())
    assert not history["stopped"] and history["config"]["train"]["mode"] == mode
    assert widget.loss_points() == len(history["steps"]) + 2 * 2
    _, ckpt = load_checkpoint(run / "best.safetensors")
    assert ckpt.config.train.mode == mode
    [label] = MODELS.registered()  # "training" dropped from its label once the run ended
    assert MODELS.get(label) == run / "best.safetensors"
    assert label == f"run · best (seed, epoch {ckpt.epoch})"
    assert widget.start_button.isEnabled() and "Finished" in widget.status.text()
    return history


def test_mode_combo_relabels_the_data_choices(make_napari_viewer, tmp_path: Path) -> None:
    even, odd = halves()
    widget = make_widget(make_napari_viewer, tmp_path, "n2c",
                         {"noisy": even, "clean": odd, "a_even": even, "a_odd": odd})
    data, viewer = widget.data, widget.viewer
    assert widget.settings[0] is widget.form.widget("train.mode")  # first: it frames the rest
    assert widget.form.widget("train.mode").choices == ("n2c", "n2n", "n2v")
    assert (data.noisy_layer.label, data.clean_layer.label) == ("noisy layer", "clean layer")
    widget.form.widget("train.mode").value = "n2n"
    assert (data.noisy_layer.label, data.clean_layer.label) == ("even layer", "odd layer")
    assert data.noisy_layer.value is viewer.layers["a_even"]  # picked by name
    assert data.clean_layer.value is viewer.layers["a_odd"]
    widget.form.widget("train.mode").value = "n2v"
    assert data.noisy_layer.label == "noisy layer" and data.clean_layer.native.isHidden()
    data.source.value = "folders"
    assert data.clean_dir.native.isHidden() and not data.noisy_dir.native.isHidden()
    widget.form.widget("train.mode").value = "n2n"
    assert not data.clean_dir.native.isHidden() and data.noisy_dir.label == "even folder"


def test_click_trains_noise2noise_on_even_odd_layers(make_napari_viewer, qtbot,
                                                     tmp_path: Path) -> None:
    even, odd = halves()
    widget = make_widget(make_napari_viewer, tmp_path, "n2n", {"even": even, "odd": odd})
    epochs = click_start(qtbot, widget)

    run = tmp_path / "run"
    check_run(widget, run, epochs, "n2n")
    names = sorted(p.name for p in (run / "data").iterdir())
    assert names == ["even", "odd", "val_even", "val_odd"]
    with mrcfile.open(run / "data" / "odd" / "layer.mrc") as mrc:
        np.testing.assert_array_equal(mrc.data, odd[:63])  # 0.34 of 96 rows held out


def test_click_trains_noise2void_on_one_noisy_layer(make_napari_viewer, qtbot,
                                                    tmp_path: Path) -> None:
    noisy, _ = halves(seed=1)
    widget = make_widget(make_napari_viewer, tmp_path, "n2v", {"noisy": noisy})
    assert widget.data.clean_layer.native.isHidden()
    epochs = click_start(qtbot, widget)

    run = tmp_path / "run"
    check_run(widget, run, epochs, "n2v")
    assert sorted(p.name for p in (run / "data").iterdir()) == ["noisy", "val_noisy"]


@pytest.mark.parametrize("mode", ["n2n", "n2v"])
def test_click_trains_from_folders(make_napari_viewer, qtbot, tmp_path: Path,
                                   mode: str) -> None:
    for name in ("even", "odd"):
        (tmp_path / name).mkdir()
    for i in range(3):
        even, odd = halves(64, 64, seed=i)
        write_mrc(tmp_path / "even" / f"m{i}_EVN.mrc", even, 1.0)
        write_mrc(tmp_path / "odd" / f"m{i}_ODD.mrc", odd, 1.0)
    widget = make_widget(make_napari_viewer, tmp_path, mode, {})
    widget.data.source.value = "folders"
    widget.data.noisy_dir.value = tmp_path / "even"
    if mode == "n2n":
        widget.data.clean_dir.value = tmp_path / "odd"
    epochs = click_start(qtbot, widget)

    check_run(widget, tmp_path / "run", epochs, mode)
    assert not (tmp_path / "run" / "data").exists()  # folders are read in place


def test_noise2noise_needs_both_halves(make_napari_viewer, qtbot, tmp_path: Path) -> None:
    widget = make_widget(make_napari_viewer, tmp_path, "n2n", {})
    widget.data.source.value = "folders"
    widget.data.noisy_dir.value = tmp_path
    assert not widget.start()
    assert widget.worker is None
