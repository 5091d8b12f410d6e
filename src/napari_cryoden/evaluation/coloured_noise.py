"""Coloured noise: whether a denoiser still denoises noise correlated between neighbouring pixels.

Noise in a real motion-corrected sum is not white: the detector's MTF, the sub-pixel interpolation
of frame alignment, dose weighting and Fourier binning all correlate it between neighbouring
pixels. :func:`coloured_noise` turns a white noise field into such noise, a Gaussian blur of
``sigma_px`` followed by a rescale back to the field's own variance, so the noisy image's PSNR
stays the same while its noise power moves to low frequencies. :func:`coloured_noise_table` adds
that noise to a noise-free image at several widths and scores, against the truth, the noisy image,
a denoiser and the best Gaussian filter (its width chosen on the truth: an oracle). A denoiser
that treats correlated noise as signal barely beats the noisy image (issue 16).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .baselines import best_gaussian, gaussian_baseline
from .metrics import psnr

__all__ = ["DEFAULT_NOISE_SIGMAS", "ColouredNoiseRow", "coloured_noise", "coloured_noise_table",
           "format_coloured_noise_table"]

DEFAULT_NOISE_SIGMAS = (0.0, 0.6, 1.0)
"""Blur widths (px) of the noise: white, and two realistic colours (issue 16)."""


def coloured_noise(noise: np.ndarray, sigma_px: float) -> np.ndarray:
    """Blur a noise field by a Gaussian of ``sigma_px`` and rescale it to its own variance.

    Parameters
    ----------
    noise
        A 2D noise field (e.g. white Gaussian noise), zero mean.
    sigma_px
        Standard deviation of the Gaussian blur, px; 0 returns the field unchanged (as float64).

    Returns
    -------
    numpy.ndarray
        float64 field of the same shape, mean and variance, correlated over about ``sigma_px``.
    """
    field = np.asarray(noise, np.float64)
    if sigma_px <= 0:
        return field.copy()
    mean = field.mean()
    blurred = ndimage.gaussian_filter(field - mean, sigma_px, mode="wrap")
    spread = blurred.std()
    return mean + blurred * (field.std() / spread if spread > 0 else 0.0)


@dataclass(frozen=True)
class ColouredNoiseRow:
    """PSNR (dB) against the truth of the noisy image, the denoiser and the best Gaussian.

    ``gaussian_sigma`` is the oracle Gaussian filter's width, px, chosen on the truth.
    """

    noise_sigma: float
    noisy_psnr: float
    model_psnr: float
    gaussian_psnr: float
    gaussian_sigma: float

    @property
    def margin_db(self) -> float:
        """The denoiser's PSNR minus the best Gaussian filter's, dB (negative: the filter wins)."""
        return self.model_psnr - self.gaussian_psnr


def coloured_noise_table(denoise: Callable[[np.ndarray], np.ndarray], truth: np.ndarray,
                         noise: np.ndarray, sigmas: Sequence[float] = DEFAULT_NOISE_SIGMAS,
                         data_range: float = 1.0) -> list[ColouredNoiseRow]:
    """Score a denoiser on ``truth`` plus ``noise`` coloured by each width of ``sigmas``.

    Parameters
    ----------
    denoise
        Maps a float32 noisy micrograph to its denoised version (same shape and units).
    truth
        The noise-free micrograph (2D).
    noise
        A white noise field of ``truth``'s shape, e.g. Gaussian noise of the variance of a
        simulated exposure's shot noise; :func:`coloured_noise` colours it for each width.
    sigmas
        Blur widths of the noise, px (0: white).
    data_range
        Peak-to-peak range of the truth, for PSNR (1.0 for the simulator's micrographs).

    Returns
    -------
    list of ColouredNoiseRow
        One row per width, in the order of ``sigmas``.
    """
    truth = np.asarray(truth, np.float32)
    if np.shape(noise) != truth.shape or truth.ndim != 2:
        raise ValueError(f"need a 2D truth and noise of one shape, got {truth.shape} and "
                         f"{np.shape(noise)}")
    rows = []
    for sigma in sigmas:
        noisy = (truth + coloured_noise(noise, sigma)).astype(np.float32)
        best, _ = best_gaussian(noisy, truth, data_range=data_range)
        noisy_db, model_db, gaussian_db = (
            _psnr(image, truth, data_range)
            for image in (noisy, denoise(noisy), gaussian_baseline(noisy, best)))
        rows.append(ColouredNoiseRow(float(sigma), noisy_db, model_db, gaussian_db, float(best)))
    return rows


def format_coloured_noise_table(rows: Sequence[ColouredNoiseRow], name: str = "model") -> str:
    """Return the rows as a Markdown table (PSNR in dB against the truth).

    Parameters
    ----------
    rows
        From :func:`coloured_noise_table`.
    name
        The denoiser's name, for its column.

    Returns
    -------
    str
        A header, a rule and one line per row.
    """
    lines = [f"| noise | noisy | `{name}` | best Gaussian filter (σ) | `{name}` − Gaussian |",
             "| --- | --- | --- | --- | --- |"]
    for row in rows:
        kind = "white (σ 0)" if row.noise_sigma <= 0 else f"coloured, σ {row.noise_sigma:g} px"
        lines.append(f"| {kind} | {row.noisy_psnr:.2f} dB | {row.model_psnr:.2f} dB | "
                     f"{row.gaussian_psnr:.2f} dB ({row.gaussian_sigma:.2g} px) | "
                     f"{row.margin_db:+.2f} dB |")
    return "\n".join(lines)


def _psnr(image: np.ndarray, truth: np.ndarray, data_range: float) -> float:
    diff = np.asarray(image, np.float64) - truth
    return psnr(float(np.mean(diff * diff)), data_range)
