"""Fourier cropping and padding: what binning for denoising does to a micrograph."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryoden.io.resample import binned_shape, fourier_crop, fourier_pad


def band_limited(shape: tuple[int, int], band: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A random image of ``shape`` holding only what a grid of ``band`` can hold below Nyquist."""
    rng = np.random.default_rng(seed)
    small = rng.normal(3.0, 1.0, size=band)
    spectrum = np.fft.rfft2(small, norm="forward")
    if band[0] % 2 == 0:
        spectrum[band[0] // 2] = 0  # drop the Nyquist row/column: not representable both ways
    if band[1] % 2 == 0:
        spectrum[:, -1] = 0
    coarse = np.fft.irfft2(spectrum, s=band, norm="forward")
    return fourier_pad(coarse, shape)


@pytest.mark.parametrize(("shape", "small"), [((64, 64), (32, 32)), ((65, 63), (33, 40)),
                                              ((64, 51), (31, 28)), ((96, 130), (64, 87))])
def test_a_band_limited_image_survives_crop_and_pad(shape, small) -> None:
    image = band_limited(shape, small)
    back = fourier_pad(fourier_crop(image, small), shape)
    assert back.shape == shape and back.dtype == np.float32
    np.testing.assert_allclose(back, image, atol=1e-5)


@pytest.mark.parametrize(("shape", "small"), [((64, 64), (21, 43)), ((5, 97, 80), (48, 40))])
def test_the_mean_is_kept_both_ways(shape, small) -> None:
    image = np.random.default_rng(1).gamma(2.0, 5.0, size=shape).astype(np.float32)
    cropped = fourier_crop(image, small)
    assert cropped.shape == (*shape[:-2], *small)
    np.testing.assert_allclose(cropped.mean(axis=(-2, -1)), image.mean(axis=(-2, -1)), rtol=1e-5)
    padded = fourier_pad(cropped, shape[-2:])
    np.testing.assert_allclose(padded.mean(axis=(-2, -1)), image.mean(axis=(-2, -1)), rtol=1e-5)


def test_binning_by_one_is_the_identity_exactly() -> None:
    image = np.random.default_rng(2).normal(size=(37, 50)).astype(np.float32)
    assert binned_shape(image.shape, 1.0) == image.shape
    assert np.array_equal(fourier_crop(image, image.shape), image)
    assert np.array_equal(fourier_pad(image, image.shape), image)


def test_binned_shapes_allow_non_integer_factors_and_never_upsample() -> None:
    assert binned_shape((4092, 5760), 2) == (2046, 2880)
    assert binned_shape((3, 100, 99), 1.5) == (3, 67, 66)
    with pytest.raises(ValueError, match="never upsample"):
        binned_shape((64, 64), 0.5)
    with pytest.raises(ValueError, match="cannot Fourier-crop"):
        fourier_crop(np.zeros((8, 8)), (16, 4))


def test_binning_removes_what_the_coarser_grid_cannot_hold() -> None:
    """A stripe at ~0.4 cycles/px is gone after binning by 2 (Nyquist 0.25); a slow one stays."""
    x = np.arange(128)
    fast = np.tile(np.cos(2 * np.pi * 51 / 128 * x), (64, 1))
    slow = np.tile(np.cos(2 * np.pi * 4 / 128 * x), (64, 1))
    back = fourier_pad(fourier_crop(fast + slow, (32, 64)), (64, 128))
    np.testing.assert_allclose(back, slow, atol=1e-5)
