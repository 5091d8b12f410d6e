"""``smooth``: a Gaussian after denoising, the same in the API, the CLI, a job and a box."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

import napari_cryoden as cryoden
from napari_cryoden.cli.main import main
from napari_cryoden.errors import InputError
from napari_cryoden.inference import denoiser
from napari_cryoden.inference.job import DenoiseJob, run_job
from napari_cryoden.inference.region import Box
from napari_cryoden.inference.smoothing import check_smooth, smooth_margin, smoothed
from napari_cryoden.io.images import read_image, write_mrc
from napari_cryoden.models.checkpoint import load_checkpoint


def _micrograph() -> np.ndarray:
    return np.random.default_rng(5).normal(2.0, 0.5, (90, 112)).astype(np.float32)


def _denoised(weights: Path, image: np.ndarray) -> np.ndarray:
    model, checkpoint = load_checkpoint(weights)
    return denoiser.denoise(model, image, normalization=checkpoint.normalization)


def test_smoothed_is_scipy_s_gaussian_per_slice_and_zero_is_the_input() -> None:
    stack = np.random.default_rng(0).normal(size=(2, 40, 50)).astype(np.float32)
    out = smoothed(stack, 1.5)
    for z in range(2):  # slice by slice: no blur across the stack
        np.testing.assert_allclose(out[z], ndimage.gaussian_filter(stack[z], 1.5), atol=1e-6)
    assert smoothed(stack, 0.0) is stack
    assert smooth_margin(1.5) == 6 and smooth_margin(0.0) == 0


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "wide"])
def test_a_bad_sigma_is_one_line_naming_it(bad: object) -> None:
    with pytest.raises(InputError, match=r"^smooth .* must be a number of pixels >= 0") as info:
        check_smooth(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="smooth"):
        cryoden.denoise(_micrograph(), "general-fast", device="cpu", smooth=bad)  # type: ignore


def test_the_api_blurs_its_output_and_zero_changes_nothing(weights: Path) -> None:
    image = _micrograph()
    plain = cryoden.denoise(image, weights, device="cpu")
    np.testing.assert_array_equal(cryoden.denoise(image, weights, device="cpu", smooth=0), plain)
    np.testing.assert_allclose(cryoden.denoise(image, weights, device="cpu", smooth=2.0),
                               ndimage.gaussian_filter(plain, 2.0), atol=1e-5)


@pytest.mark.parametrize(("bin_factor", "atol"), [(1.0, 1e-4), (1.5, 1e-2)])
def test_a_box_job_equals_the_crop_of_the_smoothed_whole_image(weights: Path, bin_factor: float,
                                                              atol: float) -> None:
    """Exact at the recorded pixel size; binned, as close as a binned box is without smoothing
    (a box is Fourier-binned with a margin, not cut from the binned whole image)."""
    image, sigma = _micrograph(), 2.0
    whole = run_job(DenoiseJob(weights, "cpu", image, bin_factor=bin_factor, smooth=sigma)).data
    unsmoothed = run_job(DenoiseJob(weights, "cpu", image, bin_factor=bin_factor)).data
    np.testing.assert_allclose(whole, ndimage.gaussian_filter(unsmoothed, sigma), atol=1e-5)
    # inside, and touching the image's edge (where the whole image's blur reflects too)
    for box in (Box(30, 60, 40, 80), Box(0, 25, 90, 112)):
        part = run_job(DenoiseJob(weights, "cpu", image, box, bin_factor=bin_factor,
                                  smooth=sigma)).data
        assert part.shape == box.shape
        np.testing.assert_allclose(part, whole[box.y0:box.y1, box.x0:box.x1], atol=atol)


def test_cryoden_denoise_smooth_writes_the_blurred_output(weights: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    image = _micrograph()
    (tmp_path / "in").mkdir()
    write_mrc(tmp_path / "in" / "mic.mrc", image, 1.5)
    assert main(["denoise", str(weights), str(tmp_path / "in"), "--out", str(tmp_path / "plain"),
                 "--device", "cpu"]) == 0
    assert main(["denoise", str(weights), str(tmp_path / "in"), "--out", str(tmp_path / "soft"),
                 "--device", "cpu", "--smooth", "2.5"]) == 0
    assert "then a Gaussian of σ 2.5 px" in capsys.readouterr().out
    plain, pixel = read_image(tmp_path / "plain" / "mic.mrc")
    soft, _ = read_image(tmp_path / "soft" / "mic.mrc")
    np.testing.assert_allclose(np.asarray(soft), ndimage.gaussian_filter(np.asarray(plain), 2.5),
                               atol=1e-5)
    assert pixel == pytest.approx(1.5)
    with pytest.raises(SystemExit):  # argparse's one-line usage error
        main(["denoise", str(tmp_path / "in"), "--out", str(tmp_path / "x"), "--smooth", "-1"])
    assert "--smooth '-1' must be a number of pixels >= 0" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
