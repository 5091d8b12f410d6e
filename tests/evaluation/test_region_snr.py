"""Region-pair SNR (DRACO Eq. 11) and its Gaussian baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_cryoden.evaluation.region_snr import (
    region_pairs,
    region_snr,
    region_snr_comparison,
)


def _disks(seed: int = 0, noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A 256² image of dark disks (radius 10 px, contrast 0.5) in white noise; their (x, y)."""
    rng = np.random.default_rng(seed)
    xy = np.array([[60.0, 60.0], [190.0, 70.0], [70.0, 190.0], [180.0, 180.0]])
    yy, xx = np.mgrid[:256, :256]
    clean = np.zeros((256, 256))
    for x, y in xy:
        clean -= 0.5 * ((yy - y) ** 2 + (xx - x) ** 2 < 100)
    return clean + noise * rng.standard_normal(clean.shape), xy


def test_formula_on_one_pair() -> None:
    image = np.zeros((40, 80))
    image[:, 40:] = [[1.0, 3.0] * 20] * 40  # background: mean 2, variance 1
    pairs = region_pairs(image.shape, np.array([[20.0, 20.0]]), 20)
    assert pairs.background.tolist() == [[10, 30]]  # the box to the right, one width over
    image[10:30, 30:50] = np.tile([1.0, 3.0], (20, 10))
    result = region_snr(image, pairs)
    assert result.snr_db == pytest.approx(10 * math.log10((0 - 2) ** 2 / 1.0))


def test_picks_too_close_to_the_edge_are_skipped() -> None:
    pairs = region_pairs((100, 100), np.array([[5.0, 5.0], [50.0, 50.0]]), 20)
    assert len(pairs) == 1 and pairs.skipped == 1


def test_smoothing_outscores_the_raw_image_so_the_baseline_is_shown() -> None:
    raw, xy = _disks()
    result = region_snr_comparison(raw, raw, xy, 24, sigma=8.0)
    json = result.to_json()
    assert json["snr_denoised_db"] == json["snr_raw_db"]  # identity: same score
    assert json["snr_gaussian_db"] > json["snr_raw_db"] + 10  # plain blur wins big
    assert json["n_pairs"] == 4 and json["gaussian_sigma"] == 8.0


def test_pooling_averages_all_pairs() -> None:
    a = region_snr_comparison(_disks(0)[0], _disks(0)[0], _disks(0)[1], 24, file="a")
    b = region_snr_comparison(_disks(1)[0], _disks(1)[0], _disks(1)[1], 24, file="b")
    pooled = (a + b).to_json()
    assert pooled["n_pairs"] == 8 and "file" not in pooled
    assert pooled["snr_raw_db"] == pytest.approx(
        np.mean(np.concatenate([a.raw.terms, b.raw.terms])))
