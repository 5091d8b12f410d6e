"""Robust display contrast and the hot-pixel clip (numpy only, no files)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from napari_cryoden.io.intensity import clip_hot_pixels, contrast_limits, sample_pixels
from napari_cryoden.simulation.micrographs import simulate_micrograph
from napari_cryoden.simulation.params import SimulationParams


def _with_hot_pixels(size: int, n_hot: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A simulated micrograph and a copy with ``n_hot`` counting outliers at 500."""
    noisy, _ = simulate_micrograph(SimulationParams(), np.random.default_rng(seed), size)
    hot = noisy.copy()
    rng = np.random.default_rng(seed + 1)
    hot[rng.integers(0, size, n_hot), rng.integers(0, size, n_hot)] = 500.0
    return noisy, hot


def test_twenty_hot_pixels_do_not_set_the_contrast_of_a_2048_micrograph() -> None:
    clean_of_outliers, hot = _with_hot_pixels(2048)
    low, high = contrast_limits(hot)
    assert high < 2.0, "the display range must cover the micrograph, not its 500-valued outliers"
    bulk = np.percentile(clean_of_outliers, [0.5, 99.5])
    np.testing.assert_allclose((low, high), bulk, atol=0.02)  # from a strided sample
    inside = np.mean((clean_of_outliers >= low) & (clean_of_outliers <= high))
    assert 0.98 < inside < 1.0


class _Recording:
    """A stack that records which slices are read (as a memory-mapped file would be paged in)."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.read = data, set()
        self.ndim, self.shape = data.ndim, data.shape

    def __getitem__(self, key: Any) -> np.ndarray:
        self.read.add(key[0])
        return self.data[key]


def test_a_stack_is_sampled_not_read_whole() -> None:
    stack = np.random.default_rng(0).normal(5.0, 1.0, (100, 512, 512)).astype(np.float32)
    recording = _Recording(stack)
    pixels = sample_pixels(recording)  # type: ignore[arg-type]
    assert recording.read == {0, 50, 99}
    assert pixels.size <= 1 << 20
    low, high = contrast_limits(stack)
    assert 2.0 < low < 3.0 and 7.0 < high < 8.0


@pytest.mark.parametrize(("image", "expected"), [
    (np.full((64, 64), 3.0, np.float32), (3.0, 4.0)),  # constant: a valid, non-empty range
    (np.r_[np.zeros(9990), np.ones(10)].reshape(100, 100), (0.0, 1.0)),  # sparse counts
])
def test_degenerate_images_get_a_usable_range(image: np.ndarray,
                                              expected: tuple[float, float]) -> None:
    assert contrast_limits(image) == expected


def test_clip_replaces_only_the_hot_pixels_by_each_micrographs_mean() -> None:
    clean_of_outliers, hot = _with_hot_pixels(256)
    stack = np.stack([hot, hot + 10.0])
    clipped = clip_hot_pixels(stack, 5.0)
    assert stack.max() == 510.0, "the input is not modified"
    is_hot = hot == 500.0
    np.testing.assert_array_equal(clipped[0][~is_hot], clean_of_outliers[~is_hot])
    np.testing.assert_allclose(clipped[0][is_hot], hot.mean(), rtol=1e-6)
    np.testing.assert_allclose(clipped[1][is_hot], hot.mean() + 10.0, rtol=1e-6)  # per slice
    assert clipped.dtype == np.float32 and clipped[0].max() < 2.0


@pytest.mark.parametrize("sigma", [0.0, -3.0, float("nan"), float("inf")])
def test_clip_refuses_a_cutoff_that_is_not_a_positive_number(sigma: float) -> None:
    with pytest.raises(ValueError, match="pixel cutoff"):
        clip_hot_pixels(np.zeros((8, 8)), sigma)
