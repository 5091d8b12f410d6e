"""The Train widget's "processes" setting: a ``cryoden train --nproc N`` subprocess followed live.

On this machine (no GPU) the ranks are CPU processes (gloo). Run under Xvfb:
``xvfb-run -a python -m pytest tests/qt/test_train_widget_processes.py -q``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
psutil = pytest.importorskip("psutil")

from test_train_widget import TIMEOUT_MS, make_widget, run_to_end  # noqa: E402

from napari_cryoden._qt._models import MODELS  # noqa: E402
from napari_cryoden._qt.train.data_form import FolderPair, LayerPair  # noqa: E402
from napari_cryoden._qt.train.process import EVENTS_FILE, train_command  # noqa: E402
from napari_cryoden.cli.main import build_parser  # noqa: E402
from napari_cryoden.config.flags import config_from_args  # noqa: E402
from napari_cryoden.config.sections import Config  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    MODELS.clear()


def test_the_command_line_carries_the_whole_config(tmp_path: Path) -> None:
    config = Config().replace(model={"preset": "unet-small", "channels": 8},
                              data={"patch_size": 48, "crop": 32, "val_fraction": 0.2},
                              train={"lr": 2e-3, "fused": False, "schedule": "cosine",
                                     "mode": "n2n", "epochs": 7})
    argv = train_command(config, FolderPair(tmp_path / "even", tmp_path / "odd"), ([], []),
                         tmp_path / "run", True, 3)
    assert argv[1:4] == ["-m", "napari_cryoden.cli", "train"]
    args = build_parser().parse_args(argv[3:])
    assert config_from_args(args) == config
    assert (args.even, args.odd, args.nproc, args.resume) == (
        tmp_path / "even", tmp_path / "odd", 3, True)
    assert args.events == str(tmp_path / "run" / EVENTS_FILE)


def test_layers_with_a_validation_strip_pass_it_as_val_folders(tmp_path: Path) -> None:
    data = tmp_path / "run" / "data"
    pairs = ([(data / "noisy" / "layer.mrc", data / "clean" / "layer.mrc")],
             [(data / "val_noisy" / "layer.mrc", data / "val_clean" / "layer.mrc")])
    source = LayerPair("noisy", "clean", None, None, 1.0)
    args = build_parser().parse_args(
        train_command(Config(), source, pairs, tmp_path / "run", False, 2)[3:])
    assert (args.noisy, args.clean) == (data / "noisy", data / "clean")
    assert (args.val_noisy, args.val_clean) == (data / "val_noisy", data / "val_clean")


def test_two_processes_train_from_layers_like_one(make_napari_viewer, qtbot, tmp_path):
    _, widget = make_widget(make_napari_viewer, tmp_path)
    widget.processes.value = 2
    qtbot.waitUntil(lambda: "2 processes" in widget.device_label.text())
    points: list[int] = []
    widget.epoch_finished.connect(lambda _: points.append(widget.loss_points()))
    epochs = run_to_end(qtbot, widget, widget.start)

    run = tmp_path / "run"
    assert [e.epoch for e in epochs] == [1, 2] and all(e.val_loss is not None for e in epochs)
    history = json.loads((run / "history.json").read_text())
    assert history["world_size"] == 2 and not history["stopped"]
    assert widget.loss_points() == len(history["steps"]) + 2 * 2 > 0
    assert 0 < points[0] < points[1]
    [label] = MODELS.registered()  # the best weights, listed under their run folder's name
    assert MODELS.get(label) == run / "best.safetensors" and label.startswith("run ·")
    assert (run / EVENTS_FILE).exists() and (run / "train.log").exists()
    assert widget.worker.is_running is False and widget._jobs[-1].process.poll() == 0
    assert widget.start_button.isEnabled() and "Finished" in widget.status.text()


def _tree(job: Any) -> list[Any]:
    process = psutil.Process(job.process.popen.pid)
    return [process, *process.children(recursive=True)]


def _gone(processes: list[Any]) -> bool:
    return all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in processes)


def test_stop_interrupts_every_process_and_keeps_the_history(make_napari_viewer, qtbot,
                                                             tmp_path):
    _, widget = make_widget(make_napari_viewer, tmp_path, size=(256, 256),
                            **{"train.epochs": 200})
    widget.processes.value = 2
    with qtbot.waitSignal(widget.step_finished, timeout=TIMEOUT_MS):
        assert widget.start()
    job = widget._jobs[-1]
    tree = _tree(job)
    assert len(tree) >= 4  # launcher, torchrun, two ranks
    with qtbot.waitSignal(widget.finished, timeout=TIMEOUT_MS):
        widget.stop()
    assert job.process.poll() is not None and _gone(tree)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["stopped"] and history["world_size"] == 2
    assert (tmp_path / "run" / "last.safetensors").exists()
    assert "Stopped" in widget.status.text() and widget.resume_button.isEnabled()


def test_closing_the_widget_ends_the_subprocess(make_napari_viewer, qtbot, tmp_path):
    _, widget = make_widget(make_napari_viewer, tmp_path, size=(256, 256),
                            **{"train.epochs": 200})
    widget.processes.value = 2
    with qtbot.waitSignal(widget.step_finished, timeout=TIMEOUT_MS):
        assert widget.start()
    job = widget._jobs[-1]
    tree = _tree(job)
    widget.close()
    assert job.process.poll() is not None and _gone(tree)
    assert json.loads((tmp_path / "run" / "history.json").read_text())["stopped"]


def test_a_failing_subprocess_shows_its_error_line(make_napari_viewer, qtbot, tmp_path):
    from napari.utils.notifications import notification_manager

    _, widget = make_widget(make_napari_viewer, tmp_path, **{"train.device": "cuda"})
    widget.processes.value = 2
    messages: list[str] = []
    notification_manager.notification_ready.connect(lambda n: messages.append(n.message))
    with qtbot.waitSignal(widget.finished, timeout=TIMEOUT_MS):
        assert widget.start()  # no CUDA here: the launcher refuses with a one-line error
    assert messages and messages[-1].startswith("Training failed: cryoden: error:")
    assert "cuda" in messages[-1].lower() and len(messages[-1].splitlines()) == 1
    assert widget.start_button.isEnabled() and not widget.stop_button.isEnabled()
