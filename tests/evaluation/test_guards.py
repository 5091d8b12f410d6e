"""Scramble guards: evaluation warnings (r <= 0, worse than the input) and training warnings
(validation loss rising, resumed weights scoring worse than recorded), in the core and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_cryoden.cli.main import main
from napari_cryoden.config.sections import Config
from napari_cryoden.data.pairs import find_pairs
from napari_cryoden.evaluation.checklist import run_checklist
from napari_cryoden.evaluation.guards import (
    format_warnings,
    image_warnings,
    output_warnings,
    report_warnings,
    resume_warning,
    val_rise_warning,
)
from napari_cryoden.evaluation.report import evaluate
from napari_cryoden.interop.raw import from_layout, to_layout
from napari_cryoden.models.checkpoint import load_checkpoint, load_extra_tensors, save_checkpoint
from napari_cryoden.models.nets import DenoiseCNN
from napari_cryoden.training import loop as training
from napari_cryoden.training.events import TrainStart, TrainWarning

TINY = {"data": {"patch_size": 32, "shuffle_buffer": 4},
        "train": {"batch_size": 4, "device": "cpu"}}


def tiny_config(epochs: int) -> Config:
    return Config.from_dict({**TINY, "train": {**TINY["train"], "epochs": epochs}})


# -- pure functions ----------------------------------------------------------------------------
def test_output_warnings_name_each_symptom() -> None:
    assert output_warnings(0.87, 0.007, 0.02, 0.4) == []
    assert output_warnings(0.4, 0.0200001, 0.02, 0.4) == []  # identity within rounding
    negative = output_warnings(-0.14, 0.276, 0.02, 0.4)  # the seed's broken numbers
    assert len(negative) == 2
    assert "physically impossible for a working denoiser" in negative[0]
    assert "worse than the identity" in negative[1] and "MSE 0.276 vs 0.02" in negative[1]
    assert "Pearson r -0.140 vs 0.400" in negative[1]
    assert "r = 0.000 <= 0" in output_warnings(0.0, None)[0]
    assert "undefined" in output_warnings(math.nan, 0.1)[0]
    low_r = output_warnings(0.09, 0.006, 0.02, 0.46)  # better MSE, but correlates less
    assert len(low_r) == 1 and "Pearson r 0.090 vs 0.460" in low_r[0]
    assert format_warnings([]) == ""
    assert format_warnings(negative).count("warning: ") == 2


def test_image_warnings_for_widgets() -> None:
    rng = np.random.default_rng(0)
    clean = rng.random((32, 32)).astype(np.float32)
    noisy = clean + rng.normal(0, 0.2, clean.shape).astype(np.float32)
    assert image_warnings((clean + noisy) / 2, clean, noisy) == []
    flipped = image_warnings(1 - noisy, clean, noisy)
    assert len(flipped) == 2 and "<= 0" in flipped[0]
    assert len(image_warnings(1 - noisy, clean)) == 1  # without the input: only r is judged


def test_val_rise_fires_once_at_the_third_rise() -> None:
    losses = [0.5, 0.4, 0.41, 0.42, 0.43, 0.44, 0.3, 0.31]
    fired = [i + 1 for i in range(len(losses)) if val_rise_warning(losses[: i + 1])]
    assert fired == [5]  # epochs 3, 4, 5 each rose; 6 continues the same streak
    assert "0.4 → 0.41 → 0.42 → 0.43" in val_rise_warning(losses[:5])
    assert val_rise_warning([0.1, None, 0.2, 0.3, 0.4]) is not None  # Nones are skipped
    assert val_rise_warning([0.1, 0.2, 0.2, 0.3, 0.4]) is None  # a flat epoch breaks it
    assert val_rise_warning([None] * 6) is None


def _fired(losses, **kw) -> list[int]:
    """The epochs (1-based) at which the guard warns, fed the curve epoch by epoch."""
    return [i + 1 for i in range(len(losses)) if val_rise_warning(list(losses[: i + 1]), **kw)]


def _improving(n: int = 80, noise: float = 0.01, seed: int = 0) -> np.ndarray:
    """A validation curve that keeps improving, measured on a small validation set (jittery)."""
    t = np.arange(n)
    return 0.3 + 0.2 * np.exp(-t / 15) + np.random.default_rng(seed).normal(0, noise, n)


def test_val_rise_quiet_on_a_noisy_but_improving_curve() -> None:
    for seed in range(8):
        assert _fired(_improving(seed=seed)) == [], seed
    # rises alone (no noise margin) fire on these curves: the test can fail
    assert sum(len(_fired(_improving(seed=s), margin=0.0)) for s in range(8)) >= 8


def test_val_rise_loud_on_a_diverging_curve_with_the_same_noise() -> None:
    losses = _improving(seed=0)
    losses[30:] = losses[30] + 0.01 * np.arange(50) + np.random.default_rng(1).normal(
        0, 0.01, 50)
    fired = _fired(losses)
    assert fired and 30 < fired[0] <= 40  # within ten epochs of the turn


def test_resume_warning_threshold() -> None:
    assert resume_warning(0.01, 0.0119) is None
    assert "worse than the 0.01 recorded" in resume_warning(0.01, 0.0121)
    assert resume_warning(0.01, math.nan) is not None
    assert resume_warning(None, 5.0) is None


# -- evaluation --------------------------------------------------------------------------------
def inverting_model() -> DenoiseCNN:
    """1 - x on [0, 1] data (conv 1x1 weight 1, ReLU, conv weight -1 bias 1): r = -r(noisy)."""
    config = Config.from_dict({"model": {"channels": 1, "depth": 2, "kernel_size": 1}}).model
    model = DenoiseCNN(config)
    with torch.no_grad():
        model.conv1.weight.fill_(1.0)
        model.conv1.bias.zero_()
        model.conv2.weight.fill_(-1.0)
        model.conv2.bias.fill_(1.0)
    return model


def test_report_warnings(make_pairs) -> None:
    noisy, clean = make_pairs(n=2, size=64)
    identity = evaluate(torch.nn.Identity(), noisy, clean, patch_size=32)
    assert identity["warnings"] == [] and {"mse", "corr", "checklist"} <= set(identity)
    broken = evaluate(inverting_model(), noisy, clean, patch_size=32)
    assert broken["pooled"]["corr"] < 0
    assert broken["warnings"] == report_warnings(broken) and len(broken["warnings"]) == 2
    items = {i["id"]: i for i in broken["checklist"]}
    assert "physically impossible" in items[4]["note"]
    assert "worse than the identity" in items[7]["note"]
    assert items[4]["note"] is not None and identity["checklist"][3]["note"] is None


def test_cli_evaluate_prints_warnings_loudly(make_pairs, tmp_path: Path, capsys) -> None:
    noisy, clean = make_pairs(n=2, size=64)
    model = inverting_model()
    config = Config.from_dict({"model": {"channels": 1, "depth": 2, "kernel_size": 1},
                               "data": {"normalization": "none", "patch_size": 32}})
    path = save_checkpoint(tmp_path / "inv.safetensors", model, config)
    report = tmp_path / "r.json"
    assert main(["evaluate", str(path), "--noisy", str(noisy), "--clean", str(clean),
                 "--json", str(report)]) == 0
    err = capsys.readouterr().err
    assert "THIS MODEL LOOKS BROKEN" in err and err.count("warning: ") == 2
    assert len(json.loads(report.read_text())["warnings"]) == 2


def test_checklist_without_noisy_baseline_has_no_false_note() -> None:
    nan = {"pooled": {"psnr": math.nan}}
    summary = {"pooled": {"corr": 0.9, "psnr": 25.0, "mse": 0.003, "brightness_diff": 0.0,
                          "std_target": 0.1, "hist_overlap": 0.95, "calib_slope": 1.0,
                          "calib_intercept": 0.0, "slope": 0.9, "max_target": 1.0,
                          "min_target": 0.0},
               "baselines": {"noisy": nan, "gaussian": nan}, "target_kind": "clean"}
    items = run_checklist(summary)
    assert items[3]["note"] is None and items[6]["note"] is None


# -- training ----------------------------------------------------------------------------------
@pytest.fixture
def pairs(make_pairs):
    all_pairs = find_pairs(*make_pairs(n=5, size=64))
    return all_pairs[:4], all_pairs[4:]


def test_rising_val_loss_yields_a_warning(pairs, tmp_path: Path, monkeypatch) -> None:
    losses = iter([0.5, 0.6, 0.7, 0.8, 0.9])
    monkeypatch.setattr(training._Run, "_validate", lambda self: (next(losses), 0.01))
    events = list(training.train(tiny_config(5), *pairs, tmp_path / "run"))
    warnings = [e for e in events if isinstance(e, TrainWarning)]
    assert [w.epoch for w in warnings] == [4]
    assert "rose for 3 consecutive epochs" in warnings[0].message
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["warnings"] == [{"epoch": 4, "message": warnings[0].message}]


def test_cli_train_prints_warnings(make_pairs, tmp_path: Path, capsys, monkeypatch) -> None:
    losses = iter([0.5, 0.6, 0.7, 0.8])
    monkeypatch.setattr(training._Run, "_validate", lambda self: (next(losses), 0.01))
    noisy, clean = make_pairs(n=5, size=64)
    assert main(["train", "--noisy", str(noisy), "--clean", str(clean), "--out",
                 str(tmp_path / "run"), "--epochs", "4", "--patch-size", "32",
                 "--device", "cpu", "--val-fraction", "0.2"]) == 0
    assert "warning: epoch 4: validation loss rose for 3 consecutive epochs" in \
        capsys.readouterr().err


def scramble_last(run_dir: Path) -> None:
    """Replace last.safetensors' weights by the seed's mis-read, keeping its metadata."""
    path = run_dir / "last.safetensors"
    model, ckpt = load_checkpoint(path)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("weight"):
                buffer = to_layout(tensor.numpy(), "oihw")
                tensor.copy_(torch.from_numpy(from_layout(buffer, tuple(tensor.shape),
                                                          "seed-legacy")))
    meta = {k: v for k, v in ckpt.metadata.items()
            if k not in {"extra_tensors", "format", "format_version", "package_version",
                         "normalization"}}
    save_checkpoint(path, model, ckpt.config, extra_tensors=load_extra_tensors(path), **meta)


def test_resume_with_scrambled_weights_warns(pairs, tmp_path: Path) -> None:
    run = tmp_path / "run"
    list(training.train(tiny_config(2), *pairs, run))
    plain = list(training.train(tiny_config(3), *pairs, run, resume=True))
    assert not any(isinstance(e, TrainWarning) for e in plain)  # intact weights: no warning
    scramble_last(run)
    events = list(training.train(tiny_config(4), *pairs, run, resume=True))
    assert isinstance(events[0], TrainStart) and isinstance(events[1], TrainWarning)
    assert events[1].epoch == 3 and "worse than the" in events[1].message
    history = json.loads((run / "history.json").read_text())
    assert [w["epoch"] for w in history["warnings"]] == [3]


def test_scramble_changes_the_weights() -> None:  # guards the helper above
    w = np.arange(16 * 16 * 9, dtype=np.float32).reshape(16, 16, 3, 3)
    assert not np.array_equal(from_layout(to_layout(w, "oihw"), w.shape, "seed-legacy"), w)
