"""The colour of a simulated micrograph's noise: its radial power spectrum; the Poisson level."""

from __future__ import annotations

import numpy as np

from .detector import radial_frequency

__all__ = ["poisson_level", "radial_noise_power"]


def radial_noise_power(noise: np.ndarray, bins: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of ``noise`` (e.g. ``noisy - truth``).

    Parameters
    ----------
    noise
        A 2D image.
    bins
        Number of equal-width frequency shells from 0 to Nyquist (0.5 cycles per pixel).

    Returns
    -------
    frequency, power : numpy.ndarray
        The centre of each shell in cycles per pixel, and the mean of ``|FFT|² / N`` over it,
        so that white noise of variance σ² gives σ² in every shell (the DC term is left out).
    """
    values = np.asarray(noise, np.float64)
    power = np.abs(np.fft.rfft2(values - values.mean())) ** 2 / values.size
    radius = radial_frequency(values.shape).ravel()
    shell = np.floor(radius / 0.5 * bins).astype(int)
    keep = (shell < bins) & (radius > 0)
    total = np.bincount(shell[keep], power.ravel()[keep], minlength=bins)
    count = np.bincount(shell[keep], minlength=bins)
    edges = np.linspace(0, 0.5, bins + 1)
    return (edges[:-1] + edges[1:]) / 2, total / np.maximum(count, 1)


def poisson_level(mean: float, dose: float, pixel_size: float, fraction: float = 1.0) -> float:
    """Per-pixel variance of counting noise in a sum, in units of the total dose.

    A sum of ``fraction`` of the movie's frames counts ``fraction · dose · pixel_size² · mean``
    electrons per pixel on average, divided by ``dose · pixel_size²``: its Poisson variance is
    ``fraction · mean / (dose · pixel_size²)``.
    """
    return fraction * mean / (dose * pixel_size**2)
