"""Dataset evaluation end to end: tiny MRC pairs, a hand-built model, the real denoiser."""

from __future__ import annotations

import json
import math
import tracemalloc
from pathlib import Path

import matplotlib.image
import mrcfile
import numpy as np
import pytest
import torch
from scipy import ndimage

from napari_cryoden.config.sections import Config
from napari_cryoden.errors import InputError
from napari_cryoden.evaluation.metrics import patch_grid
from napari_cryoden.evaluation.pixels import compare
from napari_cryoden.evaluation.report import evaluate, summary_lines, write_report
from napari_cryoden.models.checkpoint import save_checkpoint
from napari_cryoden.models.nets import build_model

SHAPES = {"mic_a": (96, 128), "mic_b": (3, 64, 64)}  # a micrograph and a small stack
PATCH = 48


def _write(path: Path, data: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data.astype(np.float32))


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for name, shape in SHAPES.items():
        clean = ndimage.gaussian_filter(rng.random(shape), (0,) * (len(shape) - 2) + (3, 3))
        clean = 0.4 + (clean - clean.min()) / np.ptp(clean) * 0.5
        noisy = clean + 0.1 * rng.standard_normal(shape)
        _write(tmp_path / "clean" / f"{name}.mrc", clean)
        _write(tmp_path / "noisy" / f"{name}.mrc", noisy)
    return tmp_path


def _model(kernel: np.ndarray) -> torch.nn.Module:
    """The seed net wired to apply one 3x3 ``kernel`` (positive data pass the ReLUs unchanged)."""
    model = build_model(seed=0)
    delta = np.zeros((3, 3), np.float32)
    delta[1, 1] = 1
    with torch.no_grad():
        for conv in model.children():
            conv.weight.zero_()
            conv.bias.zero_()
        model.conv1.weight[0, 0] = torch.from_numpy(kernel.astype(np.float32))
        model.conv2.weight[0, 0] = torch.from_numpy(delta)
        model.conv3.weight[0, 0] = torch.from_numpy(delta)
    return model


IDENTITY = np.pad([[1.0]], 1)
BOX = np.full((3, 3), 1 / 9)


def _n_patches() -> int:
    return sum(len(patch_grid(s, PATCH)) * (s[0] if len(s) == 3 else 1) for s in SHAPES.values())


def test_identity_model_scores_like_the_noisy_input(dataset: Path) -> None:
    report = evaluate(_model(IDENTITY), dataset / "noisy", dataset / "clean", patch_size=PATCH)
    noisy = report["baselines"]["noisy"]
    for key in ("mse", "rmse", "psnr", "corr"):
        assert report[key] == pytest.approx(noisy[key], rel=1e-5), key
    assert report["pooled"]["mse"] == pytest.approx(noisy["pooled"]["mse"], rel=1e-5)
    assert report["n_micrographs"] == 2 and report["n_patches"] == _n_patches()


def test_report_of_a_smoothing_model(dataset: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int, str]] = []
    report = evaluate(_model(BOX), dataset / "noisy", dataset / "clean", patch_size=PATCH,
                      figures_dir=tmp_path / "figures",
                      progress=lambda done, total, name: seen.append((done, total, name)))
    assert seen == [(1, 2, "mic_a.mrc"), (2, 2, "mic_b.mrc")]
    assert {"mse", "rmse", "psnr", "corr", "patches", "checklist", "pooled", "baselines",
            "best_patch", "worst_patch", "data_range", "target_kind", "target_note",
            "n_micrographs", "n_patches", "model", "artifacts", "figures"} <= report.keys()
    patches = report["patches"]
    assert len(patches) == report["n_patches"] == _n_patches()
    assert {(p["file"], p["z"]) for p in patches} == {("mic_a.mrc", 0)} | {
        ("mic_b.mrc", z) for z in range(3)}
    micrographs = report["micrographs"]  # the headline: each micrograph's whole image
    assert [(m["file"], m["z"]) for m in micrographs] == [("mic_a.mrc", 0)] + [
        ("mic_b.mrc", z) for z in range(3)]
    assert report["mse"] == pytest.approx(np.mean([m["mse"] for m in micrographs]))
    assert report["per_patch"]["mse"] == pytest.approx(np.mean([p["mse"] for p in patches]))
    assert "per micrograph" in report["headline"]
    assert report["worst_patch"]["rmse"] == max(p["rmse"] for p in patches)
    assert report["best_patch"]["rmse"] == min(p["rmse"] for p in patches)
    # a 3x3 box beats the raw input, the fitted Gaussian filter beats the box
    assert report["psnr"] > report["baselines"]["noisy"]["psnr"] + 3
    gaussian = report["baselines"]["gaussian"]
    assert gaussian["sigma"] > 0 and gaussian["psnr"] > report["psnr"]
    assert "leave one out" in gaussian["fitted_on"]
    assert "upper bound" in report["baselines"]["gaussian_oracle"]["note"]
    checklist = {item["id"]: item for item in report["checklist"]}
    assert checklist[7]["passed"] is False  # does not beat the Gaussian filter
    assert checklist[10]["value"]["border_ratio"] > 1.25  # zero padding darkens the rim
    assert checklist[1]["passed"] is None  # no training history given


def test_figures_are_valid_pngs(dataset: Path, tmp_path: Path) -> None:
    history = {"epochs": [{"epoch": 1, "train_loss": 0.02, "val_loss": 0.015, "val_mse": 0.015},
                          {"epoch": 2, "train_loss": 0.012, "val_loss": 0.011, "val_mse": 0.011}],
               "steps": [{"epoch": 1, "step": i, "loss": 0.03 / (1 + i)} for i in range(20)]}
    report = evaluate(_model(BOX), dataset / "noisy", dataset / "clean", patch_size=PATCH,
                      figures_dir=tmp_path / "fig", history=history)
    assert set(report["figures"]) == {"loss", "scatter", "histograms", "panel"}
    for path in report["figures"].values():
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = matplotlib.image.imread(path).shape
        assert height > 200 and width > 200


def test_json_report_is_strict_json(dataset: Path, tmp_path: Path) -> None:
    report = evaluate(_model(IDENTITY), dataset / "noisy", dataset / "clean", patch_size=PATCH,
                      target_kind="noisy")
    report["pooled"]["corr"] = math.nan  # e.g. a flat micrograph
    path = write_report(report, tmp_path / "out" / "report.json")
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    loaded = json.loads(text)
    assert loaded["pooled"]["corr"] is None
    assert loaded["mse"] == pytest.approx(report["mse"])
    assert loaded["target_kind"] == "noisy" and "capped" in loaded["target_note"]
    assert len(loaded["patches"]) == loaded["n_patches"] and len(loaded["checklist"]) == 10


def test_evaluate_a_weight_file_uses_its_history(dataset: Path, tmp_path: Path) -> None:
    epochs = [{"epoch": 1, "train_loss": 0.02, "val_loss": 0.015, "val_mse": 0.015},
              {"epoch": 2, "train_loss": 0.012, "val_loss": 0.011, "val_mse": 0.011}]
    weights = save_checkpoint(tmp_path / "best.safetensors", _model(BOX), Config(),
                              epoch=2, epochs=epochs)
    report = evaluate(weights, dataset / "noisy", dataset / "clean", patch_size=PATCH)
    assert report["model"]["path"] == str(weights) and report["model"]["epoch"] == 2
    assert report["model"]["normalization"] == "meanstd"  # the default config
    assert report["model"]["parameters"] == 2625
    items = {item["id"]: item for item in report["checklist"]}
    assert items[1]["passed"] is True and items[2]["passed"] is True
    assert items[3]["value"]["val_mse"] == 0.011


def test_pooled_metrics_cover_every_pixel_of_every_file(dataset: Path) -> None:
    calls: list[np.ndarray] = []

    def brighten(model: object, image: np.ndarray, **_: object) -> np.ndarray:
        calls.append(image)
        return image + np.float32(0.05)

    report = evaluate(object(), dataset / "noisy", dataset / "clean", patch_size=PATCH,
                      denoise_fn=brighten)
    assert [c.shape for c in calls] == list(SHAPES.values())
    clean = []
    for name in SHAPES:
        with mrcfile.open(dataset / "clean" / f"{name}.mrc") as mrc:
            clean.append(mrc.data.ravel())
    expected = compare(np.concatenate([c.ravel() + np.float32(0.05) for c in calls]),
                       np.concatenate(clean))
    for key in ("mse", "corr", "brightness_diff", "slope", "calib_slope"):
        assert report["pooled"][key] == pytest.approx(expected[key], rel=1e-9, abs=1e-12), key
    assert report["pooled"]["n_pixels"] == sum(c.size for c in calls)


def test_bad_inputs_give_one_line_errors(dataset: Path) -> None:
    _write(dataset / "clean" / "mic_a.mrc", np.zeros((64, 64)))
    with pytest.raises(InputError, match="mic_a.mrc: shape"):
        evaluate(_model(IDENTITY), dataset / "noisy", dataset / "clean")
    _write(dataset / "clean" / "mic_a.mrc", np.zeros(SHAPES["mic_a"]))
    with pytest.raises(InputError, match="NaN"):
        evaluate(object(), dataset / "noisy", dataset / "clean",
                 denoise_fn=lambda model, image, **kw: image * np.nan)
    with pytest.raises(InputError, match="target_kind"):
        evaluate(object(), dataset / "noisy", dataset / "clean", target_kind="even")


def test_memory_stays_flat_over_the_dataset(tmp_path: Path) -> None:
    """Peak memory with 6 micrographs is that with 2: pairs are read and dropped one by one."""
    rng = np.random.default_rng(4)
    peaks: list[int] = []
    for i in range(6):
        clean = rng.random((256, 256))
        _write(tmp_path / "clean" / f"m{i}.mrc", clean)
        _write(tmp_path / "noisy" / f"m{i}.mrc", clean + 0.1 * rng.standard_normal(clean.shape))
        if i in (1, 5):
            tracemalloc.start()
            evaluate(object(), tmp_path / "noisy", tmp_path / "clean", patch_size=128,
                     denoise_fn=lambda model, image, **kw: image * np.float32(0.9))
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
    # holding the 6 micrographs' noisy, clean and denoised arrays would add 4.5 MiB
    assert peaks[1] < peaks[0] + 2**20


def test_headline_does_not_depend_on_the_patch_size(dataset: Path) -> None:
    small, large = (evaluate(_model(BOX), dataset / "noisy", dataset / "clean", patch_size=size)
                    for size in (16, 48))
    for key in ("mse", "psnr", "corr"):
        assert small[key] == pytest.approx(large[key], rel=1e-9), key
    # the per-patch means do depend on it (what the headline used to be)
    assert abs(small["per_patch"]["psnr"] - large["per_patch"]["psnr"]) > 0.01
    assert abs(small["per_patch"]["corr"] - large["per_patch"]["corr"]) > 0.01


def _levels(tmp_path: Path, noise: tuple[float, ...]) -> Path:
    """Micrographs of one texture whose noise differs, so their best Gaussian widths differ."""
    rng = np.random.default_rng(1)
    for i, level in enumerate(noise):
        clean = ndimage.gaussian_filter(rng.random((128, 128)), 2)
        clean = 0.4 + (clean - clean.min()) / np.ptp(clean) * 0.5
        _write(tmp_path / "clean" / f"m{i}.mrc", clean)
        _write(tmp_path / "noisy" / f"m{i}.mrc", clean + level * rng.standard_normal(clean.shape))
    return tmp_path


def test_gaussian_baseline_is_never_fitted_on_the_micrograph_it_is_scored_on(
        tmp_path: Path) -> None:
    data = _levels(tmp_path, (0.02, 0.3))  # the second micrograph wants a much wider filter
    report = evaluate(_model(IDENTITY), data / "noisy", data / "clean", patch_size=64)
    rows = report["micrographs"]
    fitted = [r["gaussian_sigma"] for r in rows]
    oracle = [r["gaussian_oracle_sigma"] for r in rows]
    assert oracle[1] > 2 * oracle[0]
    # each micrograph gets the width the *other* one prefers, never its own
    assert fitted[0] == pytest.approx(oracle[1], rel=0.2)
    assert fitted[1] == pytest.approx(oracle[0], rel=0.2)
    assert all(r["gaussian_psnr"] <= r["gaussian_oracle_psnr"] + 1e-6 for r in rows)
    assert report["baselines"]["gaussian"]["sigmas"] == fitted


def test_gaussian_baseline_width_given_or_recorded_with_the_model(dataset: Path,
                                                                   tmp_path: Path) -> None:
    given = evaluate(_model(BOX), dataset / "noisy", dataset / "clean", patch_size=PATCH,
                     gaussian_sigma=1.5)
    assert given["baselines"]["gaussian"]["sigma"] == 1.5
    assert "given" in given["baselines"]["gaussian"]["fitted_on"]
    path = save_checkpoint(tmp_path / "m.safetensors", _model(BOX), Config(),
                           gaussian_baseline={"sigma": 2.5, "fitted_on": "its validation set"})
    recorded = evaluate(path, dataset / "noisy", dataset / "clean", patch_size=PATCH)
    gaussian = recorded["baselines"]["gaussian"]
    assert gaussian["sigma"] == 2.5 and gaussian["fitted_on"] == "its validation set"
    with pytest.raises(InputError, match="width must be >= 0"):
        evaluate(_model(BOX), dataset / "noisy", dataset / "clean", gaussian_sigma=-1.0)


def test_one_micrograph_gets_only_the_oracle_labelled_as_such(tmp_path: Path) -> None:
    data = _levels(tmp_path, (0.1,))
    report = evaluate(_model(BOX), data / "noisy", data / "clean", patch_size=64)
    assert "gaussian" not in report["baselines"]
    assert "gaussian_oracle" in report["baselines"]
    seven = {i["id"]: i for i in report["checklist"]}[7]
    assert "oracle" in seven["note"]
    text = "\n".join(summary_lines(report))
    assert "Gaussian oracle" in text and "no fitted baseline" in text
