"""The training generator: events, checkpoints, history, stop, resume, reproducibility."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_cryoden.config.sections import Config
from napari_cryoden.data.packed import Packed, pack
from napari_cryoden.data.pairs import find_pairs
from napari_cryoden.devices import resolve_device
from napari_cryoden.errors import InputError
from napari_cryoden.evaluation.baselines import FIT_SIGMAS, gaussian_curve
from napari_cryoden.io.images import read_image
from napari_cryoden.models.checkpoint import load_checkpoint
from napari_cryoden.training import (
    CheckpointSaved,
    EpochEnd,
    TrainEnd,
    TrainStart,
    TrainStep,
    TrainWarning,
    train,
)

TINY = {"data": {"patch_size": 32, "shuffle_buffer": 4}, "train": {"batch_size": 4, "epochs": 3,
                                                                   "device": "cpu"}}


def tiny_config(**sections: dict) -> Config:
    merged = {k: dict(v) for k, v in TINY.items()}
    for key, values in sections.items():
        merged.setdefault(key, {}).update(values)
    return Config.from_dict(merged)


@pytest.fixture
def pairs(make_pairs):
    noisy, clean = make_pairs(n=5, size=64)
    all_pairs = find_pairs(noisy, clean)
    return all_pairs[:4], all_pairs[4:]


def run_all(config: Config, pairs, run_dir: Path, **kw) -> list:
    return list(train(config, pairs[0], pairs[1], run_dir, **kw))


def test_events_files_and_history(pairs, tmp_path: Path) -> None:
    events = run_all(tiny_config(), pairs, tmp_path / "run")
    start = events[0]
    assert isinstance(start, TrainStart) and start.device == "cpu"
    assert start.n_train_patches == 16 and start.n_val_patches == 4 and start.steps_per_epoch == 4
    steps = [e for e in events if isinstance(e, TrainStep)]
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert len(steps) == 12 and [e.epoch for e in epochs] == [1, 2, 3]
    assert all(e.val_loss is not None and e.val_mse is not None for e in epochs)
    assert epochs[0].is_best
    assert isinstance(events[-1], TrainEnd) and not events[-1].stopped
    saved = [e for e in events if isinstance(e, CheckpointSaved)]
    assert [e.kind for e in saved if e.epoch == 1] == ["best", "last"]
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3]
    assert len(history["steps"]) == 12 and history["steps"][-1]["global_step"] == 12
    best_epoch = min(history["epochs"], key=lambda e: e["val_loss"])["epoch"]
    assert history["best_epoch"] == best_epoch == events[-1].best_epoch
    _, ckpt = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert ckpt.epoch == best_epoch and ckpt.config == tiny_config()
    _, last = load_checkpoint(tmp_path / "run" / "last.safetensors")
    assert last.epoch == 3 and last.metadata["extra_tensors"]  # optimizer state for resume
    # the evaluation's Gaussian baseline is chosen on the validation set and kept with the model
    recorded = ckpt.metadata["gaussian_baseline"]
    noisy, clean = (read_image(path)[0] for path in pairs[1][0])
    assert recorded["sigma"] == FIT_SIGMAS[int(np.argmin(gaussian_curve(noisy, clean)))]
    assert "validation set (1 of its 1 micrographs)" in recorded["fitted_on"]


def test_loss_decreases_and_val_mse_is_raw(pairs, tmp_path: Path) -> None:
    cfg = tiny_config(train={"epochs": 6, "lr": 3e-3}, data={"normalization": "meanstd"})
    epochs = [e for e in run_all(cfg, pairs, tmp_path / "r") if isinstance(e, EpochEnd)]
    assert epochs[-1].train_loss < epochs[0].train_loss
    # normalised loss is in units of the noisy std (~0.15 here): raw MSE is much smaller
    assert epochs[-1].val_mse < epochs[-1].val_loss


def test_same_seed_same_losses(pairs, tmp_path: Path) -> None:
    cfg = tiny_config(data={"crop": 24})
    a = [e.loss for e in run_all(cfg, pairs, tmp_path / "a") if isinstance(e, TrainStep)]
    b = [e.loss for e in run_all(cfg, pairs, tmp_path / "b") if isinstance(e, TrainStep)]
    c = [e.loss for e in run_all(tiny_config(train={"seed": 1}, data={"crop": 24}), pairs,
                                 tmp_path / "c") if isinstance(e, TrainStep)]
    assert a == b
    assert a != c


def test_stop_mid_epoch_keeps_best_and_history(pairs, tmp_path: Path) -> None:
    stop = threading.Event()
    run_dir = tmp_path / "run"
    events = []
    for event in train(tiny_config(), pairs[0], pairs[1], run_dir, stop=stop):
        events.append(event)
        if isinstance(event, TrainStep) and event.epoch == 2 and event.step == 2:
            best_before = (run_dir / "best.safetensors").read_bytes()
            stop.set()
    end = events[-1]
    assert isinstance(end, TrainEnd) and end.stopped and end.epochs_completed == 1
    assert not any(isinstance(e, TrainStep) and e.epoch == 2 and e.step > 2 for e in events)
    assert (run_dir / "best.safetensors").read_bytes() == best_before
    history = json.loads((run_dir / "history.json").read_text())
    assert history["stopped"] and len(history["steps"]) == 6  # 4 + the 2 of epoch 2


def test_closing_the_generator_saves_last(pairs, tmp_path: Path) -> None:
    threads_before = threading.active_count()
    gen = train(tiny_config(), pairs[0], pairs[1], tmp_path / "run")
    for event in gen:
        if isinstance(event, TrainStep) and event.global_step == 6:
            break
    gen.close()
    _, last = load_checkpoint(tmp_path / "run" / "last.safetensors")
    assert last.metadata["stopped"] and last.epoch == 1
    assert threading.active_count() <= threads_before  # no reader thread left behind


def test_resume_continues_epochs_and_history(pairs, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_all(tiny_config(train={"epochs": 2}), pairs, run_dir)
    events = run_all(tiny_config(train={"epochs": 4}), pairs, run_dir, resume=True)
    start = events[0]
    assert start.first_epoch == 3
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [3, 4]
    history = json.loads((run_dir / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3, 4]
    assert [s["global_step"] for s in history["steps"]] == list(range(1, 17))
    # resuming equals training straight through (same weights, same optimizer state)
    run_all(tiny_config(train={"epochs": 4}), pairs, tmp_path / "straight")
    resumed, _ = load_checkpoint(run_dir / "last.safetensors")
    straight, _ = load_checkpoint(tmp_path / "straight" / "last.safetensors")
    for (name, a), b in zip(resumed.state_dict().items(), straight.state_dict().values(),
                                  strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)


def test_no_validation_set_uses_train_loss(pairs, tmp_path: Path) -> None:
    events = list(train(tiny_config(train={"epochs": 2}), pairs[0], [], tmp_path / "run"))
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert all(e.val_loss is None for e in epochs) and epochs[0].is_best
    assert (tmp_path / "run" / "best.safetensors").exists()
    _, ckpt = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert "gaussian_baseline" not in ckpt.metadata  # nothing to choose a width on


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no training micrographs"):
        list(train(tiny_config(), [], [], tmp_path / "run"))
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda")
    assert resolve_device("cpu").type == "cpu"


def test_trained_output_is_reloadable(pairs, tmp_path: Path) -> None:
    run_all(tiny_config(train={"epochs": 1}), pairs, tmp_path / "run")
    a, _ = load_checkpoint(tmp_path / "run" / "best.safetensors")
    b, _ = load_checkpoint(tmp_path / "run" / "best.safetensors")
    x = torch.from_numpy(np.random.default_rng(0).random((1, 1, 40, 40), dtype=np.float32))
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_out_of_memory_backs_off_to_micro_batches_with_the_same_updates(pairs, tmp_path: Path,
                                                                     monkeypatch) -> None:
    from napari_cryoden.training import steps

    cfg = tiny_config(train={"epochs": 2})
    run_all(cfg, pairs, tmp_path / "plain")
    real = steps.make_step
    failures = []

    def flaky(model, optimizer, precision, scaler=None, chunks=1):
        step = real(model, optimizer, precision, scaler, chunks)

        def maybe_fail(noisy, clean, before_update=None):
            if noisy.shape[0] // chunks > 1:  # "does not fit" until single patches
                failures.append(chunks)
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
            return step(noisy, clean, before_update)

        return maybe_fail

    monkeypatch.setattr(steps, "make_step", flaky)
    events = run_all(cfg, pairs, tmp_path / "oom")
    warnings = [e.message for e in events if e.__class__.__name__ == "TrainWarning"]
    assert failures == [1, 2] and len(warnings) == 2
    assert "out of memory at a batch of 4" in warnings[0] and "4 micro-batches" in warnings[1]
    assert isinstance(events[-1], TrainEnd) and events[-1].epochs_completed == 2
    plain, _ = load_checkpoint(tmp_path / "plain" / "last.safetensors")
    backed_off, _ = load_checkpoint(tmp_path / "oom" / "last.safetensors")
    for a, b in zip(plain.parameters(), backed_off.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # same updates, summed in pieces


def test_out_of_memory_at_one_patch_is_a_clear_error(pairs, tmp_path: Path, monkeypatch) -> None:
    from napari_cryoden.training import steps

    def always(*args, **kwargs):
        def fail(*a, **k):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return fail

    monkeypatch.setattr(steps, "make_step", always)
    with pytest.raises(InputError, match="out of memory training even one 32² patch"):
        run_all(tiny_config(), pairs, tmp_path / "r")


def _disk_full_on(monkeypatch, epochs: set[int]) -> None:
    """``os.write`` raises ENOSPC while checkpoints of these epochs are saved."""
    import errno
    import os

    from napari_cryoden.training import checkpointing

    real_save, real_write = checkpointing.save_checkpoint, os.write
    state = {"full": False}

    def save(path, model, config, **kw):
        state["full"] = kw.get("epoch") in epochs
        try:
            return real_save(path, model, config, **kw)
        finally:
            state["full"] = False

    def write(fd, data):
        if state["full"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(checkpointing, "save_checkpoint", save)
    monkeypatch.setattr(os, "write", write)


def test_disk_full_mid_run_warns_and_training_goes_on(pairs, tmp_path: Path, monkeypatch) -> None:
    _disk_full_on(monkeypatch, {2})
    events = run_all(tiny_config(), pairs, tmp_path / "run")
    warnings = [e.message for e in events if e.__class__.__name__ == "TrainWarning"]
    assert warnings and all("disk full while saving" in w and "training goes on" in w
                            for w in warnings)
    assert isinstance(events[-1], TrainEnd) and events[-1].epochs_completed == 3
    _, last = load_checkpoint(tmp_path / "run" / "last.safetensors")
    assert last.epoch == 3  # saved again once there was room
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3]
    assert not list((tmp_path / "run").glob(".*.tmp"))  # no temporary files left


def test_disk_full_at_the_last_save_is_an_error_and_keeps_the_previous(pairs, tmp_path: Path,
                                                                       monkeypatch) -> None:
    from napari_cryoden.errors import SaveError

    _disk_full_on(monkeypatch, {3})
    with pytest.raises(SaveError, match="disk full while saving"):
        run_all(tiny_config(), pairs, tmp_path / "run")
    _, last = load_checkpoint(tmp_path / "run" / "last.safetensors")
    assert last.epoch == 2  # the previous checkpoint is intact and loads


def test_a_store_s_patch_size_replaces_the_configured_one_with_a_warning(make_pairs,
                                                                         tmp_path: Path) -> None:
    noisy, clean = make_pairs(n=2, size=64)
    store = pack(noisy, clean, tmp_path / "store", patch_size=16)
    events = list(train(tiny_config(train={"epochs": 1}), Packed(store), None, tmp_path / "a"))
    assert isinstance(events[0], TrainStart) and isinstance(events[1], TrainWarning)
    assert [e for e in events if isinstance(e, TrainWarning)] == [events[1]]
    assert str(store.path) in events[1].message and "16 px" in events[1].message
    assert "32 px" in events[1].message
    _, ckpt = load_checkpoint(tmp_path / "a" / "best.safetensors")
    assert ckpt.config.data.patch_size == 16
    history = json.loads((tmp_path / "a" / "history.json").read_text())
    assert [w["message"] for w in history["warnings"]] == [events[1].message]
    same = tiny_config(train={"epochs": 1}, data={"patch_size": 16})
    assert not any(isinstance(e, TrainWarning)
                   for e in train(same, Packed(store), None, tmp_path / "b"))
