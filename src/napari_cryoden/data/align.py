"""Whole-frame alignment of a movie before its even/odd sums (``split-frames --align``).

Beam-induced motion shifts each frame by up to several ångströms; summing unaligned frames blurs
the even and odd sums alike and lowers their split-frame SNR. :func:`aligned_frame_sums` reads
the movie twice, one frame at a time:

1. each frame is binned by Fourier cropping to about :data:`ESTIMATION_PIXEL` Å per pixel (the
   estimator uses 300-10 Å, so nothing it looks at is lost; never below
   :data:`ESTIMATION_SIZE` px) and kept; one shift per frame is
   estimated on that small stack with teamtomo's ``torch-motion-correction``
   (:func:`estimate_shifts`: cross-correlation of whole frames, an integer estimate against the
   middle frame, then refined to sub-pixel against the mean of the other frames, smoothed in
   time), and scaled back to full-size pixels;
2. each full-size frame is shifted by Fourier shifts, which move the noise without smoothing it
   (the library's real-space interpolation smoothed it and inflated the halves' split-frame SNR,
   2.25-2.40 against 1.81 on the test movie), and added to its half's sum.

Memory is the binned movie (1/b² of it, b the binning: a 40-frame K3 movie of 0.83 Å pixels,
3.8 GB as float32, is binned 3x to 420 MB) plus two sums and one frame. On a simulated 1024²
movie drifting 8 px (1 Å/px) the halves' split-frame SNR was 0.617 estimated at full size,
0.616 binned 2x, 0.608 binned 4x, against 0.622 with the true shifts and 0.497 unaligned. The
middle frame stays in place; the two halves share the alignment of the whole movie, as
MotionCor2's ``-SplitSum`` does. ``patches`` adds local motion (:mod:`.patch_motion`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io.eer import DEFAULT_EER_GROUPING
from ..io.frames import FrameSums, finished_sums, movie_frames, write_halves

__all__ = ["ESTIMATION_PIXEL", "aligned_frame_sums", "estimate_shifts", "estimation_binning",
           "shift_frame", "split_aligned"]

_BAND, _B_FACTOR = (300.0, 10.0), 500.0
"""The estimator's band-pass (Å) and B-factor (Å²): torch-motion-correction's defaults."""
ESTIMATION_PIXEL = 3.0
"""Shifts are estimated on frames binned to at most this many Å per pixel (Nyquist 6 Å: finer
than the estimator's 10 Å limit)..."""
ESTIMATION_SIZE = 256
"""... and at least this many pixels on their short side."""


def estimate_shifts(frames: np.ndarray, pixel_size: float) -> np.ndarray:
    """Each frame's (y, x) motion in pixels relative to the middle frame, ``(t, 2)``.

    The library is given a pixel spacing of 1 and its band-pass (300-10 Å) and B-factor
    (500 Å²) in pixels of ``pixel_size`` Å: torch-motion-correction 0.6.0 applies its coarse
    whole-frame estimate, held in Å, as a shift in pixels (``correct_motion_fast``), so at any
    other spacing the refined estimate came out ``2 - pixel_size`` times the true motion (+17 %
    at 0.83 Å, nothing at 2 Å).

    Raises
    ------
    InputError
        ``torch-motion-correction`` is not installed.
    """
    torch, tmc = _libraries()
    movie = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    height, width = movie.shape[-2:]
    in_pixels = pixel_filter(tmc, pixel_size)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # one patch: its std over patches is undefined
        coarse = tmc.estimate_global_motion(movie, pixel_spacing=1.0, fourier_filter=in_pixels)
        field, _ = tmc.estimate_motion_cross_correlation_patches(
            movie, 1.0, tmc.PatchSamplingConfig(patch_shape=(height, width), overlap=0.0),
            fourier_filter=in_pixels, initial_deformation_field=coarse)
        data = field.data.detach().mean(dim=(-2, -1))  # (2, t), px
    shifts = (data - data[:, len(movie) // 2, None]).T  # the middle frame fixed
    return np.asarray(shifts.numpy(), dtype=np.float64)


def pixel_filter(tmc: Any, pixel_size: float) -> Any:
    """Return the estimator's band-pass and B-factor in pixels of ``pixel_size`` Å."""
    low, high = _BAND
    return tmc.FourierFilterConfig(b_factor=_B_FACTOR / pixel_size**2,
                                   frequency_range=(low / pixel_size, high / pixel_size))


def shift_frame(frame: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``frame`` moved by ``-shift`` (y, x) px by a Fourier shift (no smoothing), float32."""
    import torch
    from torch_fourier_shift import fourier_shift_image_2d

    image = torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32))
    moved = fourier_shift_image_2d(image, torch.as_tensor(-np.asarray(shift), dtype=torch.float32))
    return np.asarray(moved.numpy(), dtype=np.float32)


def estimation_binning(pixel_size: float, shape: tuple[int, ...]) -> int:
    """Return the binning of frames of ``shape`` for estimation (module constants; at least 1)."""
    by_size = ESTIMATION_PIXEL / pixel_size if pixel_size > 0 else 1.0
    return max(1, min(int(by_size), min(shape[-2:]) // ESTIMATION_SIZE))


def fourier_bin(frame: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``frame`` reduced to ``shape`` by keeping its lowest spatial frequencies, float32."""
    import torch

    image = torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32))
    ny, nx = shape
    spectrum = torch.fft.rfft2(image)
    low = torch.cat([spectrum[: (ny + 1) // 2, : nx // 2 + 1],
                     spectrum[spectrum.shape[0] - ny // 2:, : nx // 2 + 1]])
    small = torch.fft.irfft2(low, s=(ny, nx)) * (ny * nx) / image.numel()
    return np.array(small.numpy(), dtype=np.float32)  # a numpy copy: torch's buffer is freed


def _libraries() -> tuple[Any, Any]:
    try:
        import torch
        import torch_fourier_shift  # noqa: F401
        import torch_motion_correction as tmc
    except ImportError:
        raise InputError("frame alignment needs torch-motion-correction: pip install "
                         "'napari-cryoden[movies]'") from None
    return torch, tmc


def aligned_frame_sums(path: str | os.PathLike[str], *, equal_halves: bool = False,
                       gain: np.ndarray | None = None, eer_grouping: int = DEFAULT_EER_GROUPING,
                       patches: int = 0) -> tuple[np.ndarray, np.ndarray, FrameSums]:
    """:func:`~napari_cryoden.io.frames.frame_sums` of the aligned frames (module docstring).

    ``patches`` N ≥ 2 adds local motion on an N × N grid (:mod:`.patch_motion`); 0: whole-frame
    motion only. The ``FrameSums``'s ``drift`` is the largest shift from the middle frame, px.

    Raises
    ------
    InputError
        As ``frame_sums``, or ``torch-motion-correction`` is not installed.
    """
    _libraries()
    if patches == 1 or patches < 0:
        raise InputError(f"{path}: local motion needs at least 2 x 2 patches, got {patches}")
    options = (equal_halves, gain, eer_grouping)
    with movie_frames(path, *options) as (n_frames, pixel_size, used, frames):
        binned, factors, full = _binned_movie(frames, pixel_size)
    binned_size = pixel_size * float(np.mean(factors))
    small = estimate_shifts(binned, binned_size)
    shifts = small * np.asarray(factors)  # binned px → full-size px, per axis
    drift = float(np.max(np.hypot(shifts[:, 0], shifts[:, 1])))
    move: Any = lambda frame, k: shift_frame(frame, shifts[k])  # noqa: E731
    if patches:
        from .patch_motion import TileShifter, estimate_local_field

        field = estimate_local_field(binned, binned_size, patches, small)
        shifter = TileShifter(field, full, factors)
        move, drift = shifter.shift, shifter.largest()
    del binned
    sums: list[np.ndarray] = []  # even, odd: float64
    with movie_frames(path, *options) as (_, _, _, frames):
        for k, frame in enumerate(frames):
            if k < 2:
                sums.append(np.zeros(frame.shape))
            sums[k % 2] += move(frame, k)
    even, odd = finished_sums(path, *sums)
    return even, odd, FrameSums(Path(path), n_frames, (used + 1) // 2, used // 2, pixel_size,
                                drift=drift)


def _binned_movie(frames: Any, pixel_size: float,
                  ) -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
    """Return the binned frames, the (y, x) full-size px per binned px, and the full size."""
    stack: list[np.ndarray] = []
    factors, full = (1.0, 1.0), (0, 0)
    for frame in frames:
        if not stack:
            b = estimation_binning(pixel_size, frame.shape)
            full = (int(frame.shape[0]), int(frame.shape[1]))
            small = (full[0] // b, full[1] // b)
            factors = (full[0] / small[0], full[1] / small[1])
        stack.append(frame.astype(np.float32) if small == frame.shape
                     else fourier_bin(frame, small))
    return np.stack(stack), factors, full


def split_aligned(movie: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                  equal_halves: bool = False, gain: np.ndarray | None = None,
                  eer_grouping: int = DEFAULT_EER_GROUPING, patches: int = 0) -> FrameSums:
    """:func:`~napari_cryoden.io.frames.split_frames` of the aligned frames."""
    even, odd, sums = aligned_frame_sums(movie, equal_halves=equal_halves, gain=gain,
                                         eer_grouping=eer_grouping, patches=patches)
    return write_halves(even, odd, sums, out_dir)
