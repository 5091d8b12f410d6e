"""Scattering potentials of the atomic models, from ``ttsim3d``, cached on disk and in memory.

Each model's potential is simulated once per *reference spacing* (:data:`REFERENCE_SPACINGS`)
and reused for every micrograph pixel size (:mod:`.projection` resamples the projections), in a
cube of at most :data:`MAX_BOX` voxels a side. Volumes are in volts, the potential in excess of
the vitreous ice it displaces (see :func:`displace_solvent`), and are kept as ``.npz`` (float16)
in ``$CRYODEN_CACHE`` or ``~/.cache/napari-cryoden/potentials``, keyed by model, spacing, voltage
and :data:`VERSION`.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import fft as sfft

from ...io.disk_cache import cache_folder, read_arrays, write_arrays
from ..optics import electron_wavelength
from .structures import AtomicModel, load_structure

__all__ = ["REFERENCE_SPACINGS", "MAX_BOX", "box_size", "potential", "potential_cache_folder",
           "reference_spacing", "VOLT_ANGSTROM2"]

VERSION = 1
"""Bump when the volumes change: the cache key holds it."""
REFERENCE_SPACINGS = (0.5, 1.0, 2.0, 4.0)
"""Å per voxel of the cached volumes."""
MAX_BOX = 336
"""Largest cube side of a cached volume, voxels (a 2.3 MDa ribosome at 1 Å)."""
VOLT_ANGSTROM2 = 47.878
"""h²/(2π m₀ e) in V·Å²: ∫V d³r = this × f_e(0) for an atom (Kirkland); ttsim3d's volumes
sum, times the voxel area (spacing²), to 1.043 λ f_e(0), so volts = ttsim3d × this / (λ spacing)."""
ICE_POTENTIAL = 4.5
"""Mean inner potential of vitreous ice, V: what a particle displaces."""
PROTEIN_VOLUME = 1.21
"""Å³ per Da of protein (and, roughly, nucleic acid) — the volume of ice displaced."""


def potential_cache_folder() -> Path:
    """``$CRYODEN_CACHE`` when set, else ``~/.cache/napari-cryoden/potentials``."""
    chosen = os.environ.get("CRYODEN_CACHE")
    return Path(chosen) if chosen else cache_folder() / "potentials"


def box_size(model: AtomicModel, spacing: float) -> int:
    """Return the even cube side (voxels) holding ``model`` in any orientation at ``spacing`` Å.

    It leaves room for ttsim3d's neighbourhood of each atom (wider for a larger mean B-factor).
    """
    reach = 0.4 * math.sqrt(0.6 * float(model.b_factors.mean())) + 0.2  # ttsim3d's, Å
    return 2 * math.ceil((model.radius + reach) / spacing + 2)


def reference_spacing(model: AtomicModel, pixel_size: float) -> float:
    """Return the reference spacing (Å) to project ``model`` at for ``pixel_size``.

    The coarsest no coarser than ``pixel_size`` whose box fits :data:`MAX_BOX`; the finest that
    fits when none is that fine (the frequencies beyond its Nyquist are then absent).
    """
    fits = [s for s in REFERENCE_SPACINGS if box_size(model, s) <= MAX_BOX]
    fine_enough = [s for s in fits if s <= pixel_size * (1 + 1e-6)]
    return max(fine_enough) if fine_enough else min(fits)


def potential(name: str, spacing: float, voltage: float = 300.0, device: str = "cpu"
              ) -> np.ndarray:
    """float32 ``(n, n, n)`` (z, y, x) potential of model ``name`` in volts at ``spacing`` Å.

    Read from the disk cache, else simulated with ttsim3d on ``device`` and cached; the result
    is also kept in memory (the last eight volumes).
    """
    return _potential(name, float(spacing), float(voltage), device)


@lru_cache(maxsize=8)
def _potential(name: str, spacing: float, voltage: float, device: str) -> np.ndarray:
    path = potential_cache_folder() / f"{name}_{spacing:g}A_{voltage:g}kV_v{VERSION}.npz"
    stored = read_arrays(path, ("volume",))
    if stored is not None:
        return stored["volume"].astype(np.float32)
    model = load_structure(name)
    volume = displace_solvent(simulate(model, spacing, voltage, device), model, spacing)
    stored16 = volume.astype(np.float16)  # as read back: the same image, cache warm or cold
    write_arrays(path, {"volume": stored16})
    return stored16.astype(np.float32)


def simulate(model: AtomicModel, spacing: float, voltage: float, device: str) -> np.ndarray:
    """ttsim3d's potential of ``model`` in volts (no dose weighting, no DQE).

    No upsampling: ttsim3d integrates each atom's potential over the voxel, so the volume is
    the voxel average; its upsampled paths of 3 and 4 give wrong totals in ttsim3d 0.x, and 2
    costs eight times the time for a change of <0.5 % in the total.
    """
    import torch
    from ttsim3d.simulate3d import simulate3d

    n = box_size(model, spacing)
    volume = simulate3d(
        atom_positions_zyx=torch.from_numpy(np.ascontiguousarray(model.xyz[:, ::-1])),
        atom_ids=[str(e) for e in model.elements],
        atom_b_factors=torch.from_numpy(model.b_factors),
        beam_energy_kev=voltage, sim_pixel_spacing=spacing, sim_volume_shape=(n, n, n),
        requested_upsampling=1, apply_dose_weighting=False, apply_dqe=False,
        device=device)
    scale = VOLT_ANGSTROM2 / (electron_wavelength(voltage) * spacing)
    return np.asarray(volume.detach().cpu().numpy(), np.float32) * np.float32(scale)


def displace_solvent(volume: np.ndarray, model: AtomicModel, spacing: float) -> np.ndarray:
    """Return the potential in excess of the ice the particle displaces (an approximation).

    The displaced ice is :data:`ICE_POTENTIAL` over an envelope: the potential blurred by a 3 Å
    Gaussian, thresholded to enclose the model's volume (:data:`PROTEIN_VOLUME` × mass), with a
    1 Å soft edge. Atomic detail of the solvent (hydration shell, ordered water) is ignored.
    """
    voxels = min(volume.size - 1, int(PROTEIN_VOLUME * model.mass_kda * 1e3 / spacing**3))
    blurred = _blur(volume, 3.0 / spacing)
    threshold = np.partition(blurred.ravel(), volume.size - voxels)[volume.size - voxels]
    envelope = _blur((blurred >= threshold).astype(np.float32), 1.0 / spacing)
    return (volume - np.float32(ICE_POTENTIAL) * envelope).astype(np.float32)


def _blur(volume: np.ndarray, sigma: float) -> np.ndarray:
    """Periodic Gaussian blur of a cube, ``sigma`` in voxels."""
    n = volume.shape[0]
    k = sfft.fftfreq(n).astype(np.float32)
    g = np.exp(np.float32(-2 * math.pi**2 * sigma**2) * k**2)
    gr = np.exp(np.float32(-2 * math.pi**2 * sigma**2) * sfft.rfftfreq(n).astype(np.float32)**2)
    spectrum = sfft.rfftn(volume, workers=1)
    spectrum *= g[:, None, None] * g[None, :, None] * gr[None, None, :]
    return np.asarray(sfft.irfftn(spectrum, s=volume.shape, workers=1), np.float32)
