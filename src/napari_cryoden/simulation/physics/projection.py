"""Projections of the cached potentials at any orientation, resampled to a micrograph's pixels.

The projection is a central slice of the volume's 3D Fourier transform (``torch-fourier-slice``),
taken from a padded, interpolation-corrected transform that is computed once per volume and kept
in memory; the projected potential (V·Å) is then Fourier cropped or padded from the reference
spacing to the micrograph's pixel size. That resampling is centred (pixel ``N // 2`` stays the
particle's centre), unlike :mod:`napari_cryoden.io.resample`, whose origin is pixel 0: a
particle's projection must not move by the half pixel the two conventions differ by.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from .potentials import potential

if TYPE_CHECKING:
    import torch

__all__ = ["project", "resample", "resampled_size"]

_MAX_PADDED = 512
"""Largest padded cube side of a kept transform (pad factor less than 2 for boxes over 256)."""
_BATCH = 16


def project(name: str, spacing: float, rotations: np.ndarray, voltage: float = 300.0,
            device: str = "cpu") -> np.ndarray:
    """float32 ``(n, N, N)`` projected potentials (V·Å) of model ``name`` at ``spacing`` Å.

    ``rotations`` are ``(n, 3, 3)`` matrices acting on (x, y, z) column vectors; the beam runs
    along z, so the identity gives ``volume.sum(axis=0) * spacing``. The model's centre is at
    pixel ``(N // 2, N // 2)``.
    """
    import torch

    dft, size = _transform(name, float(spacing), float(voltage), device)
    out = [_slices(dft, size, torch.as_tensor(rotations[i:i + _BATCH], dtype=torch.float32,
                                              device=dft.device))
           for i in range(0, len(rotations), _BATCH)]
    if not out:
        return np.zeros((0, size, size), np.float32)
    return np.concatenate(out) * np.float32(spacing)


@lru_cache(maxsize=8)
def _transform(name: str, spacing: float, voltage: float, device: str) -> tuple[Any, int]:
    """Return the padded, sinc²-corrected, centred rfft of a potential, as project_3d_to_2d."""
    import torch
    import torch.nn.functional as F
    from torch_fourier_slice.volume_utils import separable_sinc2_correction

    volume = torch.from_numpy(potential(name, spacing, voltage, device)).to(device)
    size = volume.shape[-1]
    pad = (_padded_size(size) - size) // 2
    volume = F.pad(volume, [pad] * 6)
    volume = volume / separable_sinc2_correction(tuple(volume.shape), device=volume.device)
    dft = torch.fft.rfftn(torch.fft.ifftshift(volume, dim=(-3, -2, -1)), dim=(-3, -2, -1))
    return torch.fft.fftshift(dft, dim=(-3, -2)), size


def _padded_size(size: int) -> int:
    """Cube side of the padded volume: ×4 up to 256, else ×2 up to :data:`_MAX_PADDED`.

    Padding shrinks the volume's share of the box, so the sinc² correction of the trilinear
    interpolation, exact only between grid points, over-weights the on-grid samples (the total,
    k = 0) less: by ≈ 1 % at ×4 for the smallest models.
    """
    return 4 * size if 4 * size <= 256 else max(size, min(2 * size, _MAX_PADDED))


def _slices(dft: torch.Tensor, size: int, rotations: torch.Tensor) -> np.ndarray:
    """Central slices of ``dft`` back in real space, cropped to ``size``."""
    import torch
    from torch_fourier_slice.slice_extraction import extract_central_slices_rfft_3d

    padded = dft.shape[0]
    slices = extract_central_slices_rfft_3d(volume_rfft=dft, rotation_matrices=rotations)
    images = torch.fft.irfftn(torch.fft.ifftshift(slices, dim=(-2,)), dim=(-2, -1),
                              s=(padded, padded))
    images = torch.fft.fftshift(images, dim=(-2, -1))
    start = padded // 2 - size // 2
    crop = images[..., start:start + size, start:start + size]
    return np.ascontiguousarray(crop.detach().cpu().numpy(), np.float32)


def resampled_size(size: int, spacing: float, pixel_size: float) -> tuple[int, int]:
    """Return ``(padded, out)``: the padded size and the size at ``pixel_size``.

    Padding ``size`` to ``padded`` makes ``padded · spacing / pixel_size`` (nearly) the whole
    number ``out``; the scale error stays below 0.2 % of a patch.
    """
    best = min(range(size, size + 64),
               key=lambda n: (abs(n * spacing / pixel_size - round(n * spacing / pixel_size))
                              > 0.002 * n * spacing / pixel_size, n))
    return best, max(1, round(best * spacing / pixel_size))


def resample(images: np.ndarray, spacing: float, pixel_size: float) -> np.ndarray:
    """Fourier-resample ``(n, N, N)`` images from ``spacing`` to ``pixel_size`` Å per pixel.

    Values (V·Å, an intensive quantity) are kept: a flat image stays flat at the same level;
    the centre pixel ``N // 2`` maps to ``out // 2``. Frequencies beyond the coarser Nyquist
    are dropped; when upsampling, those beyond the reference's are absent (zero).
    """
    import torch

    size = images.shape[-1]
    padded, out = resampled_size(size, spacing, pixel_size)
    if padded == size and out == size:
        return images
    left = padded // 2 - size // 2
    stack = _pad(images, padded, left)
    spectrum = torch.fft.fftshift(torch.fft.fft2(stack), dim=(-2, -1))
    spectrum = _crop_or_pad(spectrum, out)
    image = torch.fft.ifft2(torch.fft.ifftshift(spectrum, dim=(-2, -1))).real
    return (image * (out / padded) ** 2).numpy().astype(np.float32)


def _pad(images: np.ndarray, padded: int, left: int) -> torch.Tensor:
    import torch

    size = images.shape[-1]
    out = np.zeros((len(images), padded, padded), np.float32)
    out[:, left:left + size, left:left + size] = images
    return torch.from_numpy(out)


def _crop_or_pad(spectrum: torch.Tensor, out: int) -> torch.Tensor:
    """Centred crop or zero pad of fftshifted spectra to ``out`` × ``out``."""
    import torch

    size = spectrum.shape[-1]
    if out <= size:
        start = size // 2 - out // 2
        return spectrum[..., start:start + out, start:start + out]
    result = torch.zeros((*spectrum.shape[:-2], out, out), dtype=spectrum.dtype)
    start = out // 2 - size // 2
    result[..., start:start + size, start:start + size] = spectrum
    return result
