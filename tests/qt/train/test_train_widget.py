"""The Train widget, driven as a user would: pick data, press Start/Stop/Resume, close it.

Run under Xvfb: ``xvfb-run -a python -m pytest tests/qt/test_train_widget.py -q``.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_cryoden._qt._models import MODELS  # noqa: E402
from napari_cryoden._qt.train.widget import TrainWidget  # noqa: E402

TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # default run folders land here
    MODELS.clear()


def pair(ny: int, nx: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth clean micrograph in [0.3, 0.8] and the same plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    clean = gaussian_filter(rng.random((ny, nx)), 2.0)
    clean = 0.3 + 0.5 * (clean - clean.min()) / np.ptp(clean)
    noisy = clean + rng.normal(0, 0.15, clean.shape)
    return noisy.astype(np.float32), clean.astype(np.float32)


def make_widget(make_napari_viewer: Any, tmp_path: Path, *, size: tuple[int, int] = (96, 96),
                **settings: Any) -> tuple[Any, TrainWidget]:
    """A viewer with a noisy and a clean layer and the docked widget, set up for a tiny run."""
    viewer = make_napari_viewer()
    noisy, clean = pair(*size)
    viewer.add_image(noisy, name="noisy", scale=(1.5, 1.5))
    viewer.add_image(clean, name="clean", scale=(1.5, 1.5))
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train")
    values = {"data.patch_size": 32, "train.batch_size": 4, "train.epochs": 2,
              "data.val_fraction": 0.34, **settings}
    for key, value in values.items():
        widget.form.widget(key).value = value
    widget.run_folder.value = tmp_path / "run"
    return viewer, widget


def run_to_end(qtbot: Any, widget: TrainWidget, launch: Any) -> list[Any]:
    """Press Start (or Resume) and collect the epochs until the worker finishes."""
    epochs: list[Any] = []
    widget.epoch_finished.connect(epochs.append)
    with qtbot.waitSignal(widget.finished, timeout=TIMEOUT_MS):
        assert launch()
    return epochs


def test_widget_offers_the_image_layers_and_laptop_defaults(make_napari_viewer, qtbot, tmp_path):
    viewer, widget = make_widget(make_napari_viewer, tmp_path)
    assert widget.data.source.value == "napari layers"  # layers first, folder pickers hidden
    assert widget.data.noisy_dir.native.isHidden() and not widget.data.noisy_layer.native.isHidden()
    assert widget.data.noisy_layer.value is viewer.layers["noisy"]
    assert widget.data.clean_layer.value is viewer.layers["clean"]
    viewer.add_image(np.zeros((8, 8), np.float32), name="third")
    assert viewer.layers["third"] in widget.data.noisy_layer.choices  # tracks viewer.layers
    fresh = TrainWidget(viewer)
    viewer.window.add_dock_widget(fresh, name="fresh")
    assert fresh.form.widget("data.patch_size").value == 128
    assert fresh.form.widget("train.epochs").value == 30
    assert fresh.form.widget("data.crop").value == 0
    assert "0 = whole patch" in fresh.form.widget("data.crop").label
    assert "validation" in fresh.form.widget("data.val_fraction").tooltip
    assert fresh.form.config().data.crop is None
    qtbot.waitUntil(lambda: "CPU" in fresh.device_label.text())  # asked off the UI thread


def test_training_from_layers_runs_to_the_end(make_napari_viewer, qtbot, tmp_path):
    _, widget = make_widget(make_napari_viewer, tmp_path)
    points: list[int] = []
    widget.epoch_finished.connect(lambda _: points.append(widget.loss_points()))
    epochs = run_to_end(qtbot, widget, widget.start)

    assert [e.epoch for e in epochs] == [1, 2]
    assert all(e.val_loss is not None for e in epochs)  # the bottom strip validates
    run = tmp_path / "run"
    with mrcfile.open(run / "data" / "noisy" / "layer.mrc") as mrc:
        assert mrc.data.shape == (96 - 33, 96)  # val fraction 0.34 of 96 rows held out
        assert float(mrc.voxel_size.x) == pytest.approx(1.5)
    assert (run / "data" / "val_clean" / "layer.mrc").exists()
    history = json.loads((run / "history.json").read_text())
    assert not history["stopped"] and len(history["epochs"]) == 2
    assert widget.loss_points() == len(history["steps"]) + 2 * 2  # steps + train/val per epoch
    assert 0 < points[0] < points[1] == widget.loss_points()  # the plot gained points
    [label] = MODELS.registered()
    assert MODELS.get(label) == run / "best.safetensors" and "training" not in label
    assert widget.start_button.isEnabled() and not widget.stop_button.isEnabled()
    assert not widget.worker.is_running


def test_training_from_folders(make_napari_viewer, qtbot, tmp_path, make_pairs):
    noisy_dir, clean_dir = make_pairs(n=3, size=64)
    _, widget = make_widget(make_napari_viewer, tmp_path, **{"train.epochs": 1})
    widget.data.source.value = "folders"
    assert widget.data.noisy_layer.native.isHidden()  # the folder pickers replace the layers
    assert not widget.data.noisy_dir.native.isHidden()
    widget.data.noisy_dir.value = noisy_dir
    widget.data.clean_dir.value = clean_dir
    epochs = run_to_end(qtbot, widget, widget.start)

    assert len(epochs) == 1 and epochs[0].val_loss is not None  # one of 3 files held out
    assert not (tmp_path / "run" / "data").exists()  # folders are read in place
    assert (tmp_path / "run" / "best.safetensors").exists()


def test_stop_mid_epoch_then_resume_continues(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    from qtpy.QtCore import QTimer

    from napari_cryoden._qt.train import worker
    from napari_cryoden.training.events import TrainStep

    _, widget = make_widget(make_napari_viewer, tmp_path, size=(768, 768), **{
        "data.patch_size": 128, "train.batch_size": 2, "data.val_fraction": 0.17})
    steps: list[Any] = []
    widget.step_finished.connect(steps.append)

    # A user's epoch lasts minutes; this one lasts a second, less than a loaded CI machine may
    # take to deliver a step to the GUI. So epoch 2 waits at its second step (on the worker
    # thread) until Stop was pressed, as a slow epoch would: the stop lands mid-epoch always.
    add = worker.EventBatches.add

    def slow_epoch_2(self: Any, event: Any) -> Any:
        if isinstance(event, TrainStep) and (event.epoch, event.step) == (2, 2):
            assert self.job.stop.wait(TIMEOUT_MS / 1000)
        return add(self, event)

    monkeypatch.setattr(worker.EventBatches, "add", slow_epoch_2)  # the first run only

    def stop_once_drawn() -> None:  # once a live frame of the curves was drawn
        if widget.plot.frames >= 1:
            widget.stop()
        else:
            QTimer.singleShot(20, stop_once_drawn)

    def stop_in_epoch_2(step: Any) -> None:
        if step.epoch == 2 and step.step == 1:
            stop_once_drawn()

    widget.step_finished.connect(stop_in_epoch_2)
    epochs = run_to_end(qtbot, widget, widget.start)
    widget.step_finished.disconnect(stop_in_epoch_2)
    monkeypatch.setattr(worker.EventBatches, "add", add)

    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["stopped"] and [e.epoch for e in epochs] == [1]
    assert widget.plot.frames >= 1  # live frames were drawn while training
    per_epoch = steps[0].steps_per_epoch
    in_epoch_2 = [s for s in steps if s.epoch == 2]
    assert 1 <= len(in_epoch_2) < per_epoch  # stopped mid-epoch
    assert len(history["steps"]) == len(steps)  # the GUI saw every step the core made
    assert "Stopped" in widget.status.text() and widget.resume_button.isEnabled()
    points_before = widget.loss_points()

    steps.clear()
    epochs = run_to_end(qtbot, widget, widget.resume)
    assert [e.epoch for e in epochs] == [2]  # saved epoch 1, + 1
    assert steps[0].epoch == 2 and steps[0].global_step == per_epoch + 1  # the plot continues
    assert widget.loss_points() == 2 * per_epoch + 2 * 2 > points_before
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert not history["stopped"] and [e["epoch"] for e in history["epochs"]] == [1, 2]


def test_best_checkpoint_is_registered_for_other_widgets(make_napari_viewer, qtbot, tmp_path):
    from napari_cryoden._qt.denoise.widget import DenoiseWidget

    viewer, widget = make_widget(make_napari_viewer, tmp_path, **{"train.epochs": 1})
    denoise = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(denoise, name="Denoise")
    combo = denoise.model.native
    widget.run_folder.line_edit.value = ""  # the default: a new timestamped run folder
    seen: list[tuple[str, Path]] = []
    picked: list[str] = []

    def watch(label: str, path: Path) -> None:
        seen.append((label, path))
        picked.append(combo.currentText())

    MODELS.changed.connect(watch)
    try:
        run_to_end(qtbot, widget, widget.start)
    finally:
        MODELS.changed.disconnect(watch)
    run_dir = widget.run_dir
    best = run_dir / "best.safetensors"
    assert run_dir.parent == tmp_path / "home" / ".napari-cryoden" / "runs"
    assert seen == [(f"{run_dir.name} · best (seed, training)", best),  # while it trains
                    (f"{run_dir.name} · best (seed, epoch 1)", best)]  # once the run ended
    assert best.exists()
    # Denoise lists the run's model but keeps what the user chose, and its entry is renamed
    assert picked == ["general (shipped)"] * 2 and combo.currentText() == "general (shipped)"
    texts = [combo.itemText(i) for i in range(combo.count())]
    assert f"{run_dir.name} · best (seed, epoch 1)" in texts
    assert not any("training" in text for text in texts)


def test_start_and_resume_refuse_what_would_lose_or_redo_work(make_napari_viewer, tmp_path):
    from napari.utils.notifications import notification_manager

    _, widget = make_widget(make_napari_viewer, tmp_path)
    messages: list[str] = []
    notification_manager.notification_ready.connect(lambda n: messages.append(n.message))
    assert widget.resume() is False and "nothing to resume" in messages[-1]
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.safetensors").write_bytes(b"")
    (run / "history.json").write_text(json.dumps({"epochs": [{"epoch": 1}, {"epoch": 2}]}))
    assert widget.start() is False and "already holds a training run" in messages[-1]
    assert widget.resume() is False and "already trained 2 epoch(s)" in messages[-1]
    assert widget.worker is None


def test_layers_of_different_shapes_are_refused(make_napari_viewer, qtbot, tmp_path):
    from napari.utils.notifications import notification_manager

    viewer, widget = make_widget(make_napari_viewer, tmp_path)
    viewer.add_image(np.zeros((80, 96), np.float32), name="small clean")
    widget.data.clean_layer.value = viewer.layers["small clean"]
    messages: list[str] = []
    notification_manager.notification_ready.connect(lambda n: messages.append(n.message))

    problem = widget.data.problem.native  # the reason, in red under the data rows
    assert not problem.isHidden() and "'small clean'" in problem.text()
    assert "shape" in problem.text()
    assert not widget.start_button.isEnabled() and not widget.resume_button.isEnabled()
    assert widget.start() is False
    assert widget.worker is None and not widget.is_running
    assert any("'noisy'" in m and "'small clean'" in m and "shape" in m for m in messages)
    widget.data.clean_layer.value = viewer.layers["clean"]  # a fitting choice: Start again
    assert widget.start_button.isEnabled() and problem.isHidden()


def test_errors_in_the_worker_become_notifications(make_napari_viewer, qtbot, tmp_path):
    from napari.utils.notifications import notification_manager

    _, widget = make_widget(make_napari_viewer, tmp_path, **{"data.patch_size": 128})
    widget.form.widget("data.val_fraction").value = 0.0
    messages: list[str] = []
    notification_manager.notification_ready.connect(lambda n: messages.append(n.message))
    with qtbot.waitSignal(widget.finished, timeout=TIMEOUT_MS):
        assert widget.start()  # the 96-px layers only fail in the worker: smaller than a patch
    assert any(m.startswith("Training failed:") and "patch size" in m for m in messages)
    assert len(messages[-1].splitlines()) == 1
    assert widget.start_button.isEnabled() and not widget.stop_button.isEnabled()


@pytest.mark.parametrize("how", ["close widget", "remove dock", "close viewer window"])
def test_closing_mid_training_leaves_no_thread(make_napari_viewer, qtbot, tmp_path, how):
    from qtpy.QtGui import QCloseEvent

    baseline = set(threading.enumerate())
    viewer, widget = make_widget(make_napari_viewer, tmp_path, size=(768, 768), **{
        "data.patch_size": 128, "train.batch_size": 2, "train.epochs": 50})
    with qtbot.waitSignal(widget.step_finished, timeout=TIMEOUT_MS):
        widget.start()
    worker = widget.worker
    start = time.perf_counter()
    if how == "close widget":
        widget.close()
    elif how == "remove dock":  # what napari's "x" on the dock does
        viewer.window.remove_dock_widget(widget)
    else:  # the filter on the main window; the fixture closes the real window afterwards
        widget.eventFilter(viewer.window._qt_window, QCloseEvent())
    assert time.perf_counter() - start < 5.0  # blocked until the training thread ended
    assert not worker.is_running and not widget.is_running
    assert [t for t in set(threading.enumerate()) - baseline if t.is_alive()
            and not isinstance(t, threading._DummyThread)] == []  # reader threads joined too
    assert json.loads((tmp_path / "run" / "history.json").read_text())["stopped"]
    if how == "remove dock":
        widget.deleteLater()


def test_gui_stays_responsive_while_training(make_napari_viewer, qtbot, tmp_path):
    from qtpy.QtCore import QTimer

    # the seed net on 32-px patches: many tiny steps per second, the most events to handle
    _, widget = make_widget(make_napari_viewer, tmp_path, size=(512, 512), **{
        "train.epochs": 1000, "data.val_fraction": 0.25})
    ticks: list[float] = []
    timer = QTimer(interval=10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    with qtbot.waitSignal(widget.step_finished, timeout=TIMEOUT_MS):
        widget.start()
    timer.start()
    QTimer.singleShot(2500, widget.stop)
    with qtbot.waitSignal(widget.finished, timeout=TIMEOUT_MS):
        pass
    timer.stop()
    gaps = np.diff(ticks)
    print(f"\nmain thread while training {ticks[-1] - ticks[0]:.1f} s: max stall "
          f"{1000 * gaps.max():.0f} ms, median tick {1000 * np.median(gaps):.1f} ms; "
          f"{widget.loss_points()} plot points")
    assert ticks[-1] - ticks[0] >= 2.0
    assert widget.loss_points() > 10
    assert gaps.max() < 0.25


def test_training_warnings_are_shown_as_notifications(make_napari_viewer: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from napari_cryoden.training.events import TrainWarning

    shown: list[str] = []
    monkeypatch.setattr("napari.utils.notifications.show_warning", shown.append)
    _, widget = make_widget(make_napari_viewer, tmp_path)
    widget._on_events([TrainWarning(epoch=4, message="validation loss rose 3 epochs in a row")])
    assert shown == ["Training, epoch 4: validation loss rose 3 epochs in a row"]
    assert "rose 3 epochs" in widget.status.text()


def test_preset_and_schedule_are_combo_boxes_and_a_unet_trains(make_napari_viewer, qtbot,
                                                               tmp_path):
    from magicgui.widgets import ComboBox

    from napari_cryoden.config.presets import PRESETS
    from napari_cryoden.models.checkpoint import load_checkpoint

    _, widget = make_widget(make_napari_viewer, tmp_path, **{"train.epochs": 1})
    preset, schedule = widget.form.widget("model.preset"), widget.form.widget("train.schedule")
    assert isinstance(preset, ComboBox) and list(preset.choices) == list(PRESETS)
    assert isinstance(schedule, ComboBox) and "cosine" in schedule.choices
    assert "preset's" in widget.form.widget("model.depth").label
    preset.value, schedule.value = "unet-small", "cosine"
    widget.form.widget("model.channels").value = 8
    epochs = run_to_end(qtbot, widget, widget.start)

    assert len(epochs) == 1 and epochs[0].val_loss is not None
    _, ckpt = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert (ckpt.config.model.preset, ckpt.config.model.channels) == ("unet-small", 8)
    assert ckpt.config.train.schedule == "cosine"
