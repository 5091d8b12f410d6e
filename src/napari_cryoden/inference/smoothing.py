"""An optional Gaussian after denoising: a smoother look, for picking, at a measured cost.

The shipped models are trained to be faithful (the noise-free image is their target), so they
keep the background's real structure: ice, carbon, the CTF fringes around particles. Topaz's
``unet`` flattens that background, which is the look users expect of a "denoised" micrograph
and what the region-pair SNR rewards (docs/metrics.md). :class:`Smoothing` lets a user choose
that look knowingly:

- ``Smoothing(σ)`` blurs the denoised output by a Gaussian of σ pixels of the micrograph (after
  any binning is undone), over the whole image;
- ``Smoothing(σ, keep)`` keeps the share ``keep`` of the detail finer than that Gaussian:
  ``blurred + keep · (denoised − blurred)``. It flattens the background as much as a plain
  blur while keeping more of the truth: on the two held-out physics-grade sets of
  docs/quality.md, ``general`` then σ 12 px keeping 0.4 scores more region-pair SNR than σ
  3.5 px alone (3.34 and 1.81 against 2.87 and 1.35 dB) at 1.34 and 1.11 dB more PSNR against
  the truth.

- ``Smoothing(σ, keep, where="background")`` does the same only where the denoised image
  has little detail: the share of the detail kept at a pixel is
  ``keep + (1 − keep) · r² / (1 + r²)``, with ``r`` the detail's local energy (its square,
  averaged by a Gaussian of :data:`DETAIL_WINDOW` px) over :data:`THRESHOLD` times the
  background's: the detail's median energy over :func:`sample_boxes`, but at most
  :data:`NOISE_SHARE` of the input's noise variance there (the robust variance of input −
  output). Particles, carbon edges and their fringes, whose detail is strong, keep it; flat
  ice is smoothed. The cap is what a denoiser leaves of the noise: on the tuning sets the
  median was 0.35–3.7 % of the noise variance; where it is more, the median lies on structure,
  not on left-over noise (the cartoon sample's textured "ice": 235 %; one of six crowded
  physics-grade micrographs), and the threshold comes from the noise instead, so strong
  structure is kept. Weak particles crowded over most of the sample boxes are not protected
  by it (docs/quality.md, "Crowded micrographs").
  :data:`FLAT_BACKGROUND` (σ 16 px), the default of ``cryoden denoise`` and the Denoise
  panel, was chosen on two tuning sets of physics-grade micrographs and then scored on the
  two held-out sets of docs/quality.md: 0.6–1.0 dB less PSNR against the truth than
  ``general`` alone, 4.7–4.8 dB more region-pair SNR, above Topaz's ``unet`` on both
  measures and on var_B/var_S.

``Smoothing()`` (σ 0, the default of :func:`napari_cryoden.denoise`) is off: the output is
the model's. The filter is scipy's
``gaussian_filter`` over each slice's two axes, ``mode="reflect"``, truncated at
:data:`TRUNCATE` σ, as the Gaussian baselines of :mod:`napari_cryoden.evaluation.baselines`.
A region of a micrograph gets the pixels of a whole-image run: it is smoothed with a margin of
:func:`smooth_margin` pixels, and for ``"background"`` the threshold comes from the same
:func:`sample_boxes` of the whole micrograph (:func:`sampled_threshold`). The
``"background"`` rule needs the image the model was given (``source``) for the noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from .region import Box

__all__ = ["DETAIL_WINDOW", "FLAT_BACKGROUND", "NOISE_SHARE", "THRESHOLD", "TRUNCATE", "WHERE",
           "Smoothing", "as_smoothing", "check_keep", "check_smooth", "check_where",
           "noise_variance", "sample_boxes", "sampled_threshold", "smooth_margin", "smoothed"]

TRUNCATE = 4.0
"""The kernel's half-width in σ (scipy's default)."""

WHERE = ("background", "everywhere")
"""Where a :class:`Smoothing` applies: where the detail is weak, or over the whole image."""

DETAIL_WINDOW = 8.0
"""σ (px) of the Gaussian that averages the detail's square into its local energy."""

THRESHOLD = 10.0
"""Detail whose local energy is this many times the background's keeps half of the smoothing off."""

NOISE_SHARE = 0.05
"""The background's detail energy is taken as at most this share of the input's noise variance."""

SAMPLE_GRID = 4
SAMPLE_BOX = 64
"""The median is taken over a ``SAMPLE_GRID``² grid of boxes of ``SAMPLE_BOX``² px."""


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


def check_where(where: Any, name: str = "smooth_where") -> str:
    """``where`` if it is one of :data:`WHERE`, else :class:`InputError` naming the choices."""
    if where not in WHERE:
        raise InputError(f"{name} {where!r} must be one of: {', '.join(WHERE)}")
    return str(where)


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
    (``blurred + keep · (denoised − blurred)``), over the whole image (``where``
    ``"everywhere"``) or where the detail is weak (``"background"``; see the module's
    docstring); ``sigma`` 0 is off. Built by :func:`as_smoothing`, which checks the values.
    """

    sigma: float = 0.0
    keep: float = 0.0
    where: str = "everywhere"

    def __bool__(self) -> bool:
        """Whether it changes anything."""
        return self.sigma > 0 and self.keep < 1

    def describe(self) -> str:
        """Say it in words: ``"a Gaussian of σ 8 px keeping 0.5 of the finer detail"``."""
        if not self:
            return "none"
        kept = f" keeping {self.keep:g} of the finer detail" if self.keep else ""
        where = " on the background" if self.where == "background" else ""
        return f"a Gaussian of σ {self.sigma:g} px{where}{kept}"

    def record(self) -> dict[str, float | str]:
        """Its values for a layer's or a file's metadata."""
        return {"smooth_sigma_px": self.sigma, "smooth_keep_detail": self.keep,
                "smooth_where": self.where}


FLAT_BACKGROUND = Smoothing(16.0, 0.0, "background")
"""The flat look that met issue 16's targets on both held-out sets (``--smooth 16``)."""


def as_smoothing(smooth: float | Smoothing | None, keep_detail: float | None = None,
                 names: tuple[str, ...] = ("smooth", "keep_detail", "smooth_where"),
                 where: str | None = None) -> Smoothing:
    """Check a σ (or a :class:`Smoothing`) and the share kept, and build the Smoothing.

    Parameters
    ----------
    smooth
        σ in pixels (0 or None: off), or a :class:`Smoothing`, then returned checked (with
        ``keep_detail``, if given, in place of its own).
    keep_detail
        The share of the finer detail kept, 0 to 1 (None: the Smoothing's, else 0).
    names
        What errors call the values (flags' names, e.g. ``("--smooth", "--keep-detail",
        "--smooth-where")``); a third name defaults to ``smooth_where``.
    where
        ``"background"`` or ``"everywhere"`` (None: the Smoothing's, else everywhere).

    Raises
    ------
    InputError
        σ is not a number >= 0, the share not one in [0, 1], a share is given without σ, or
        ``where`` is not one of :data:`WHERE`.
    """
    sigma: float | None = smooth.sigma if isinstance(smooth, Smoothing) else smooth
    keep = smooth.keep if isinstance(smooth, Smoothing) and keep_detail is None else keep_detail
    if where is None:
        where = smooth.where if isinstance(smooth, Smoothing) else "everywhere"
    where_name = names[2] if len(names) > 2 else "smooth_where"
    smoothing = Smoothing(check_smooth(sigma, names[0]), check_keep(keep, names[1]),
                          check_where(where, where_name))
    if smoothing.keep and not smoothing.sigma:
        raise InputError(f"{names[1]} {smoothing.keep:g} keeps part of the detail that the "
                         f"Gaussian of {names[0]} removes: give {names[0]} > 0 too")
    return smoothing


def _radius(sigma: float) -> int:
    """Return the radius in pixels of scipy's Gaussian kernel of ``sigma`` (at TRUNCATE)."""
    return int(TRUNCATE * sigma + 0.5)


def smooth_margin(smooth: float | Smoothing) -> int:
    """Return how many pixels around a box the smoothing reads.

    The Gaussian's radius, and for ``"background"`` that of the detail's energy too.
    """
    smoothing = as_smoothing(smooth)
    if not smoothing:
        return 0
    window = _radius(DETAIL_WINDOW) if smoothing.where == "background" else 0
    return _radius(smoothing.sigma) + window


def sample_boxes(shape: tuple[int, ...]) -> list[Box]:
    """Return the boxes over which the detail's median energy is taken.

    A 4 × 4 grid: one box of up to 64² px at the centre of each cell of a micrograph of
    ``shape`` (its last two axes).
    """
    ny, nx = shape[-2:]
    size_y, size_x = max(min(SAMPLE_BOX, ny // SAMPLE_GRID), 1), max(
        min(SAMPLE_BOX, nx // SAMPLE_GRID), 1)
    boxes = []
    for i in range(SAMPLE_GRID):
        for j in range(SAMPLE_GRID):
            y0 = min(max(int((i + 0.5) * ny / SAMPLE_GRID) - size_y // 2, 0), ny - size_y)
            x0 = min(max(int((j + 0.5) * nx / SAMPLE_GRID) - size_x // 2, 0), nx - size_x)
            boxes.append(Box(y0, y0 + size_y, x0, x0 + size_x))
    return boxes


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(image, sigma, mode="reflect", truncate=TRUNCATE)


def _detail(image: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return a 2D image's blur, its detail (image − blur) and the detail's local energy."""
    blurred = _blur(image, sigma)
    detail = image - blurred
    return blurred, detail, _blur(detail * detail, DETAIL_WINDOW)


def noise_variance(residuals: list[np.ndarray]) -> float:
    """Return the robust variance of input − output: (1.4826 × its median absolute deviation)².

    Hot pixels and the particles' edges, which a faithful denoiser leaves in the residual only
    at a few pixels, do not move it.
    """
    values = np.concatenate([np.asarray(r, np.float64).ravel() for r in residuals])
    return float((1.4826 * np.median(np.abs(values - np.median(values)))) ** 2)


def _threshold(energies: list[np.ndarray], residuals: list[np.ndarray]) -> float:
    median = float(np.median(np.concatenate([e.ravel() for e in energies])))
    return THRESHOLD * min(median, NOISE_SHARE * noise_variance(residuals))


def sampled_threshold(denoise_box: Callable[[Box], np.ndarray], source: Any,
                      smooth: Smoothing) -> float:
    """Return the ``"background"`` threshold of a micrograph from its samples.

    For a region: each of :func:`sample_boxes` is denoised with a margin of
    :func:`smooth_margin` (clipped to the micrograph) by ``denoise_box(box)``, which must give
    the pixels of a whole-image run of ``source`` (the 2D image the model is given); the
    result equals the threshold of the whole image.
    """
    shape = np.shape(source)
    margin, energies, residuals = smooth_margin(smooth), [], []
    for box in sample_boxes(shape):
        outer = box.grown(margin, shape)
        output = np.asarray(denoise_box(outer), np.float32)
        energies.append(_detail(output, smooth.sigma)[2][box.within(outer)])
        residuals.append(np.asarray(source[box.slices], np.float32) - output[box.within(outer)])
    return _threshold(energies, residuals)


def _flatten_background(image: np.ndarray, source: np.ndarray | None, smooth: Smoothing,
                        threshold: float | None) -> np.ndarray:
    blurred, detail, energy = _detail(image, smooth.sigma)
    if threshold is None:
        if source is None:
            raise ValueError("smoothing the background needs the image the model was given "
                             "(source=), for its noise, or a threshold")
        boxes = sample_boxes(image.shape)
        threshold = _threshold([energy[box.slices] for box in boxes],
                               [source[box.slices] - image[box.slices] for box in boxes])
    with np.errstate(divide="ignore", over="ignore"):
        r2 = np.square(energy / np.float32(threshold)) if threshold > 0 else np.where(
            energy > 0, np.float32(np.inf), np.float32(0))
        share = 1 - 1 / (1 + r2)  # r² / (1 + r²); 1 where r is infinite
    keep = np.float32(smooth.keep)
    return blurred + (keep + (1 - keep) * share) * detail


def smoothed(data: np.ndarray, smooth: float | Smoothing, threshold: float | None = None,
             source: Any = None) -> np.ndarray:
    """Blur ``data`` (a 2D image or a stack of them) by a Gaussian per slice, in part or whole.

    A :class:`Smoothing` with ``keep`` > 0 keeps that share of the finer detail; with ``where``
    ``"background"`` it keeps the detail where it is strong (the module's docstring).

    Parameters
    ----------
    data
        ``(ny, nx)`` or ``(..., ny, nx)``; any real dtype.
    smooth
        σ in pixels (a plain blur), or a :class:`Smoothing`; off returns ``data`` itself.
    threshold
        For ``"background"`` on a region of a micrograph: the whole micrograph's threshold
        (:func:`sampled_threshold`); None: each slice's own, from its :func:`sample_boxes`
        and ``source``.
    source
        For ``"background"`` without ``threshold``: what the model was given, of ``data``'s
        shape (the noise of ``source − data`` caps the threshold).

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
    if smoothing.where == "background":
        flat = out.reshape(-1, *out.shape[-2:])
        sources: list[np.ndarray | None] = [None] * len(flat)
        if threshold is None and source is not None:
            if np.shape(source) != out.shape:
                raise ValueError(f"source of shape {np.shape(source)} is not the output's "
                                 f"{out.shape}")
            sources = list(np.asarray(source, np.float32).reshape(flat.shape))
        return np.stack([_flatten_background(image, src, smoothing, threshold)
                         for image, src in zip(flat, sources, strict=True)]).reshape(out.shape)
    axes_sigma = (0.0,) * (out.ndim - 2) + (smoothing.sigma, smoothing.sigma)
    blurred = ndimage.gaussian_filter(out, axes_sigma, mode="reflect", truncate=TRUNCATE)
    if not smoothing.keep:
        return blurred
    return blurred + np.float32(smoothing.keep) * (out - blurred)
