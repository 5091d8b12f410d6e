"""The specimen stage: real atomic models in vitreous ice, imaged through the CTF.

:func:`noise_free_image` draws one micrograph's optics and ice from :class:`SpecimenParams`,
places particles (Poisson count, overlaps rejected) on a canvas padded beyond the field of view,
adds each one's projected potential (V·Å, :mod:`.projection`) at a uniformly random orientation,
turns it into a phase shift with the ice's structural noise and a carbon edge, and forms the
weak-phase image 1 + 2·F⁻¹[Φ·CTF] with ``torch-ctf``'s CTF (sign flipped: torch-ctf's CTF is
+A at k = 0, this image formation needs −A so that particles look dark in underfocus), then
multiplies by the transmission of the ice and carbon. Approximations are listed in
docs/simulator.md ("Physics-grade mode: the specimen").
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sfft

from ..optics import (
    absorption,
    carbon_mask,
    electron_wavelength,
    frequencies,
    interaction_constant,
    texture_phase_ft,
)
from ..params import SimulationParams
from ..particles import keep_apart, random_rotations
from .contract import NoiseFreeImage
from .potentials import box_size, reference_spacing
from .projection import project, resample
from .specimen_params import SpecimenParams
from .structures import load_structure

__all__ = ["noise_free_image", "SpecimenParams"]

ICE_FREE_PATH = 3500.0
"""Å, inelastic mean free path in vitreous ice at 300 kV: transmission = exp(-t / this)."""
_CHUNK = 16  # projections resampled at a time (bounded memory)


def noise_free_image(params: SpecimenParams, rng: np.random.Generator, shape: tuple[int, int],
                     pixel_size: float | None = None, device: str = "cpu") -> NoiseFreeImage:
    """Simulate one noise-free micrograph of ``shape`` ``(ny, nx)`` pixels.

    ``pixel_size`` (Å) overrides the drawn one; ``device`` (``cpu``/``cuda``) runs ttsim3d,
    the projections and the CTF. The same generator state gives the same image.
    """
    optics, sample, ice = (np.random.default_rng(s) for s in rng.integers(2**63, size=3))
    px = float(pixel_size) if pixel_size is not None else float(optics.uniform(*params.pixel_size))
    defocus = float(optics.uniform(*params.defocus))
    astig = float(optics.uniform(*params.astigmatism))
    angle, thickness = float(optics.uniform(0, 180)), float(optics.uniform(*params.ice_thickness))
    cartoon = _cartoon(params, px, thickness)
    ny, nx = int(shape[0]), int(shape[1])
    pad = _padding(params, px)
    canvas = (sfft.next_fast_len(ny + 2 * pad, True), sfft.next_fast_len(nx + 2 * pad, True))
    kinds, centres = _place(params, sample, canvas, px)
    projected = _projected_potential(params, sample, kinds, centres, canvas, px, device)
    carbon = carbon_mask(cartoon, ice, canvas)
    k2, _ = frequencies(canvas, px)
    phase_ft = sfft.rfft2(projected * np.float32(interaction_constant(params.voltage)), workers=1)
    del projected
    phase_ft += texture_phase_ft(cartoon, ice, carbon, k2)
    phase_ft *= transfer(params, canvas, px, (defocus, astig, angle), device)
    del k2
    contrast = sfft.irfft2(phase_ft, s=canvas, workers=1)
    del phase_ft
    image = absorption(cartoon, ice, carbon, canvas).astype(np.float32)
    image *= np.float32(cartoon.transmission) * (1 + 2 * contrast)
    view = np.clip(image[pad:pad + ny, pad:pad + nx], 0.0, None).astype(np.float32)
    in_view = np.all((centres >= pad) & (centres < np.array([pad + ny, pad + nx])), axis=1)
    return NoiseFreeImage(image=view, pixel_size=px, defocus=defocus, astigmatism=astig,
                          astigmatism_angle=angle, particle_centres=(centres[in_view] - pad),
                          particle_kinds=tuple(params.structures[k] for k in kinds[in_view]),
                          carbon=carbon is not None)


def transfer(params: SpecimenParams, shape: tuple[int, int], px: float,
             aberrations: tuple[float, float, float], device: str = "cpu") -> np.ndarray:
    """float32 rfft2-layout transfer of the phase into image contrast: −torch-ctf × envelope.

    ``aberrations`` are the defocus (µm, underfocus positive), the difference of the astigmatic
    axes (µm) and their angle (degrees).
    """
    import torch
    from torch_ctf import calculate_ctf_2d

    defocus, astig, angle = aberrations
    ctf = calculate_ctf_2d(
        defocus=torch.tensor(defocus, device=device), astigmatism=astig / 2,
        astigmatism_angle=angle, voltage=params.voltage, spherical_aberration=params.cs,
        amplitude_contrast=params.amplitude_contrast, phase_shift=0.0, pixel_size=px,
        image_shape=shape, rfft=True, fftshift=False)
    k2, _ = frequencies(shape, px)
    envelope = np.exp(np.float32(-params.b_factor / 4) * k2)
    return -np.asarray(ctf.cpu().numpy(), np.float32) * envelope


def _cartoon(params: SpecimenParams, px: float, thickness: float) -> SimulationParams:
    """Return the cartoon simulator's parameters for its ice, carbon and absorption functions."""
    return SimulationParams(
        pixel_size=px, voltage=params.voltage, ice_thickness=thickness,
        ice_thickness_variation=params.ice_thickness_variation,
        ice_texture=params.ice_texture * math.sqrt(thickness / 300.0),
        carbon_edge_probability=params.carbon_edge_probability,
        carbon_thickness=params.carbon_thickness,
        transmission=math.exp(-thickness / ICE_FREE_PATH))


def _padding(params: SpecimenParams, px: float) -> int:
    """Pixels of canvas beyond the view: half the largest particle, the CTF's delocalisation."""
    half = max(box_size(load_structure(n), reference_spacing(load_structure(n), px))
               * reference_spacing(load_structure(n), px) for n in params.structures) / 2
    delocalisation = electron_wavelength(params.voltage) * params.defocus[1] * 1e4 * 0.35
    return int(math.ceil(max(16 * px, half, delocalisation) / px))


def _place(params: SpecimenParams, rng: np.random.Generator, canvas: tuple[int, int], px: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """Kinds and integer (y, x) pixel centres, placed as the cartoon's ``place_particles``."""
    extent = (canvas[0] * px, canvas[1] * px)
    count = rng.poisson(params.particle_density * extent[0] * extent[1] / 1e6)
    weights = np.asarray(params.weights, float)
    kinds = rng.choice(len(weights), size=count, p=weights / weights.sum())
    radii = np.array([load_structure(params.structures[k]).radius for k in kinds])
    candidates = rng.uniform(0, 1, size=(count, 20, 2)) * np.array(extent)
    placed, centres = keep_apart(candidates, radii, params.min_separation)
    return kinds[placed], np.floor(centres[placed] / px).astype(np.float64)


def _projected_potential(params: SpecimenParams, rng: np.random.Generator, kinds: np.ndarray,
                         centres: np.ndarray, canvas: tuple[int, int], px: float, device: str
                         ) -> np.ndarray:
    """float32 canvas of the particles' projected potential, V·Å."""
    out = np.zeros(canvas, np.float32)
    rotations = random_rotations(rng, len(kinds))
    for k, name in enumerate(params.structures):
        chosen = np.flatnonzero(kinds == k)
        spacing = reference_spacing(load_structure(name), px)
        for start in range(0, len(chosen), _CHUNK):
            batch = chosen[start:start + _CHUNK]
            images = project(name, spacing, rotations[batch], params.voltage, device)
            for image, (y, x) in zip(resample(images, spacing, px), centres[batch], strict=True):
                _add(out, image, int(y), int(x))
    return out


def _add(canvas: np.ndarray, patch: np.ndarray, y: int, x: int) -> None:
    """Add ``patch`` to ``canvas`` with its centre pixel (m // 2) at (y, x), clipped."""
    m = patch.shape[0]
    top, left = y - m // 2, x - m // 2
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + m, canvas.shape[0]), min(left + m, canvas.shape[1])
    if y1 > y0 and x1 > x0:
        canvas[y0:y1, x0:x1] += patch[y0 - top:y1 - top, x0 - left:x1 - left]
