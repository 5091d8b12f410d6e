"""Fourier cropping and padding: a micrograph resampled to another pixel size and back.

Binning a micrograph by a factor ``F`` (Topaz's ``--bin``, Warp's rescaling, RELION's
``--rescale``) keeps the part of its spectrum that the coarser grid can hold: the centred
frequencies ``|k| < m / 2`` of the new size ``m = round(n / F)`` per axis. :func:`fourier_crop`
does that; :func:`fourier_pad` is its way back, placing a spectrum in the middle of a larger one
filled with zeros. Both use the forward-normalised FFT (the 0th coefficient is the mean), so the
mean is kept exactly. On an even size the Nyquist bin has no partner of the opposite sign and is
set to zero on the way in and out, so that every result is real and ``fourier_pad(fourier_crop(x))``
is exactly ``x`` low-passed to ``|k| < m / 2``: an image without content there survives the round
trip unchanged. Non-integer factors are allowed (the pixel size becomes ``p * n / m`` per axis).
A factor of 1 returns the pixels as they are. Stacks are resampled slice by slice (the last two
axes). numpy only: float32 in, float32 out, one complex64 spectrum at a time.
"""

from __future__ import annotations

import numpy as np

__all__ = ["binned_shape", "fourier_crop", "fourier_pad"]


def binned_shape(shape: tuple[int, ...], factor: float) -> tuple[int, ...]:
    """Return the shape of ``shape`` binned by ``factor`` (>= 1) along its last two axes.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` or ``(n, ny, nx)``.
    factor : float
        The binning factor; each of the last two sizes becomes ``round(size / factor)``, at
        least 1.

    Returns
    -------
    tuple of int
        The binned shape (the leading axes unchanged).
    """
    if not factor >= 1:
        raise ValueError(f"binning factor {factor} is below 1 (never upsample)")
    *lead, ny, nx = shape
    return (*lead, max(1, round(ny / factor)), max(1, round(nx / factor)))


def fourier_crop(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample ``image`` onto a coarser grid of ``shape`` by cropping its centred spectrum.

    Parameters
    ----------
    image : numpy.ndarray
        ``(ny, nx)`` or ``(n, ny, nx)``, any real dtype.
    shape : tuple of int
        The new ``(my, mx)``, each at most the image's.

    Returns
    -------
    numpy.ndarray
        float32 ``(my, mx)`` or ``(n, my, mx)`` with the same mean; the image itself (as
        float32) when ``shape`` is its own.
    """
    return _resample(image, shape, larger=False)


def fourier_pad(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample ``image`` onto a finer grid of ``shape`` by zero-padding its centred spectrum.

    Parameters
    ----------
    image : numpy.ndarray
        ``(my, mx)`` or ``(n, my, mx)``, any real dtype.
    shape : tuple of int
        The new ``(ny, nx)``, each at least the image's.

    Returns
    -------
    numpy.ndarray
        float32 ``(ny, nx)`` or ``(n, ny, nx)`` with the same mean: the band-limited
        interpolation of ``image``.
    """
    return _resample(image, shape, larger=True)


def _resample(image: np.ndarray, shape: tuple[int, int], *, larger: bool) -> np.ndarray:
    old = tuple(int(n) for n in np.shape(image)[-2:])
    new = (int(shape[0]), int(shape[1]))
    if new == old:
        return np.asarray(image, dtype=np.float32)
    smaller, bigger = (old, new) if larger else (new, old)
    if min(smaller) < 1 or any(s > b for s, b in zip(smaller, bigger, strict=True)):
        verb = "pad" if larger else "crop"
        raise ValueError(f"cannot Fourier-{verb} {old[0]}x{old[1]} to {new[0]}x{new[1]}")
    stack = np.asarray(image).reshape(-1, *old)
    out = np.empty((stack.shape[0], *new), np.float32)
    for z, plane in enumerate(stack):
        spectrum = np.fft.rfft2(np.asarray(plane, np.float32), norm="forward")
        moved = np.zeros((new[0], new[1] // 2 + 1), spectrum.dtype)
        rows, cols = _band(smaller[0]), (smaller[1] - 1) // 2 + 1  # |kx| < m / 2
        moved[rows, :cols] = spectrum[rows, :cols]
        out[z] = np.fft.irfft2(moved, s=new, norm="forward")
    return out.reshape(*np.shape(image)[:-2], *new)


def _band(m: int) -> np.ndarray:
    """Row indices (negative ones from the end) of the frequencies ``|k| < m / 2``."""
    half = (m - 1) // 2
    return np.r_[0 : half + 1, -half:0].astype(int)
