"""The exposure stage: record a noise-free image as a movie, correct it, dose-weight and sum it.

Frame *k* of a ``K``-frame movie at total dose ``D`` e⁻/Å², pixel size ``p`` Å:

1. radiation damage: the image's Fourier components fall as ``exp(-D_k / (2 Ne(q)))``, the
   critical exposure ``Ne`` of Grant & Grigorieff (2015) at the dose ``D_k = (k+1) D/K`` reached
   at the end of the frame (``torch_fourier_filter.dose_weight``; doses ÷ 0.8 at 200 kV);
2. beam-induced drift: the damaged image moves by the frame's trajectory (an exact, periodic
   Fourier shift);
3. counting: ``Poisson(D/K · p² · image)`` electrons per pixel;
4. the detector: its MTF multiplies the signal (the expected counts) and ``√NPS`` the counting
   noise (see :mod:`.detector`);
5. motion correction shifts the frame back by the estimated trajectory, by a Fourier phase shift
   or by bilinear/bicubic resampling (``torch_image_interpolation``, border padding);
6. dose weighting: frequency ``q`` of frame *k* is weighted by ``exp(-D_k / (2 Ne(q)))``,
   normalised over the frames of each sum as RELION and MotionCor do (root sum of squares) or
   not at all (see :class:`.exposure_params.ExposureParams`);
7. the sums of all frames, of the even ones and of the odd ones, optionally Fourier-binned.

Everything after counting is linear, so each sum's *truth* is the same pipeline applied to the
expected counts (the noise-free frames behind the MTF). Sums are divided by ``D · p²``: a sum of
all frames is in the cartoon simulator's units (its mean is the transmission), a half sum has half
that mean. Frames stream one at a time; memory stays flat in the frame count.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...io.resample import binned_shape, fourier_crop
from .contract import NoiseFreeImage
from .detector import detector_filters
from .exposure_params import DrawnExposure, ExposureParams

if TYPE_CHECKING:
    import torch

__all__ = ["ExposedMicrograph", "expose_drawn", "expose_movie"]


@dataclass(frozen=True)
class ExposedMicrograph:
    """The sums of one simulated movie, each with its noise-free truth (float32, same units).

    ``noisy`` sums all frames, ``even`` and ``odd`` the frames 0, 2, … and 1, 3, …; ``truth``,
    ``truth_even`` and ``truth_odd`` are the noise-free frames through the same pipeline.
    ``pixel_size`` is that of the sums (after binning).
    """

    noisy: np.ndarray
    even: np.ndarray
    odd: np.ndarray
    truth: np.ndarray
    truth_even: np.ndarray
    truth_odd: np.ndarray
    pixel_size: float
    exposure: DrawnExposure


def expose_movie(noise_free: NoiseFreeImage, params: ExposureParams, rng: np.random.Generator,
                 frames_out: str | os.PathLike[str] | None = None) -> ExposedMicrograph:
    """Draw an exposure from ``params`` and record ``noise_free`` through it.

    Parameters
    ----------
    noise_free
        The specimen stage's image; its pixel size is the detector's.
    params
        Ranges and choices; this micrograph's values are drawn from them.
    rng
        Source of all randomness (the draws and the electron counts use separate streams).
    frames_out
        If given, the raw frames (after the detector, before motion correction, in units of the
        total dose) are written there as an MRC stack, one by one.
    """
    draws, counts = (np.random.default_rng(s) for s in rng.integers(2**63, size=2))
    return expose_drawn(noise_free, params.draw(draws, noise_free.pixel_size), counts,
                        frames_out)


def expose_drawn(noise_free: NoiseFreeImage, drawn: DrawnExposure, rng: np.random.Generator,
                 frames_out: str | os.PathLike[str] | None = None) -> ExposedMicrograph:
    """Record ``noise_free`` through the exposure ``drawn``; ``rng`` draws the electron counts."""
    movie = _Movie(noise_free.image, drawn)
    halves = [movie.zeros(), movie.zeros()]  # even, odd: (signal+noise, truth) in Fourier
    stream = movie.frames(rng)
    if frames_out is not None:
        stream = movie.written(stream, Path(frames_out))
    for k, pair in enumerate(stream):
        halves[k % 2] += movie.align(k, pair) * movie.weight(k)
    return movie.finish(halves)


class _Movie:
    """What every frame of one movie shares: the grids, the doses and the trajectory in pixels."""

    def __init__(self, image: np.ndarray, drawn: DrawnExposure) -> None:
        import torch

        self.drawn, self.shape = drawn, (int(image.shape[0]), int(image.shape[1]))
        self.electrons = drawn.dose * drawn.pixel_size**2  # per pixel, whole movie
        per_frame = self.electrons / drawn.frames
        self.image_ft = torch.fft.rfft2(torch.from_numpy(image.astype(np.float32))) * per_frame
        mtf, sqrt_nps = detector_filters(drawn.detector, drawn.voltage, self.shape)
        self.mtf, self.sqrt_nps = torch.from_numpy(mtf), torch.from_numpy(sqrt_nps)
        self.ne2 = _twice_critical_exposure(self.shape, drawn.pixel_size)
        scale = 1.0 if drawn.voltage >= 300 else 1 / 0.8  # as RELION: equivalent 300 kV dose
        self.doses = scale * drawn.dose / drawn.frames * np.arange(1, drawn.frames + 1)
        self.shifts = torch.from_numpy(drawn.trajectory / drawn.pixel_size).float()
        self.estimate = torch.from_numpy(drawn.estimate / drawn.pixel_size).float()
        self._grid: torch.Tensor | None = None

    def zeros(self) -> torch.Tensor:
        """Return an empty ``(2, ny, nx//2+1)`` Fourier accumulator."""
        import torch

        return torch.zeros((2, *self.image_ft.shape), dtype=torch.complex64)

    def damage(self, k: int) -> torch.Tensor:
        """Frame ``k``'s exposure filter ``exp(-D_k / (2 Ne))`` on the rfft grid."""
        import torch

        return torch.exp(-float(self.doses[k]) / self.ne2)

    def weight(self, k: int) -> torch.Tensor | float:
        """Frame ``k``'s unnormalised dose weight (1 without dose weighting)."""
        return 1.0 if self.drawn.dose_weighting is None else self.damage(k)

    def frames(self, rng: np.random.Generator) -> Iterator[torch.Tensor]:
        """Yield each frame and its noise-free version, ``(2, ny, nx//2+1)`` in Fourier space."""
        import torch

        for k in range(self.drawn.frames):
            expected_ft = self.image_ft * self.damage(k) * self.phase(self.shifts[k])
            expected = torch.fft.irfft2(expected_ft, s=self.shape)
            counts_ft = torch.fft.rfft2(_count(expected, rng))
            frame_ft = self.sqrt_nps * counts_ft + (self.mtf - self.sqrt_nps) * expected_ft
            yield torch.stack([frame_ft, self.mtf * expected_ft]) / self.electrons

    def align(self, k: int, pair: torch.Tensor) -> torch.Tensor:
        """Shift frame ``k`` (and its truth) back by the estimated trajectory."""
        import torch
        from torch_image_interpolation import sample_image_2d

        if self.drawn.interpolation == "fourier":
            return pair * self.phase(-self.estimate[k])
        if self._grid is None:
            axes = [torch.arange(n, dtype=torch.float32) for n in self.shape]
            self._grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
        real = torch.fft.irfft2(pair, s=self.shape)
        sampled = sample_image_2d(real, self._grid + self.estimate[k],
                                  interpolation=self.drawn.interpolation)  # type: ignore[arg-type]
        return torch.fft.rfft2(sampled.permute(2, 0, 1))

    def phase(self, shift: torch.Tensor) -> torch.Tensor:
        """Return the rfft2 phase ramp that moves an image by ``shift`` (y, x) pixels.

        The ramp is separable, so it is built from two 1D ramps: the same numbers as
        ``torch_fourier_shift.fourier_shift_dft_2d``, at a fraction of the cost on big frames.
        """
        import torch

        fy = torch.fft.fftfreq(self.shape[0])
        fx = torch.fft.rfftfreq(self.shape[1])
        ramp_y = torch.exp(-2j * torch.pi * fy * float(shift[0]))
        ramp_x = torch.exp(-2j * torch.pi * fx * float(shift[1]))
        return (ramp_y[:, None] * ramp_x[None, :]).to(torch.complex64)

    def written(self, stream: Iterator[torch.Tensor], path: Path) -> Iterator[torch.Tensor]:
        """Pass ``stream`` through while writing its raw frames to an MRC stack at ``path``."""
        import mrcfile
        import torch

        from ...io.atomic import atomic_path

        with atomic_path(path) as tmp, mrcfile.new_mmap(
                tmp, shape=(self.drawn.frames, *self.shape), mrc_mode=2, overwrite=True) as mrc:
            mrc.set_image_stack()
            mrc.voxel_size = self.drawn.pixel_size
            for k, pair in enumerate(stream):
                mrc.data[k] = torch.fft.irfft2(pair[0], s=self.shape).numpy()
                yield pair
            mrc.update_header_stats()

    def finish(self, halves: list[torch.Tensor]) -> ExposedMicrograph:
        """Normalise the accumulated sums, bin them and return them in real space."""
        norms = self.normalisers()
        sums = [(halves[0] + halves[1]) * norms[0], halves[0] * norms[1], halves[1] * norms[2]]
        import torch

        ny, nx = self.shape
        my, mx = binned_shape(self.shape, self.drawn.binning)
        binned = (my, mx)
        out = [fourier_crop(torch.fft.irfft2(image, s=self.shape).numpy(), binned)
               for total in sums for image in total]
        noisy, truth, even, truth_even, odd, truth_odd = out
        pixel_size = self.drawn.pixel_size * (ny / binned[0] + nx / binned[1]) / 2
        return ExposedMicrograph(noisy, even, odd, truth, truth_even, truth_odd, pixel_size,
                                 self.drawn)

    def normalisers(self) -> list[Any]:
        """Return the per-frequency weight normalisation of the full, even and odd sums."""
        import torch

        frames = self.drawn.frames
        if self.drawn.dose_weighting != "power":
            return [1.0, 1.0, 1.0]
        parts = [self.zeros().real[0], self.zeros().real[0]]
        for k in range(frames):
            parts[k % 2] += self.damage(k) ** 2
        totals = [parts[0] + parts[1], parts[0], parts[1]]
        counts = [frames, (frames + 1) // 2, frames // 2]
        return [torch.sqrt(n / t) for n, t in zip(counts, totals, strict=True)]


def _twice_critical_exposure(shape: tuple[int, int], pixel_size: float) -> torch.Tensor:
    """``2 Ne(q)`` (e⁻/Å², Grant & Grigorieff 2015) on the rfft grid, as RELION's ``Ne * 2``."""
    import torch
    from torch_fourier_filter.dose_weight import critical_exposure

    from .detector import radial_frequency

    frequency = torch.from_numpy(radial_frequency(shape) / pixel_size).float()
    return (2 * critical_exposure(frequency)).clamp(min=1e-10)


def _count(expected: torch.Tensor, rng: np.random.Generator, rows: int = 256) -> torch.Tensor:
    """Poisson counts of ``expected`` (negative ringing clipped to 0), drawn in row blocks."""
    import torch

    lam = expected.numpy()
    out = np.empty(lam.shape, np.float32)
    for start in range(0, lam.shape[0], rows):
        out[start:start + rows] = rng.poisson(np.maximum(lam[start:start + rows], 0.0))
    return torch.from_numpy(out)
