"""Split-frame SNR per spatial frequency: Fourier ring correlations of the even/odd halves.

In each ring of spatial frequency ``k`` the Fourier ring correlation of two images is
``FRC = Re Σ A·B* / √(Σ|A|² Σ|B|²)`` and, as for the correlation of whole images,
``SNR(k) = FRC / (1 − FRC)`` (Frank & Al-Ali 1975). :class:`FrequencySNR` gives, per ring, the
raw halves' SNR (``FRC(Re, Ro)``), the denoised SNR ``SNR_mixed(k)² / SNR_raw(k)`` and the
signal transfer ``cov(De, Ro) / cov(Re, Ro)`` (1: the denoiser kept that frequency's signal,
0: it erased it). Rings use fixed edges in cycles per pixel, so micrographs of any size add up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FrequencySNR", "RingSums", "ring_sums"]

N_RINGS = 64
_TERMS = ("re,ro", "de,ro", "re,do", "re,re", "ro,ro", "de,de", "do,do")


@dataclass(frozen=True)
class RingSums:
    """Per-ring sums of cross- and power spectra; ``+`` adds micrographs."""

    sums: dict[str, np.ndarray]
    counts: np.ndarray

    def __add__(self, other: RingSums) -> RingSums:
        """Sum the rings of two micrographs."""
        return RingSums({k: v + other.sums[k] for k, v in self.sums.items()},
                        self.counts + other.counts)

    def result(self, pixel_size: float | None = None) -> FrequencySNR:
        """Return the per-ring SNR of these sums (see :class:`FrequencySNR`)."""
        s = self.sums
        with np.errstate(invalid="ignore", divide="ignore"):
            frc_raw = s["re,ro"] / np.sqrt(s["re,re"] * s["ro,ro"])
            mixed = 0.5 * (s["de,ro"] / np.sqrt(s["de,de"] * s["ro,ro"])
                           + s["re,do"] / np.sqrt(s["re,re"] * s["do,do"]))
            snr_raw, snr_mixed = frc_raw / (1 - frc_raw), mixed / (1 - mixed)
            snr_den = np.where(snr_raw > 0, snr_mixed**2 / snr_raw, np.nan)
            transfer = 0.5 * (s["de,ro"] + s["re,do"]) / s["re,ro"]
        edges = np.linspace(0.0, 0.5, N_RINGS + 1)
        significant = frc_raw > 3.0 / np.sqrt(np.maximum(self.counts, 1))
        return FrequencySNR(frequency=0.5 * (edges[1:] + edges[:-1]), counts=self.counts,
                            frc_raw=frc_raw, frc_mixed=mixed, snr_raw=snr_raw,
                            snr_denoised=np.where(significant, snr_den, np.nan),
                            transfer=np.where(significant, transfer, np.nan),
                            pixel_size=pixel_size)


@dataclass(frozen=True)
class FrequencySNR:
    """Split-frame SNR per ring of spatial frequency.

    ``frequency`` is the ring centre in cycles/px (``/pixel_size`` for 1/Å). ``snr_denoised``
    and ``transfer`` are NaN where the raw halves' FRC is below ``3/√(pixels in the ring)``
    (no signal to measure there).
    """

    frequency: np.ndarray
    counts: np.ndarray
    frc_raw: np.ndarray
    frc_mixed: np.ndarray
    snr_raw: np.ndarray
    snr_denoised: np.ndarray
    transfer: np.ndarray
    pixel_size: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Return every array as a list (NaN stays NaN; the report writer turns it to null).

        Returns
        -------
        dict
            ``frequency`` (cycles/px), ``pixel_size``, and per ring ``counts``, ``frc_raw``,
            ``frc_mixed``, ``snr_raw``, ``snr_denoised``, ``transfer``.
        """
        out: dict[str, Any] = {"pixel_size": self.pixel_size}
        for name in ("frequency", "counts", "frc_raw", "frc_mixed", "snr_raw", "snr_denoised",
                     "transfer"):
            out[name] = [float(v) for v in getattr(self, name)]
        return out


def ring_sums(even: np.ndarray, odd: np.ndarray, denoised_even: np.ndarray,
              denoised_odd: np.ndarray) -> RingSums:
    """Return the per-ring spectral sums of one micrograph's raw and denoised halves.

    Parameters
    ----------
    even, odd, denoised_even, denoised_odd
        ``Re``, ``Ro``, ``De``, ``Do``: 2D arrays of one shape (means are removed).

    Returns
    -------
    RingSums
        Add those of several micrographs, then call :meth:`RingSums.result`.
    """
    spectra = {}
    for name, image in (("re", even), ("ro", odd), ("de", denoised_even), ("do", denoised_odd)):
        a = np.asarray(image, np.float64)
        spectra[name] = np.fft.rfft2(a - a.mean())
    ring = _ring_index(np.shape(even))
    sums = {}
    for term in _TERMS:
        left, right = term.split(",")
        product = (spectra[left] * np.conj(spectra[right])).real
        sums[term] = np.bincount(ring, product.ravel(), N_RINGS + 1)[:N_RINGS]
    return RingSums(sums, np.bincount(ring, minlength=N_RINGS + 1)[:N_RINGS])


def _ring_index(shape: tuple[int, ...]) -> np.ndarray:
    """Ring of each rfft2 coefficient; ``N_RINGS`` for corners beyond Nyquist."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    radius = np.sqrt(fy**2 + fx**2).ravel()
    index = np.floor(radius / 0.5 * N_RINGS).astype(np.int64)
    return np.minimum(index, N_RINGS)


def nyquist_note(pixel_size: float | None) -> str:
    """Say what the frequency axis is in (cycles/px, or 1/Å with a pixel size)."""
    if pixel_size and math.isfinite(pixel_size) and pixel_size > 0:
        return f"1/Å (Nyquist {1 / (2 * pixel_size):.3g} 1/Å at {pixel_size:g} Å/px)"
    return "cycles/px"
