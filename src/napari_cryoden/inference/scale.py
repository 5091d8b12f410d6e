"""Scale awareness: at which pixel size a micrograph is denoised, and the binning around it.

A model sees pixels, not Ångström: one trained on 1–2.5 Å/px has learnt what particles and
noise look like at those samplings. Each checkpoint records that range
(``Checkpoint.pixel_size_range``); :func:`plan_scale` turns the micrograph's pixel size (its
header's, or the user's), the range and the user's choice into a :class:`ScalePlan`:

- ``--bin F``: bin by ``F`` (>= 1, non-integer allowed), whatever the pixel size.
- ``--working-pixel-size X``: bin by ``X / p``; never upsample (``X < p`` denoises as is, with a
  note); needs a known pixel size.
- ``auto`` (the default): what the model needs. A micrograph finer than the range is binned to
  the range's lower end, the least binning that brings it in range, so that as much detail as
  the model can use is kept (a 0.4 Å super-resolution sum goes to 0.6 Å; a 0.83 Å K3 sum is
  denoised as is, as Topaz does by default). One coarser than the range is denoised as is (never
  upsampled), with a note. An unknown pixel size or a model without a range: no resampling,
  with a note: nothing is guessed.

:func:`denoise_binned` runs a denoiser on the Fourier-cropped micrograph and Fourier-pads the
result back (:mod:`napari_cryoden.io.resample`): the output has the input's shape and pixel size.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..io.intensity import clip_hot_pixels
from ..io.resample import binned_shape, fourier_crop, fourier_pad
from .smoothing import Smoothing

__all__ = ["AUTO", "ScalePlan", "denoise_binned", "plan_file", "plan_scale"]

AUTO = "auto"
"""The default choice: the working pixel size the model's range asks for."""


@dataclass(frozen=True)
class ScalePlan:
    """How a micrograph is resampled for denoising.

    Attributes
    ----------
    factor : float
        Binning factor, >= 1; 1 means denoised at the recorded sampling.
    pixel_size : float or None
        The micrograph's pixel size in Å (header or user); None when unknown.
    note : str or None
        One line for the user when the choice could not be followed as asked (unknown pixel
        size, no range, coarser than the range, a finer working size than the micrograph).
    """

    factor: float = 1.0
    pixel_size: float | None = None
    note: str | None = None

    @property
    def working_pixel_size(self) -> float | None:
        """The pixel size in Å the model sees; None when the pixel size is unknown."""
        return None if self.pixel_size is None else self.pixel_size * self.factor

    def describe(self) -> str:
        """E.g. ``"at 1.2 Å/px (binned ×1.5 from 0.8 Å/px)"`` or ``"at 1.06 Å/px as recorded"``."""
        if self.pixel_size is None:
            binned = f", binned ×{self.factor:.3g}" if self.factor != 1 else ""
            return f"at the recorded sampling (pixel size unknown{binned})"
        if self.factor == 1:
            return f"at {self.pixel_size:.3g} Å/px as recorded"
        return (f"at {self.working_pixel_size:.3g} Å/px (binned ×{self.factor:.3g} from "
                f"{self.pixel_size:.3g} Å/px)")


def plan_scale(pixel_size: float | None, model_range: tuple[float, float] | None, *,
               working: float | str | None = AUTO, bin_factor: float | None = None) -> ScalePlan:
    """Decide the binning of one micrograph.

    Parameters
    ----------
    pixel_size
        The micrograph's pixel size in Å, None when neither header nor user gives one.
    model_range
        ``(low, high)`` in Å the model was trained on; None when it records none.
    working
        ``"auto"`` (or None) or a working pixel size in Å; ignored when ``bin_factor`` is given.
    bin_factor
        An explicit binning factor (>= 1).

    Returns
    -------
    ScalePlan
        The factor and, when the choice could not be followed, a one-line note.

    Raises
    ------
    InputError
        A working pixel size in Å for a micrograph whose pixel size is unknown, or a factor
        below 1.
    """
    if bin_factor is not None:
        if not (math.isfinite(bin_factor) and bin_factor >= 1):
            raise InputError(f"bin factor {bin_factor} must be a number >= 1 (never upsample)")
        return ScalePlan(float(bin_factor), pixel_size)
    if working is None or working == AUTO:
        return _auto(pixel_size, model_range)
    target = float(working)
    if pixel_size is None:
        raise InputError(f"working pixel size {target:g} Å needs the micrograph's pixel size, "
                         "which its header does not record: give it, or a bin factor")
    if target < pixel_size:
        return ScalePlan(1.0, pixel_size, f"working pixel size {target:g} Å is finer than the "
                         f"micrograph's {pixel_size:.3g} Å: denoised as is (never upsampled)")
    return ScalePlan(target / pixel_size, pixel_size)


def plan_file(path: str | os.PathLike[str], model_range: tuple[float, float] | None, *,
              pixel_size: float | None = None, working: float | str | None = AUTO,
              bin_factor: float | None = None) -> ScalePlan:
    """:func:`plan_scale` for a file: its header's pixel size unless ``pixel_size`` is given.

    Raises
    ------
    InputError
        As :func:`plan_scale`, the message starting with the file's name.
    """
    from ..io.images import read_info

    pixel = pixel_size or read_info(path).recorded_pixel_size
    try:
        return plan_scale(pixel, model_range, working=working, bin_factor=bin_factor)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def _auto(pixel_size: float | None, model_range: tuple[float, float] | None) -> ScalePlan:
    if pixel_size is None:
        return ScalePlan(1.0, None, "pixel size unknown (the header records none): not "
                         "resampled; give the pixel size to denoise at the model's")
    if model_range is None:
        return ScalePlan(1.0, pixel_size, "the model records no pixel-size range: not resampled")
    low, high = model_range
    if pixel_size < low:
        return ScalePlan(low / pixel_size, pixel_size)
    if pixel_size > high:
        return ScalePlan(1.0, pixel_size, f"{pixel_size:.3g} Å/px is coarser than the model's "
                         f"range {low:g}–{high:g} Å: denoised as is (never upsampled)")
    return ScalePlan(1.0, pixel_size)


def denoise_binned(run: Callable[..., np.ndarray], image: Any, factor: float, *,
                   pixel_cutoff: float | None = None, smooth: float | Smoothing = 0.0,
                   **options: Any) -> np.ndarray:
    """Run ``run(image, **options)`` on ``image`` binned by ``factor``, then bin the result back.

    Parameters
    ----------
    run
        A denoiser: ``run(image, **options)`` returns an array of the shape it was given
        (e.g. :meth:`~napari_cryoden.inference.load.Denoiser.denoise`).
    image
        ``(ny, nx)`` or ``(n, ny, nx)``.
    factor
        Binning factor >= 1; at 1 ``run`` sees the image itself.
    pixel_cutoff
        Hot-pixel clip (:func:`~napari_cryoden.io.intensity.clip_hot_pixels`), done once,
        first: before binning, so that a hot pixel does not ring through the cropped spectrum,
        and the clipped image is what the smoothing measures the noise against.
    smooth
        σ in pixels of ``image`` of a Gaussian applied to the result, after the binning is
        undone, or a :class:`~.smoothing.Smoothing`; 0 is off.
    **options
        Passed to ``run``.

    Returns
    -------
    numpy.ndarray
        float32 of ``image``'s shape.
    """
    from .smoothing import smoothed

    if pixel_cutoff is not None:
        image = clip_hot_pixels(np.asarray(image), pixel_cutoff)
    small = binned_shape(np.shape(image), factor)
    if small == np.shape(image):
        return smoothed(run(image, **options), smooth, source=image)
    denoised = run(fourier_crop(np.asarray(image), (small[-2], small[-1])), **options)
    return smoothed(fourier_pad(denoised, np.shape(image)[-2:]), smooth, source=image)
