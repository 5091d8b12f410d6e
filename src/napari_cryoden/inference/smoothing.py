"""An optional Gaussian after denoising: a smoother look, for picking, at a measured cost.

The shipped models are trained to be faithful (the noise-free image is their target), so they
keep the background's real structure: ice, carbon, the CTF fringes around particles. Topaz's
``unet`` flattens that background, which is the look users expect of a "denoised" micrograph
and what the region-pair SNR rewards (docs/metrics.md). :class:`Smoothing` lets a user choose
that look knowingly:

- ``Smoothing(σ)`` blurs the denoised output by a Gaussian of σ pixels of the micrograph (after
  any binning is undone);
- ``Smoothing(σ, keep)`` keeps the share ``keep`` of the detail finer than that Gaussian:
  ``blurred + keep · (denoised − blurred)``. It flattens the background as much as a plain
  blur while keeping more of the truth: on the two held-out physics-grade sets of
  docs/quality.md, ``general`` then σ 12 px keeping 0.4 scores more region-pair SNR than σ
  3.5 px alone (3.34 and 1.80 against 2.87 and 1.34 dB) at 1.35 and 1.11 dB more PSNR against
  the truth, and is above Topaz's ``unet`` in region-pair SNR, PSNR and var_B/var_S on both.

``Smoothing()`` (σ 0, the default) is off: the output is the model's. The filter is scipy's
``gaussian_filter`` over each slice's two axes, ``mode="reflect"``, truncated at
:data:`TRUNCATE` σ, as the Gaussian baselines of :mod:`napari_cryoden.evaluation.baselines`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["TRUNCATE", "Smoothing", "as_smoothing", "check_keep", "check_smooth",
           "smooth_margin", "smoothed"]

TRUNCATE = 4.0
"""The kernel's half-width in σ (scipy's default)."""


def check_smooth(sigma: Any, name: str = "smooth") -> float:
    """``sigma`` as a float, or :class:`InputError` unless it is a finite number >= 0.

    Parameters
    ----------
    sigma
        The Gaussian's σ in pixels; 0 or None is off.
    name
        What the error calls it (a flag's name, e.g. ``--smooth``).

    Returns
    -------
    float
        σ (0.0 for None).
    """
    if sigma is None:
        return 0.0
    try:
        value = float(sigma)
    except (TypeError, ValueError):
        raise InputError(f"{name} {sigma!r} must be a number of pixels >= 0 (0 is off)") from None
    if not (math.isfinite(value) and value >= 0):
        raise InputError(f"{name} {sigma!r} must be a number of pixels >= 0 (0 is off)")
    return value


def check_keep(keep: Any, name: str = "keep_detail") -> float:
    """``keep`` as a float, or :class:`InputError` unless it is a number in [0, 1].

    Parameters
    ----------
    keep
        The share of the detail finer than the Gaussian that is kept; 0 or None: none (a plain
        blur).
    name
        What the error calls it (a flag's name, e.g. ``--keep-detail``).
    """
    if keep is None:
        return 0.0
    try:
        value = float(keep)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise InputError(f"{name} {keep!r} must be a number from 0 (a plain blur) to 1 (no blur)")
    return value


@dataclass(frozen=True)
class Smoothing:
    """What is done to a denoised micrograph after the model: a Gaussian, perhaps only in part.

    A Gaussian of ``sigma`` px, keeping ``keep`` of the finer detail
    (``blurred + keep · (denoised − blurred)``); ``sigma`` 0 is off. Built by
    :func:`as_smoothing`, which checks both values.
    """

    sigma: float = 0.0
    keep: float = 0.0

    def __bool__(self) -> bool:
        """Whether it changes anything."""
        return self.sigma > 0 and self.keep < 1

    def describe(self) -> str:
        """Say it in words: ``"a Gaussian of σ 8 px keeping 0.5 of the finer detail"``."""
        if not self:
            return "none"
        kept = f" keeping {self.keep:g} of the finer detail" if self.keep else ""
        return f"a Gaussian of σ {self.sigma:g} px{kept}"

    def record(self) -> dict[str, float]:
        """Its values for a layer's or a file's metadata."""
        return {"smooth_sigma_px": self.sigma, "smooth_keep_detail": self.keep}


def as_smoothing(smooth: float | Smoothing | None, keep_detail: float | None = None,
                 names: tuple[str, str] = ("smooth", "keep_detail")) -> Smoothing:
    """Check a σ (or a :class:`Smoothing`) and the share kept, and build the Smoothing.

    Parameters
    ----------
    smooth
        σ in pixels (0 or None: off), or a :class:`Smoothing`, then returned checked (with
        ``keep_detail``, if given, in place of its own).
    keep_detail
        The share of the finer detail kept, 0 to 1 (None: the Smoothing's, else 0).
    names
        What errors call the two values (flags' names, e.g. ``("--smooth", "--keep-detail")``).

    Raises
    ------
    InputError
        σ is not a number >= 0, the share not one in [0, 1], or a share is given without σ.
    """
    sigma: float | None = smooth.sigma if isinstance(smooth, Smoothing) else smooth
    keep = smooth.keep if isinstance(smooth, Smoothing) and keep_detail is None else keep_detail
    smoothing = Smoothing(check_smooth(sigma, names[0]), check_keep(keep, names[1]))
    if smoothing.keep and not smoothing.sigma:
        raise InputError(f"{names[1]} {smoothing.keep:g} keeps part of the detail that the "
                         f"Gaussian of {names[0]} removes: give {names[0]} > 0 too")
    return smoothing


def smooth_margin(smooth: float | Smoothing) -> int:
    """How many pixels around a box the Gaussian of ``smooth`` reads (its kernel's radius)."""
    smoothing = as_smoothing(smooth)
    return int(TRUNCATE * smoothing.sigma + 0.5) if smoothing else 0


def smoothed(data: np.ndarray, smooth: float | Smoothing) -> np.ndarray:
    """Blur ``data`` (a 2D image or a stack of them) by a Gaussian per slice, in part or whole.

    A :class:`Smoothing` with ``keep`` > 0 keeps that share of the finer detail.

    Parameters
    ----------
    data
        ``(ny, nx)`` or ``(..., ny, nx)``; any real dtype.
    smooth
        σ in pixels (a plain blur), or a :class:`Smoothing`; off returns ``data`` itself.

    Returns
    -------
    numpy.ndarray
        float32 of ``data``'s shape (``data`` unchanged when off).
    """
    smoothing = as_smoothing(smooth)
    if not smoothing:
        return data
    from scipy import ndimage

    out = np.asarray(data, np.float32)
    axes_sigma = (0.0,) * (out.ndim - 2) + (smoothing.sigma, smoothing.sigma)
    blurred = ndimage.gaussian_filter(out, axes_sigma, mode="reflect", truncate=TRUNCATE)
    if not smoothing.keep:
        return blurred
    return blurred + np.float32(smoothing.keep) * (out - blurred)
