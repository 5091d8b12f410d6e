"""Robust intensity statistics of micrographs: display contrast and the hot-pixel clip (numpy only).

A counting-mode micrograph often holds a few hot pixels hundreds of times brighter than the rest;
stretching the display from the minimum to the maximum then shows a black image.
:func:`contrast_limits` takes percentiles of a strided sample instead, so a handful of outliers
cannot move them and a 100-frame stack is never read whole: the napari reader and the sample data
both call it, so a user's micrograph and the sample look alike. :func:`clip_hot_pixels` is the
optional pre-denoise clip of Topaz's ``--pixel-cutoff``: per micrograph, pixels at least ``sigma``
standard deviations from the mean are set to the mean.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CONTRAST_PERCENTILES", "MAX_SAMPLE_PIXELS", "clip_hot_pixels", "contrast_limits",
           "sample_pixels"]

CONTRAST_PERCENTILES = (0.5, 99.5)
"""The display range: up to 0.5 % of the pixels may lie beyond either end (hot or dead pixels)."""

MAX_SAMPLE_PIXELS = 1 << 20
"""At most about this many pixels are read to choose the contrast (every pixel of a 1024² image)."""

def sample_pixels(image: np.ndarray, max_pixels: int = MAX_SAMPLE_PIXELS) -> np.ndarray:
    """Sample a micrograph or stack on a strided grid, as a flat float64 array.

    Parameters
    ----------
    image : numpy.ndarray
        ``(y, x)`` or ``(z, y, x)``, possibly memory-mapped: only the sampled rows are read.
    max_pixels : int
        About how many pixels to take; an image no larger is taken whole.

    Returns
    -------
    numpy.ndarray
        The finite sampled pixels: at most three slices of a stack (first, middle, last), every
        k-th row and column of each.
    """
    stack = image if image.ndim == 3 else image[None]
    nz = stack.shape[0]
    slices = sorted({0, nz // 2, nz - 1})  # of a stack: the first, the middle and the last
    per_slice = max(1, max_pixels // len(slices))
    step = max(1, math.ceil(math.sqrt(stack.shape[1] * stack.shape[2] / per_slice)))
    parts = [np.asarray(stack[z, ::step, ::step], dtype=np.float64).ravel() for z in slices]
    pixels = np.concatenate(parts)
    return pixels[np.isfinite(pixels)]


def contrast_limits(image: np.ndarray, max_pixels: int = MAX_SAMPLE_PIXELS) -> tuple[float, float]:
    """Display limits at the 0.5 and 99.5 percentiles of a sample of ``image``'s pixels.

    Parameters
    ----------
    image : numpy.ndarray
        A micrograph ``(y, x)`` or a stack ``(z, y, x)``, any real dtype; see
        :func:`sample_pixels` for what is read.
    max_pixels : int
        About how many pixels the percentiles are taken of.

    Returns
    -------
    tuple of float
        ``(low, high)`` with ``low < high``: the sample's minimum and maximum where the
        percentiles coincide (sparse counts), ``(v, v + 1)`` for a constant image.
    """
    pixels = sample_pixels(image, max_pixels)
    if pixels.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(pixels, CONTRAST_PERCENTILES))
    if high <= low:
        low, high = float(pixels.min()), float(pixels.max())
    return (low, high) if high > low else (low, low + 1.0)


def clip_hot_pixels(image: np.ndarray, sigma: float) -> np.ndarray:
    """Set pixels at least ``sigma`` standard deviations from the mean to the mean, per micrograph.

    As Topaz's ``--pixel-cutoff``: the mean and standard deviation are those of each whole
    micrograph (each slice of a stack on its own), outliers included.

    Parameters
    ----------
    image : numpy.ndarray
        ``(y, x)`` or ``(z, y, x)``, any real dtype; it is not modified.
    sigma : float
        The cutoff in standard deviations, > 0.

    Returns
    -------
    numpy.ndarray
        A float32 copy of ``image`` with the outliers replaced.

    Raises
    ------
    ValueError
        ``sigma`` is not a positive finite number.
    """
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"pixel cutoff: {sigma} must be a positive number of standard deviations")
    out = np.array(image, dtype=np.float32, copy=True)
    for micrograph in out if out.ndim == 3 else out[None]:
        mean = float(micrograph.mean(dtype=np.float64))
        std = float(micrograph.std(dtype=np.float64))
        micrograph[np.abs(micrograph - mean) >= sigma * std] = mean
    return out
