"""Region-pair SNR: particle boxes against background boxes next to them (Topaz; DRACO Eq. 11).

For N picked particles, a signal box ``s_i`` centred on each and a background box ``b_i`` of the
same size next to it give ``SNR_dB = (10/N)·Σ log10((µ_s − µ_b)² / v_b)`` with ``µ`` a box's mean
and ``v_b`` the background box's variance (Bepler et al. 2020; Dong et al., DRACO, NeurIPS
2024). The measure rewards plain smoothing: blurring shrinks ``v_b`` and keeps ``µ_s − µ_b``, so
a Gaussian of σ = 8 px outscores every published denoiser. :func:`region_snr_comparison`
therefore always scores a Gaussian low-pass baseline beside the raw and denoised images, and the
report pairs it with a fidelity measure (split-frame ``var_B/var_S``, or PSNR against a clean
target).

The background box is the first of the four boxes one box-width to the right, left, below or
above the particle that lies inside the image and whose centre is at least one box-width from
every pick; a pick without such a box (or whose own box leaves the image) is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .baselines import gaussian_baseline

__all__ = ["DEFAULT_BASELINE_SIGMA", "RegionPairs", "RegionSNR", "RegionComparison",
           "region_pairs", "region_snr", "region_snr_comparison"]

DEFAULT_BASELINE_SIGMA = 8.0
_OFFSETS = ((0, 1), (0, -1), (1, 0), (-1, 0))  # (dy, dx) in box widths: right, left, below, above


@dataclass(frozen=True)
class RegionPairs:
    """Top-left corners ``(y, x)`` of the signal and background boxes, one row per pair."""

    signal: np.ndarray
    background: np.ndarray
    box_size: int
    skipped: int = 0

    def __len__(self) -> int:
        """Return the number of (signal, background) pairs."""
        return int(self.signal.shape[0])


def region_pairs(shape: Sequence[int], xy: np.ndarray, box_size: int) -> RegionPairs:
    """Place a background box next to each pick (see the module's docstring).

    Parameters
    ----------
    shape
        ``(ny, nx)`` of the micrograph.
    xy
        ``(n, 2)`` particle centres, x (column) and y (row) in px.
    box_size
        Edge of the square boxes, px.
    """
    ny, nx = int(shape[-2]), int(shape[-1])
    centres = np.asarray(xy, np.float64).reshape(-1, 2)[:, ::-1]  # (y, x)
    half, signal, background = box_size / 2, [], []
    for cy, cx in centres:
        corner = (round(cy - half), round(cx - half))
        if not _inside(corner, box_size, ny, nx):
            continue
        for dy, dx in _OFFSETS:
            other = (cy + dy * box_size, cx + dx * box_size)
            near = np.hypot(*(centres - other).T).min() < box_size
            bg = (round(other[0] - half), round(other[1] - half))
            if _inside(bg, box_size, ny, nx) and not near:
                signal.append(corner)
                background.append(bg)
                break
    return RegionPairs(np.asarray(signal, int).reshape(-1, 2),
                       np.asarray(background, int).reshape(-1, 2), box_size,
                       len(centres) - len(signal))


def _inside(corner: tuple[int, int], size: int, ny: int, nx: int) -> bool:
    return 0 <= corner[0] and 0 <= corner[1] and corner[0] + size <= ny and corner[1] + size <= nx


@dataclass(frozen=True)
class RegionSNR:
    """Region-pair SNR of one image: ``terms`` holds ``10·log10((µs−µb)²/vb)`` per pair."""

    terms: np.ndarray = field(repr=False)

    @property
    def snr_db(self) -> float:
        """The mean of the per-pair terms, dB (NaN without pairs)."""
        finite = self.terms[np.isfinite(self.terms)]
        return float(finite.mean()) if finite.size else math.nan

    def __add__(self, other: RegionSNR) -> RegionSNR:
        """Pool the pairs of two images."""
        return RegionSNR(np.concatenate([self.terms, other.terms]))


def region_snr(image: np.ndarray, pairs: RegionPairs) -> RegionSNR:
    """Return the region-pair SNR of ``image`` over the boxes of :func:`region_pairs`."""
    b = pairs.box_size
    terms = []
    for (sy, sx), (by, bx) in zip(pairs.signal, pairs.background, strict=True):
        s = np.asarray(image[sy:sy + b, sx:sx + b], np.float64)
        g = np.asarray(image[by:by + b, bx:bx + b], np.float64)
        v = g.var()
        terms.append(10 * math.log10((s.mean() - g.mean()) ** 2 / v) if v > 0 else math.nan)
    return RegionSNR(np.asarray(terms, np.float64))


@dataclass(frozen=True)
class RegionComparison:
    """Region-pair SNR of the raw image, the denoised one and the Gaussian baseline."""

    raw: RegionSNR
    denoised: RegionSNR
    gaussian: RegionSNR
    sigma: float
    box_size: int
    skipped: int = 0
    file: str | None = None

    def __add__(self, other: RegionComparison) -> RegionComparison:
        """Pool two micrographs' pairs (the file name is dropped)."""
        return RegionComparison(self.raw + other.raw, self.denoised + other.denoised,
                                self.gaussian + other.gaussian, self.sigma, self.box_size,
                                self.skipped + other.skipped)

    def to_json(self) -> dict[str, Any]:
        """Return the three SNRs in dB with the pair count, box size and baseline width.

        Returns
        -------
        dict
            ``snr_raw_db``, ``snr_denoised_db``, ``snr_gaussian_db``, ``gaussian_sigma``,
            ``n_pairs``, ``skipped``, ``box_size`` and ``file`` when known.
        """
        head = {} if self.file is None else {"file": self.file}
        return {**head, "n_pairs": int(self.raw.terms.size), "skipped": self.skipped,
                "box_size": self.box_size, "snr_raw_db": self.raw.snr_db,
                "snr_denoised_db": self.denoised.snr_db, "snr_gaussian_db": self.gaussian.snr_db,
                "gaussian_sigma": self.sigma}


def region_snr_comparison(raw: np.ndarray, denoised: np.ndarray, xy: np.ndarray,
                          box_size: int, *, sigma: float = DEFAULT_BASELINE_SIGMA,
                          file: str | None = None) -> RegionComparison:
    """Score raw, denoised and Gaussian-filtered (``sigma`` px) images on the same box pairs.

    Parameters
    ----------
    raw, denoised
        The micrograph before and after denoising (2D, one shape).
    xy
        ``(n, 2)`` particle centres, x (column) and y (row) in px.
    box_size
        Edge of the square boxes, px (about the particle's diameter).
    sigma
        Width of the low-pass baseline, px.
    file
        The micrograph's name, kept in the result.
    """
    if np.shape(raw) != np.shape(denoised) or np.ndim(raw) != 2:
        raise ValueError(f"need two 2D images of one shape, got {np.shape(raw)} and "
                         f"{np.shape(denoised)}")
    pairs = region_pairs(np.shape(raw), xy, int(box_size))
    low_pass = gaussian_baseline(raw, sigma)
    return RegionComparison(region_snr(raw, pairs), region_snr(denoised, pairs),
                            region_snr(low_pass, pairs), float(sigma), int(box_size),
                            pairs.skipped, file)
