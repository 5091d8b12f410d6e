"""The baseline every denoiser must beat: the noisy input filtered by a Gaussian.

:func:`best_gaussian` searches the filter width that brings the noisy input closest (MSE) to the
clean target; :func:`gaussian_curve` measures that MSE at the widths :data:`FIT_SIGMAS`, and
:func:`width_best_on` reads the best of some micrographs' curves: on the scored micrograph's own
that is the oracle (an upper bound), and :func:`leave_one_out_sigmas` chooses each micrograph's
width on the *other* micrographs, so the fitted baseline never sees what it is scored on;
:func:`gaussian_baseline` applies a width. See docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .pixels import compare

__all__ = ["DEFAULT_SIGMAS", "FIT_SIGMAS", "GAUSSIAN_SEARCH_CROP", "best_gaussian", "centre_crop",
           "gaussian_baseline", "gaussian_curve", "leave_one_out_sigmas", "width_best_on"]

DEFAULT_SIGMAS = (0.0, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0, 5.6, 8.0, 11.3, 16.0, 22.6, 32.0)
GAUSSIAN_SEARCH_CROP = 1024  # baselines search the Gaussian sigma on a central crop this big
FIT_SIGMAS = (0.0,) + tuple(float(0.5 * 2 ** (k / 4)) for k in range(25))
"""Widths a fitted baseline chooses from: none, and 0.5 to 32 px at four steps an octave."""


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


def gaussian_curve(noisy: np.ndarray, clean: np.ndarray,
                   sigmas: Sequence[float] = FIT_SIGMAS) -> np.ndarray:
    """Return the MSE of ``noisy`` filtered by each width against ``clean`` (central crops).

    The crops are :data:`GAUSSIAN_SEARCH_CROP` px at most; a stack's first slice is used.
    """
    if noisy.ndim == 3:
        noisy, clean = noisy[0], clean[0]
    noisy = centre_crop(np.asarray(noisy, np.float32), GAUSSIAN_SEARCH_CROP)
    clean = centre_crop(np.asarray(clean, np.float32), GAUSSIAN_SEARCH_CROP)
    return np.array([float(np.mean((gaussian_baseline(noisy, s) - clean).astype(np.float64)
                                   ** 2)) for s in sigmas])


def width_best_on(curves: Sequence[np.ndarray], sigmas: Sequence[float] = FIT_SIGMAS) -> float:
    """Return the width of lowest summed MSE over the given :func:`gaussian_curve` s."""
    return float(sigmas[int(np.argmin(np.sum(curves, axis=0)))])


def leave_one_out_sigmas(curves: Sequence[np.ndarray],
                         sigmas: Sequence[float] = FIT_SIGMAS) -> list[float]:
    """For each micrograph, the width best on all the *other* micrographs together.

    Parameters
    ----------
    curves
        :func:`gaussian_curve` of each micrograph (at least two).
    sigmas
        The widths the curves were measured at.

    Returns
    -------
    list of float
        One width per micrograph: the minimum of the summed curves of the others.
    """
    if len(curves) < 2:
        raise ValueError("a width chosen on the other micrographs needs at least two")
    total = np.sum(curves, axis=0)
    return [width_best_on([total - curve], sigmas) for curve in curves]
