"""The baseline every denoiser must beat: the noisy input filtered by the best Gaussian.

:func:`best_gaussian` searches the filter width that brings the noisy input closest (MSE) to the
clean target; :func:`gaussian_baseline` applies a width. See docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .pixels import compare

__all__ = ["DEFAULT_SIGMAS", "GAUSSIAN_SEARCH_CROP", "best_gaussian", "centre_crop",
           "gaussian_baseline"]

DEFAULT_SIGMAS = (0.0, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0, 5.6, 8.0, 11.3, 16.0, 22.6, 32.0)
GAUSSIAN_SEARCH_CROP = 1024  # baselines search the Gaussian sigma on a central crop this big


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Return the central ``size`` × ``size`` crop of a 2D image (the whole image when smaller)."""
    h, w = image.shape
    y, x = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return image[y:y + size, x:x + size]


def gaussian_baseline(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """``noisy`` filtered by a Gaussian of ``sigma`` px in y and x (each slice of a stack)."""
    noisy = np.asarray(noisy, dtype=np.float32)
    if sigma <= 0:
        return noisy
    sigmas = (0.0,) * (noisy.ndim - 2) + (sigma, sigma)
    return ndimage.gaussian_filter(noisy, sigmas)


def best_gaussian(noisy: np.ndarray, clean: np.ndarray, sigmas: Sequence[float] | None = None,
                  data_range: float = 1.0) -> tuple[float, dict[str, float]]:
    """Find the Gaussian filter width that brings ``noisy`` closest (MSE) to ``clean``.

    Parameters
    ----------
    noisy, clean
        A 2D pair (or stacks, filtered slice by slice).
    sigmas
        Candidate widths in px; 0 means no filtering. By default :data:`DEFAULT_SIGMAS`, a
        geometric grid from 0.5 to 32 px, refined by a finer grid around its best point.
    data_range
        For the PSNR of the returned metrics.

    Returns
    -------
    sigma : float
        The best width.
    metrics : dict
        :func:`compare` of the filtered image with ``clean``.
    """
    clean = np.asarray(clean, dtype=np.float32)

    def mse(sigma: float) -> float:
        d = gaussian_baseline(noisy, sigma) - clean
        return float(np.mean(d.astype(np.float64) ** 2))

    grid = sorted({float(s) for s in (DEFAULT_SIGMAS if sigmas is None else sigmas)})
    scores = [mse(s) for s in grid]
    i = int(np.argmin(scores))
    if sigmas is None:  # refine between the neighbours of the coarse optimum
        fine = np.linspace(grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)], 9)[1:-1]
        grid, scores = grid + list(fine), scores + [mse(float(s)) for s in fine]
        i = int(np.argmin(scores))
    best = grid[i]
    return best, compare(gaussian_baseline(noisy, best), clean, data_range)
