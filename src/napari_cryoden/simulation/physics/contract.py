"""What the specimen stage hands the exposure stage: one noise-free image and what it shows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NoiseFreeImage"]


@dataclass(frozen=True)
class NoiseFreeImage:
    """The image an ideal detector would record at infinite dose, and its ground truth.

    Attributes
    ----------
    image : numpy.ndarray
        float32 ``(ny, nx)``: the expected fraction of incident electrons reaching each pixel
        (after the CTF, ice and carbon absorption), as the cartoon simulator's ``truth``; its
        mean is the transmission (≈ 0.6–0.9), it is non-negative.
    pixel_size : float
        Å per pixel of ``image``.
    defocus, astigmatism, astigmatism_angle : float
        Defocus (µm, underfocus positive), astigmatism (µm) and its angle (degrees).
    particle_centres : numpy.ndarray
        ``(n, 2)`` float (y, x) pixel centres of the particles in view.
    particle_kinds : tuple of str
        The atomic model of each particle (its name in the structure library).
    carbon : bool
        Whether a carbon edge is in view.
    """

    image: np.ndarray
    pixel_size: float
    defocus: float
    astigmatism: float
    astigmatism_angle: float
    particle_centres: np.ndarray
    particle_kinds: tuple[str, ...]
    carbon: bool
