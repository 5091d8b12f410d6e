"""``smooth`` (and ``keep_detail``): a Gaussian after denoising, perhaps only in part, the same
in the API, the CLI, a job and a box."""

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
from napari_cryoden.inference.smoothing import (
    Smoothing,
    as_smoothing,
    check_smooth,
    smooth_margin,
    smoothed,
)
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


def test_keeping_detail_blends_the_blur_with_the_input() -> None:
    """``blurred + keep · (input − blurred)``: 0 is the plain blur, 1 the input untouched."""
    image = np.random.default_rng(1).normal(size=(60, 70)).astype(np.float32)
    blurred = ndimage.gaussian_filter(image, 8.0)
    np.testing.assert_allclose(smoothed(image, Smoothing(8.0, 0.5)),
                               blurred + 0.5 * (image - blurred), atol=1e-6)
    np.testing.assert_allclose(smoothed(image, Smoothing(8.0, 0.0)), blurred, atol=1e-6)
    assert smoothed(image, Smoothing(8.0, 1.0)) is image
    assert not Smoothing(8.0, 1.0) and not Smoothing() and Smoothing(8.0, 0.5)
    # a pattern far finer than the Gaussian keeps just that share of its amplitude
    fine = np.cos(np.arange(70) * np.pi / 2)[None, :].repeat(60, 0).astype(np.float32)
    assert np.abs(smoothed(fine, Smoothing(4.0, 0.5))[20:40, 20:50]).max() == pytest.approx(
        0.5, abs=1e-3)
    assert smooth_margin(Smoothing(8.0, 0.5)) == 32
    assert Smoothing(8.0, 0.5).describe() == "a Gaussian of σ 8 px keeping 0.5 of the finer detail"
    assert Smoothing(3.5).describe() == "a Gaussian of σ 3.5 px"


@pytest.mark.parametrize(("sigma", "keep", "says"), [
    (2.0, -0.1, r"^keep_detail -0.1 must be a number from 0 \(a plain blur\) to 1"),
    (2.0, 1.5, r"^keep_detail 1.5 must be a number from 0"),
    (2.0, float("nan"), r"^keep_detail nan must be a number from 0"),
    (2.0, "half", r"^keep_detail 'half' must be a number from 0"),
    (0.0, 0.5, r"^keep_detail 0.5 keeps part of the detail that the Gaussian of smooth removes: "
               r"give smooth > 0 too$"),
])
def test_a_bad_share_is_one_line_naming_it(sigma: float, keep: object, says: str) -> None:
    with pytest.raises(InputError, match=says) as info:
        as_smoothing(sigma, keep)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="keep_detail"):
        cryoden.denoise(_micrograph(), "general-fast", device="cpu", smooth=sigma,
                        keep_detail=keep)  # type: ignore[arg-type]


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
    np.testing.assert_allclose(cryoden.denoise(image, weights, device="cpu", smooth=2.0,
                                               smooth_where="everywhere"),
                               ndimage.gaussian_filter(plain, 2.0), atol=1e-5)
    blurred = ndimage.gaussian_filter(plain, 6.0)
    np.testing.assert_allclose(
        cryoden.denoise(image, weights, device="cpu", smooth=6.0, keep_detail=0.25,
                        smooth_where="everywhere"),
        blurred + 0.25 * (plain - blurred), atol=1e-5)
    # by default only on the background
    np.testing.assert_allclose(cryoden.denoise(image, weights, device="cpu", smooth=6.0),
                               _background_only(plain, 6.0, source=image), atol=1e-5)
    with pytest.raises(InputError, match=r"^smooth_where 'ice' must be one of: background, "
                                         r"everywhere$"):
        cryoden.denoise(image, weights, device="cpu", smooth=6.0, smooth_where="ice")


def _background_only(image: np.ndarray, sigma: float, keep: float = 0.0, *,
                     source: np.ndarray) -> np.ndarray:
    """The docstring's formula, written out again: ``blurred + w · detail``, ``w = keep + (1 −
    keep) · r²/(1 + r²)``, ``r`` = the detail's energy (its square blurred by σ 8 px) over 10 ×
    the background's: its median over a 4 × 4 grid of central boxes of up to 64² px, at most
    0.05 × (1.4826 × the median absolute deviation of ``source`` − ``image`` there)²."""
    image, source = np.asarray(image, np.float64), np.asarray(source, np.float64)
    blurred = ndimage.gaussian_filter(image, sigma)
    detail = image - blurred
    energy = ndimage.gaussian_filter(detail ** 2, 8.0)
    ny, nx = image.shape
    hy, hx = min(64, ny // 4), min(64, nx // 4)
    corners = [(int((i + 0.5) * ny / 4) - hy // 2, int((j + 0.5) * nx / 4) - hx // 2)
               for i in range(4) for j in range(4)]
    median = np.median(np.concatenate([energy[y:y + hy, x:x + hx].ravel() for y, x in corners]))
    residual = np.concatenate([(source - image)[y:y + hy, x:x + hx].ravel() for y, x in corners])
    noise = (1.4826 * np.median(np.abs(residual - np.median(residual)))) ** 2
    r2 = (energy / (10 * min(median, 0.05 * noise))) ** 2
    return blurred + (keep + (1 - keep) * r2 / (1 + r2)) * detail


def test_background_only_keeps_a_particle_and_flattens_the_ice_around_it() -> None:
    """What a user sees: strong detail (a particle) is kept, weak detail (ice) is smoothed."""
    rng = np.random.default_rng(3)
    ice = rng.normal(0.0, 0.05, (256, 256)).astype(np.float32)
    particle = np.zeros_like(ice)
    particle[100:140, 110:150] = rng.normal(0.0, 1.0, (40, 40))  # textured, 20× the ice
    image = ice + particle
    noisy = image + rng.normal(0.0, 0.5, image.shape).astype(np.float32)  # what the model saw
    out = smoothed(image, Smoothing(16.0, 0.0, "background"), source=noisy)
    np.testing.assert_allclose(out, _background_only(image, 16.0, source=noisy), atol=1e-5)
    inside, far = (slice(108, 132), slice(118, 142)), (slice(10, 60), slice(10, 60))
    assert np.corrcoef(out[inside].ravel(), image[inside].ravel())[0, 1] > 0.95  # kept
    assert out[far].std() < 0.2 * image[far].std()  # the ice: flattened
    everywhere = smoothed(image, Smoothing(16.0, 0.0, "everywhere"))
    assert np.corrcoef(everywhere[inside].ravel(), image[inside].ravel())[0, 1] < 0.5
    # keep_detail is the least share kept: the ice keeps about half of its detail
    half = smoothed(image, Smoothing(16.0, 0.5, "background"), source=noisy)
    np.testing.assert_allclose(half, _background_only(image, 16.0, 0.5, source=noisy),
                               atol=1e-5)
    assert 0.4 < half[far].std() / image[far].std() < 0.6
    assert smooth_margin(Smoothing(16.0, 0.0, "background")) == 64 + 32
    assert Smoothing(16.0, 0.0, "background").describe() == (
        "a Gaussian of σ 16 px on the background")
    # a blank micrograph (no detail at all) stays as it is, without warnings or NaN
    blank = np.full((64, 64), 3.0, np.float32)
    np.testing.assert_allclose(smoothed(blank, Smoothing(16.0, 0.0, "background"),
                                        source=blank), blank)
    with pytest.raises(ValueError, match="needs the image the model was given"):
        smoothed(image, Smoothing(16.0, 0.0, "background"))


def test_background_only_keeps_the_particles_where_detail_is_everywhere() -> None:
    """The plugin's cartoon sample: its "ice" has a texture as strong as the particles' detail,
    so the median detail is far above what noise leaves. Without the cap the threshold lay
    above the particles and they were blurred with the ice (13.5 dB against the noise-free
    sample); capped by the noise of noisy − clean, the flattened truth stays the truth."""
    from napari_cryoden._sample_data import make_synthetic_micrograph

    layers = {meta["name"]: np.asarray(data, np.float32)
              for data, meta, *_ in make_synthetic_micrograph()}
    clean, noisy = layers["clean (simulated)"], layers["noisy (simulated)"]
    flat = smoothed(clean, Smoothing(16.0, 0.0, "background"), source=noisy)
    np.testing.assert_allclose(flat, _background_only(clean, 16.0, source=noisy), atol=1e-4)
    psnr = 10 * np.log10(np.ptp(clean) ** 2 / np.mean((flat - clean) ** 2))
    assert psnr > 35.0, psnr
    # structure everywhere (a crowd of strong particles), its detail energy ~6× the threshold
    # that the noise sets (10 × 0.05 × 0.1²); by the median alone it would all be "ice"
    rng = np.random.default_rng(4)
    crowd = 2 * ndimage.gaussian_filter(rng.normal(0.0, 1.0, (256, 256)), 3.0).astype(np.float32)
    kept = smoothed(crowd, Smoothing(16.0, 0.0, "background"),
                    source=crowd + rng.normal(0.0, 0.1, crowd.shape).astype(np.float32))
    assert np.corrcoef(kept.ravel(), crowd.ravel())[0, 1] > 0.99


@pytest.mark.parametrize(("bin_factor", "atol", "keep", "where"),
                         [(1.0, 1e-4, 0.0, "everywhere"), (1.5, 1e-2, 0.0, "everywhere"),
                          (1.0, 1e-4, 0.5, "everywhere"), (1.0, 1e-4, 0.0, "background"),
                          (1.0, 1e-4, 0.3, "background")])
def test_a_box_job_equals_the_crop_of_the_smoothed_whole_image(weights: Path, bin_factor: float,
                                                              atol: float, keep: float,
                                                              where: str) -> None:
    """Exact at the recorded pixel size; binned, as close as a binned box is without smoothing
    (a box is Fourier-binned with a margin, not cut from the binned whole image). On the
    background only, a box takes the whole micrograph's threshold (its sample boxes)."""
    image, sigma = _micrograph(), Smoothing(2.0, keep, where)
    whole = run_job(DenoiseJob(weights, "cpu", image, bin_factor=bin_factor, smooth=sigma)).data
    unsmoothed = run_job(DenoiseJob(weights, "cpu", image, bin_factor=bin_factor)).data
    blurred = ndimage.gaussian_filter(unsmoothed, 2.0)
    expected = (blurred + keep * (unsmoothed - blurred) if where == "everywhere"
                else _background_only(unsmoothed, 2.0, keep, source=image))
    np.testing.assert_allclose(whole, expected, atol=1e-5)
    # inside, and touching the image's edge (where the whole image's blur reflects too)
    for box in (Box(30, 60, 40, 80), Box(0, 25, 90, 112)):
        part = run_job(DenoiseJob(weights, "cpu", image, box, bin_factor=bin_factor,
                                  smooth=sigma)).data
        assert part.shape == box.shape
        np.testing.assert_allclose(part, whole[box.y0:box.y1, box.x0:box.x1], atol=atol)


def _plain_and_smoothed(weights: Path, folder: Path, *flags: str
                        ) -> tuple[np.ndarray, np.ndarray, float]:
    """``cryoden denoise`` of one micrograph at 1.5 Å/px, without and with ``flags``: the two
    outputs and the second's pixel size."""
    (folder / "in").mkdir()
    write_mrc(folder / "in" / "mic.mrc", _micrograph(), 1.5)
    for out, extra in (("plain", ("--smooth", "0")), ("smoothed", flags)):
        assert main(["denoise", str(weights), str(folder / "in"), "--out", str(folder / out),
                     "--device", "cpu", *extra]) == 0
    plain = np.asarray(read_image(folder / "plain" / "mic.mrc")[0])
    smoothed_image, pixel = read_image(folder / "smoothed" / "mic.mrc")
    return plain, np.asarray(smoothed_image), pixel


def test_cryoden_denoise_smooth_writes_the_blurred_output(weights: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    plain, soft, pixel = _plain_and_smoothed(weights, tmp_path, "--smooth", "2.5",
                                             "--smooth-where", "everywhere")
    assert "then a Gaussian of σ 2.5 px" in capsys.readouterr().out
    np.testing.assert_allclose(soft, ndimage.gaussian_filter(plain, 2.5), atol=1e-5)
    assert pixel == pytest.approx(1.5)
    with pytest.raises(SystemExit):  # argparse's one-line usage error
        main(["denoise", str(tmp_path / "in"), "--out", str(tmp_path / "x"), "--smooth", "-1"])
    assert "--smooth '-1' must be a number of pixels >= 0" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cryoden_denoise_keep_detail_writes_the_blend(weights: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    plain, flat, _ = _plain_and_smoothed(weights, tmp_path, "--smooth", "8", "--keep-detail",
                                         "0.5", "--smooth-where", "everywhere")
    assert "then a Gaussian of σ 8 px keeping 0.5 of the finer detail" in capsys.readouterr().out
    blurred = ndimage.gaussian_filter(plain, 8.0)
    np.testing.assert_allclose(flat, blurred + 0.5 * (plain - blurred), atol=1e-5)
    with pytest.raises(SystemExit):  # argparse's one-line usage error
        main(["denoise", str(tmp_path / "in"), "--out", str(tmp_path / "x"), "--smooth", "8",
              "--keep-detail", "2"])
    assert "--keep-detail '2' must be a number from 0 (a plain blur) to 1" in (
        capsys.readouterr().err)
    assert main(["denoise", str(weights), str(tmp_path / "in"), "--out", str(tmp_path / "x"),
                 "--smooth", "0", "--keep-detail", "0.5"]) != 0  # a share of no Gaussian
    err = capsys.readouterr().err
    assert "--keep-detail 0.5 keeps part of the detail that the Gaussian of --smooth removes" in err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x").exists()


def test_cryoden_denoise_flattens_the_background_by_default(weights: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    """The default of ``cryoden denoise``: σ 16 px on the background; ``--smooth 0``: the
    model's output as it is (the helper's first run)."""
    plain, flat, _ = _plain_and_smoothed(weights, tmp_path)
    out = capsys.readouterr().out
    assert "then a Gaussian of σ 16 px on the background" in out
    np.testing.assert_allclose(flat, _background_only(plain, 16.0, source=_micrograph()),
                               atol=1e-5)
    assert not np.allclose(flat, plain, atol=1e-3)
    with pytest.raises(SystemExit):  # argparse's one-line usage error
        main(["denoise", str(tmp_path / "in"), "--out", str(tmp_path / "x"),
              "--smooth-where", "ice"])
    assert "invalid choice: 'ice'" in capsys.readouterr().err
