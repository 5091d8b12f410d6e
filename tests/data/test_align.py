"""split-frames --align: a drifting movie's halves, aligned first, agree better than unaligned."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from torch_fourier_shift import fourier_shift_image_2d

from napari_cryoden.cli.main import main
from napari_cryoden.data.align import aligned_frame_sums, estimation_binning
from napari_cryoden.io.frames import frame_sums
from napari_cryoden.io.images import write_mrc

FRAMES, SIZE, PIXEL = 16, 256, 1.0


def drifting_movie(path: Path, seed: int = 0) -> np.ndarray:
    """A sharp specimen drifting as beam-induced motion does: fast at first, then slowing (8 px
    along a random direction, time constant 4 frames) with 0.1 px jitter; 3 counts/px a frame."""
    rng = np.random.default_rng(seed)
    clean = gaussian_filter(rng.random((SIZE, SIZE)), 1.5)
    clean = 0.5 + 0.2 * (clean - clean.mean()) / clean.std()
    angle = rng.uniform(0, 2 * np.pi)
    travel = 8.0 * (1 - np.exp(-np.arange(FRAMES) / 4.0))
    drift = travel[:, None] * np.array([np.sin(angle), np.cos(angle)])
    drift += rng.normal(0, 0.1, drift.shape)
    drift -= drift[FRAMES // 2]
    frames = [rng.poisson(3.0 * np.clip(fourier_shift_image_2d(
        torch.tensor(clean, dtype=torch.float32), torch.tensor(d, dtype=torch.float32)).numpy(),
        0, None)) for d in drift]
    write_mrc(path, np.stack(frames).astype(np.float32), PIXEL)
    return drift


def split_snr(even: np.ndarray, odd: np.ndarray) -> float:
    """CC/(1 - CC) of the two halves, away from the edges the shifts wrap."""
    a, b = even[24:-24, 24:-24], odd[24:-24, 24:-24]
    a, b = a - a.mean(), b - b.mean()
    cc = float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))
    return cc / (1 - cc)


def test_aligned_halves_have_a_higher_split_frame_snr(tmp_path: Path) -> None:
    drift = drifting_movie(tmp_path / "movie.mrcs")
    raw = split_snr(*frame_sums(tmp_path / "movie.mrcs")[:2])
    even, odd, info = aligned_frame_sums(tmp_path / "movie.mrcs")
    aligned = split_snr(even, odd)
    truth = float(np.max(np.hypot(drift[:, 0], drift[:, 1])))
    print(f"split-frame SNR raw {raw:.3f}, aligned {aligned:.3f}; drift {truth:.1f} px, "
          f"estimated {info.drift:.1f} px")
    assert aligned > 1.3 * raw
    assert info.drift == pytest.approx(truth, abs=1.0)
    assert even.shape == (SIZE, SIZE) and info.n_even == info.n_odd == FRAMES // 2


def test_cli_aligns_and_says_how_far_the_frames_moved(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drifting_movie(tmp_path / "movie.mrcs", seed=1)
    assert main(["split-frames", str(tmp_path / "movie.mrcs"), "--out", str(tmp_path / "h"),
                 "--align"]) == 0
    out = capsys.readouterr().out
    assert "frames aligned, largest shift" in out
    assert (tmp_path / "h/even/movie.mrc").exists() and (tmp_path / "h/odd/movie.mrc").exists()


@pytest.mark.parametrize("pixel", [0.8, 1.6])
def test_the_estimate_does_not_depend_on_the_pixel_size(tmp_path: Path, pixel: float) -> None:
    """torch-motion-correction 0.6.0 applies its coarse estimate (Å) as pixels; called in Å the
    estimate came out (2 - pixel) times the motion: 1.2x at 0.8 Å, 0.4x at 1.6 Å."""
    drift = drifting_movie(tmp_path / "movie.mrcs")
    with mrcfile.open(tmp_path / "movie.mrcs", mode="r+") as mrc:
        mrc.voxel_size = pixel
    _, _, info = aligned_frame_sums(tmp_path / "movie.mrcs")
    assert info.drift == pytest.approx(float(np.max(np.hypot(*drift.T))), abs=0.6)


def test_a_large_movie_is_aligned_on_binned_frames_in_bounded_memory(tmp_path: Path) -> None:
    """768² frames of 0.75 Å are binned 3x to estimate (256² px, 2.25 Å): the shifts are as
    good as the true ones for the halves' agreement, and memory holds the binned movie, the two
    sums and a frame, not the movie (tracemalloc: numpy's allocations)."""
    rng = np.random.default_rng(5)
    size, n = 768, 24
    clean = gaussian_filter(rng.random((size, size)), 2.5)
    clean = 0.5 + 0.2 * (clean - clean.mean()) / clean.std()
    drift = 8.0 * (1 - np.exp(-np.arange(n) / 4.0))[:, None] * np.array([0.8, -0.6])
    drift -= drift[n // 2]
    frames = np.stack([rng.poisson(1.0 * np.clip(fourier_shift_image_2d(
        torch.tensor(clean, dtype=torch.float32), torch.tensor(d, dtype=torch.float32)).numpy(),
        0, None)) for d in drift]).astype(np.float32)
    write_mrc(tmp_path / "big.mrcs", frames, 0.75)
    assert estimation_binning(0.75, (size, size)) == 3
    import torch_motion_correction  # noqa: F401  (its import is not the run's memory)

    tracemalloc.start()
    try:
        even, odd, info = aligned_frame_sums(tmp_path / "big.mrcs")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    true_even = sum(fourier_shift_image_2d(torch.from_numpy(f), torch.tensor(-d)).numpy()
                    for f, d in zip(frames[0::2], drift[0::2].astype(np.float32), strict=True))
    true_odd = sum(fourier_shift_image_2d(torch.from_numpy(f), torch.tensor(-d)).numpy()
                   for f, d in zip(frames[1::2], drift[1::2].astype(np.float32), strict=True))
    raw = split_snr(frames[0::2].sum(0), frames[1::2].sum(0))
    best, got = split_snr(true_even, true_odd), split_snr(even, odd)
    print(f"split-frame SNR raw {raw:.3f}, aligned {got:.3f}, true shifts {best:.3f}; "
          f"peak {peak / 1e6:.0f} MB for a {frames.nbytes / 1e6:.0f} MB movie")
    assert got > 0.97 * best and best > 1.1 * raw
    binned = n * (size // 3) ** 2 * 4
    assert peak < 2 * 8 * size**2 + binned + 4 * 4 * size**2 < frames.nbytes / 2


def shearing_movie(path: Path, size: int = 512, n: int = 16, seed: int = 3) -> None:
    """Local motion: the top edge moves 6 px to the right while the bottom moves 6 px to the
    left (a shear, as in doming), plus a 3 px drift down the whole frame (1 Å/px)."""
    from scipy.ndimage import map_coordinates

    rng = np.random.default_rng(seed)
    clean = gaussian_filter(rng.random((size, size)), 2.5)
    clean = 0.5 + 0.2 * (clean - clean.mean()) / clean.std()
    travel = 1 - np.exp(-np.arange(n) / 4.0)
    travel -= travel[n // 2]
    yy, xx = np.mgrid[:size, :size].astype(float)
    frames = [rng.poisson(np.clip(map_coordinates(
        clean, [yy - 3.0 * t, xx - 6.0 * t * (1 - 2 * yy / (size - 1))], order=3,
        mode="reflect"), 0, None)) for t in travel]
    write_mrc(path, np.stack(frames).astype(np.float32), 1.0)


def test_local_motion_aligns_what_one_shift_per_frame_cannot(tmp_path: Path) -> None:
    shearing_movie(tmp_path / "shear.mrcs")
    raw = split_snr(*frame_sums(tmp_path / "shear.mrcs")[:2])
    whole = split_snr(*aligned_frame_sums(tmp_path / "shear.mrcs")[:2])
    even, odd, info = aligned_frame_sums(tmp_path / "shear.mrcs", patches=3)
    local = split_snr(even, odd)
    print(f"split-frame SNR raw {raw:.3f}, whole-frame {whole:.3f}, 3x3 patches {local:.3f}; "
          f"largest local shift {info.drift:.1f} px")
    assert local > 1.04 * whole and whole > raw
    assert 3.0 < info.drift < 7.5  # truly 3.9 px at the corner tiles' centres, 6.2 at the edge


def test_tiles_put_an_unmoved_frame_back_exactly_and_agree_with_one_shift(tmp_path: Path) -> None:
    """The tiles' windows sum to one everywhere, edges included; a uniform field moves the frame
    as one Fourier shift does, but for the sinc's tail cut at the tiles' margins."""
    from napari_cryoden.data.align import shift_frame
    from napari_cryoden.data.patch_motion import TileShifter

    frame = np.random.default_rng(0).normal(size=(300, 517)).astype(np.float32)
    still = TileShifter(np.zeros((2, 4, 3, 3)), frame.shape, (1.0, 1.0))
    np.testing.assert_allclose(still.shift(frame, 1), frame, atol=1e-5)
    field = np.stack([np.full((4, 3, 3), 1.5), np.full((4, 3, 3), -2.0)])
    moved = TileShifter(field, frame.shape, (2.0, 2.0)).shift(frame, 1)  # binned 2x
    error = (moved - shift_frame(frame, np.array([3.0, -4.0])))[40:-40, 40:-40]
    assert np.sqrt(np.mean(error**2)) < 0.05  # of white noise of σ 1: the worst case


def test_cli_patches_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shearing_movie(tmp_path / "shear.mrcs", size=256, n=8)
    assert main(["split-frames", str(tmp_path / "shear.mrcs"), "--out", str(tmp_path / "h"),
                 "--align", "--patches", "2"]) == 0
    assert "local motion on 2 x 2 patches, largest shift" in capsys.readouterr().out
    assert main(["split-frames", str(tmp_path / "shear.mrcs"), "--out", str(tmp_path / "h"),
                 "--patches", "3"]) == 2
    assert "--patches needs --align" in capsys.readouterr().err
    assert main(["split-frames", str(tmp_path / "shear.mrcs"), "--out", str(tmp_path / "h"),
                 "--align", "--patches", "1"]) == 2
    assert "at least 2 x 2 patches" in capsys.readouterr().err
