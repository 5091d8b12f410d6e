"""Streaming metrics: known values, agreement with numpy, chunking, baselines, artifacts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from napari_cryoden.evaluation import pixels
from napari_cryoden.evaluation.artifacts import ArtifactAccumulator
from napari_cryoden.evaluation.baselines import best_gaussian
from napari_cryoden.evaluation.metrics import METRICS, patch_grid, patch_metrics, psnr, ssim
from napari_cryoden.evaluation.pixels import PairAccumulator, compare


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    target = ndimage.gaussian_filter(rng.random((96, 80)), 3).astype(np.float32)
    pred = (0.9 * target + 0.05 + 0.02 * rng.standard_normal(target.shape)).astype(np.float32)
    return pred, target


def test_identical_arrays_are_perfect(pair: tuple[np.ndarray, np.ndarray]) -> None:
    _, target = pair
    r = compare(target, target)
    assert r["mse"] == 0 and r["rmse"] == 0 and r["psnr"] == math.inf
    assert r["corr"] == pytest.approx(1.0, abs=1e-12)
    assert r["slope"] == pytest.approx(1.0, abs=1e-12)
    assert r["intercept"] == pytest.approx(0.0, abs=1e-12)
    assert r["calib_slope"] == pytest.approx(1.0, abs=1e-12)
    assert r["hist_overlap"] == pytest.approx(1.0)
    assert r["brightness_diff"] == 0.0


def test_constant_offset_shows_as_brightness_difference(pair: tuple[np.ndarray, ...]) -> None:
    _, target = pair
    r = compare(target + np.float32(0.1), target)
    assert r["brightness_diff"] == pytest.approx(0.1, abs=1e-6)
    assert r["mse"] == pytest.approx(0.01, rel=1e-5)
    assert r["corr"] == pytest.approx(1.0, abs=1e-9)
    assert r["slope"] == pytest.approx(1.0, abs=1e-5)
    assert r["intercept"] == pytest.approx(0.1, abs=1e-5)
    assert r["hist_overlap"] < 0.9  # the shifted histogram no longer lies on the target's


def test_psnr_formula() -> None:
    assert psnr(0.01) == pytest.approx(20.0)
    assert psnr(0.01, data_range=2.0) == pytest.approx(20.0 + 20 * math.log10(2))
    assert psnr(0.0) == math.inf
    target = np.zeros((10, 10), np.float32)
    assert compare(target + np.float32(0.1), target)["psnr"] == pytest.approx(20.0, abs=1e-4)


def test_agrees_with_numpy(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, target = pair
    p, t = pred.astype(np.float64).ravel(), target.astype(np.float64).ravel()
    r = compare(pred, target)
    slope, intercept = np.polyfit(t, p, 1)
    calib, _ = np.polyfit(p, t, 1)
    assert r["mse"] == pytest.approx(np.mean((p - t) ** 2), rel=1e-12)
    assert r["corr"] == pytest.approx(np.corrcoef(p, t)[0, 1], rel=1e-9)
    assert r["slope"] == pytest.approx(slope, rel=1e-9)
    assert r["intercept"] == pytest.approx(intercept, rel=1e-9)
    assert r["calib_slope"] == pytest.approx(calib, rel=1e-9)
    assert r["std_target"] == pytest.approx(t.std(), rel=1e-9)
    assert (r["min_pred"], r["max_target"]) == (p.min(), t.max())


def test_streaming_over_chunks_equals_one_shot(pair: tuple[np.ndarray, np.ndarray],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pred, target = pair
    monkeypatch.setattr(pixels, "_BLOCK", 1000)  # also split each update into blocks
    hist_range = (-0.5, 1.5)
    acc = PairAccumulator(hist_range=hist_range)
    for rows in np.array_split(np.arange(pred.shape[0]), 7):
        acc.update(pred[rows], target[rows])
    streamed, one_shot = acc.result(), compare(pred, target, hist_range=hist_range)
    assert streamed.keys() == one_shot.keys()
    for key, value in one_shot.items():
        assert streamed[key] == pytest.approx(value, abs=1e-9, rel=1e-9), key


def test_histogram_overlap_of_disjoint_distributions_is_zero() -> None:
    target = np.linspace(0, 0.4, 1000, dtype=np.float32)
    assert compare(target + np.float32(0.6), target)["hist_overlap"] == 0.0


def test_sample_is_bounded_uniform_and_seeded() -> None:
    def run(seed: int) -> tuple[np.ndarray, np.ndarray]:
        acc = PairAccumulator(sample_size=500, seed=seed)
        acc.update(np.zeros(1000, np.float32), np.zeros(1000, np.float32))
        for _ in range(9):  # 9x more pixels with value 1: ~90 % of the sample
            acc.update(np.ones(1000, np.float32), np.ones(1000, np.float32))
        return acc.sample()

    pred, target = run(1)
    assert pred.size == target.size == 500
    assert np.array_equal(pred, target)  # pairs stay paired
    assert abs(pred.mean() - 0.9) < 0.06
    assert np.array_equal(run(1)[0], pred)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        compare(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="NaN"):
        compare(np.full((4, 4), np.nan), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="no pixels"):
        PairAccumulator().result()


def test_patch_grid_aligns_last_patch_to_edge() -> None:
    assert patch_grid((100, 130), 64) == [(y, x) for y in (0, 36) for x in (0, 64, 66)]
    assert patch_grid((128, 128), 64) == [(0, 0), (0, 64), (64, 0), (64, 64)]
    assert patch_grid((3, 40, 50), 64) == [(0, 0)]  # smaller than a patch: one patch


def test_patch_metrics_locate_the_error() -> None:
    target = np.random.default_rng(1).random((128, 128)).astype(np.float32)
    pred = target.copy()
    pred[64:, :64] += 0.1  # only the bottom-left patch is wrong
    rows = patch_metrics(pred, target, 64)
    assert [(r["y"], r["x"]) for r in rows] == patch_grid(target.shape, 64)
    wrong = [r for r in rows if r["mse"] > 0]
    assert [(r["y"], r["x"]) for r in wrong] == [(64, 0)]
    assert wrong[0]["rmse"] == pytest.approx(0.1, rel=1e-5)
    assert wrong[0]["psnr"] == pytest.approx(20.0, abs=1e-3)
    assert wrong[0]["bias"] == pytest.approx(0.1, rel=1e-5)
    assert wrong[0]["corr"] == pytest.approx(1.0, abs=1e-6)


def test_best_gaussian_beats_the_noisy_input() -> None:
    rng = np.random.default_rng(2)
    clean = ndimage.gaussian_filter(rng.random((128, 128)), 4).astype(np.float32)
    clean = (clean - clean.min()) / np.ptp(clean)
    noisy = (clean + 0.2 * rng.standard_normal(clean.shape)).astype(np.float32)
    sigma, result = best_gaussian(noisy, clean)
    assert sigma > 0
    assert result["mse"] < 0.5 * compare(noisy, clean)["mse"]
    for other in (0.5 * sigma, 2 * sigma):  # a local optimum of MSE
        assert compare(ndimage.gaussian_filter(noisy, other), clean)["mse"] >= result["mse"]
    assert best_gaussian(clean, clean)[0] == 0.0  # nothing to remove: no filter


def _residual_pair(shape: tuple[int, int] = (128, 128)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    target = rng.random(shape).astype(np.float32)
    return target + np.float32(0.05) * rng.standard_normal(shape).astype(np.float32), target


def test_artifacts_quiet_on_uniform_residual() -> None:
    pred, target = _residual_pair()
    acc = ArtifactAccumulator(border=8)
    acc.update(pred, target)
    r = acc.result()
    assert r["border_ratio"] == pytest.approx(1.0, abs=0.1)
    assert r["seam_z"] < 6


def test_artifacts_find_dark_rim_and_seam() -> None:
    pred, target = _residual_pair()
    rim = pred.copy()
    rim[:3] -= 0.2
    acc = ArtifactAccumulator(border=8)
    acc.update(rim, target)
    assert acc.result()["border_ratio"] > 1.25
    seam = pred.copy()
    seam[:, 70] += 0.1
    acc = ArtifactAccumulator(border=8)
    acc.update(seam, target)
    r = acc.result()
    assert r["seam_ratio"] > 1.1 and r["seam_z"] > 6
    assert r["seam_line"] == "column 70 of 128x128"


def _textured(seed: int, shape: tuple[int, int] = (64, 64)) -> np.ndarray:
    image = ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), 2)
    return ((image - image.min()) / np.ptp(image)).astype(np.float32)


def test_ssim_identities() -> None:
    x, y = _textured(0), _textured(1)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)
    assert ssim(x, y) == pytest.approx(ssim(y, x), abs=1e-15)  # symmetric
    assert ssim(3 * x, 3 * y, data_range=3.0) == pytest.approx(ssim(x, y), rel=1e-6)
    noise = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    scores = [ssim(x + level * noise, x) for level in (0.01, 0.03, 0.1, 0.3)]
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] < scores[0] < 1
    assert ssim(1 - x, x) < 0  # inverted contrast: structure anti-correlated


def test_ssim_of_flat_images_is_the_luminance_term() -> None:
    """Constant images a and b: σ = 0, so SSIM = (2ab + C1) / (a² + b² + C1), C1 = (0.01 L)²."""
    a, b = np.full((16, 16), 0.5), np.full((16, 16), 0.25)
    assert ssim(a, b) == pytest.approx((0.25 + 1e-4) / (0.3125 + 1e-4), rel=1e-12)  # 0.80006
    assert ssim(a, b, data_range=2.0) == pytest.approx((0.25 + 4e-4) / (0.3125 + 4e-4))


def test_ssim_of_an_11px_pair_is_its_one_full_window() -> None:
    """In an 11 x 11 pair one pixel has its whole 11 x 11 window (σ 1.5): computed by hand."""
    rng = np.random.default_rng(3)
    x, y = rng.random((11, 11)), rng.random((11, 11))
    r2 = np.add.outer(np.arange(-5, 6) ** 2, np.arange(-5, 6) ** 2)
    w = np.exp(-r2 / (2 * 1.5**2))
    w /= w.sum()
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum()
    cxy = (w * (x - mx) * (y - my)).sum()
    c1, c2 = 0.01**2, 0.03**2
    expected = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    assert ssim(x, y) == pytest.approx(expected, rel=1e-9)


def test_ssim_is_a_patch_metric_pooled_as_the_mean_of_patches() -> None:
    target = _textured(4, (96, 96))
    pred = target + np.float32(0.05) * _textured(5, (96, 96))
    rows = patch_metrics(pred, target, 48)
    assert [r["ssim"] for r in rows] == [
        pytest.approx(ssim(pred[y:y + 48, x:x + 48], target[y:y + 48, x:x + 48]))
        for y, x in patch_grid(target.shape, 48)]
    metric = next(m for m in METRICS if m.key == "ssim")
    assert metric.higher_is_better and metric.format(0.91234) == "0.9123"
    assert metric.pooled({}, [0.2, 0.4, math.nan]) == pytest.approx(0.3)
