"""Particles for the simulator: 3D blob models, random orientations, projection and splatting."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
from scipy import fft as sfft

from .optics import gaussian_ft, interaction_constant

if TYPE_CHECKING:
    from .params import SimulationParams

_PROTEIN_VOLUME = 1.21  # Å³ per Da
_PROTEIN_POTENTIAL = 2.4  # V, mean inner potential of protein above that of vitreous ice


@dataclass(frozen=True)
class _Template:
    coords: np.ndarray  # (m, 3) blob centres, Å, (x, y, z) about the centre of mass
    sigma: float  # Å, blob width
    weight: float  # V·Å³, integrated potential of one blob
    radius: float  # Å, radius used for spacing particles


@cache
def particle_template(kind: str) -> _Template:
    """Build the blob model of a particle ``kind`` (one of :data:`.params.PARTICLE_KINDS`).

    The blobs are centred on their centre of mass and carry equal shares of the particle's
    integrated potential, set by its mass; the template is built once per kind and cached.
    """
    coords, sigma, mass_kda = {
        "proteasome": _proteasome,
        "globular": _globular,
        "elongated": _elongated,
    }[kind]()
    coords = coords - coords.mean(axis=0)
    weight = mass_kda * 1e3 * _PROTEIN_VOLUME * _PROTEIN_POTENTIAL / len(coords)
    radius = float(np.linalg.norm(coords, axis=1).max() + sigma)
    return _Template(coords.astype(np.float64), sigma, weight, radius)


def _proteasome() -> tuple[np.ndarray, float, float]:
    """α7β7β7α7: four stacked rings of seven subunits of eight blobs, 150 × 115 Å, 700 kDa."""
    rings = ((-57.0, 42.0), (-19.0, 47.0), (19.0, 47.0), (57.0, 42.0))  # (z, radius) in Å
    offsets = np.array([(r, t, z) for r in (-7, 7) for t in (-9, 9) for z in (-7, 7)], float)
    blobs = []
    for z, radius in rings:
        for phi in 2 * np.pi * np.arange(7) / 7:
            c, s = np.cos(phi), np.sin(phi)
            axes = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])  # radial, tangential, axial
            blobs.append(np.array([0, 0, z]) + radius * axes[0] + offsets @ axes)
    return np.concatenate(blobs), 6.5, 700.0


def _globular() -> tuple[np.ndarray, float, float]:
    """Build a lumpy ellipsoid of 60 blobs, semi-axes 42 × 36 × 30 Å, 150 kDa (fixed shape)."""
    points = np.random.default_rng(2).normal(size=(60, 3))
    points *= (np.random.default_rng(3).uniform(0, 1, (60, 1)) ** (1 / 3)) / np.linalg.norm(
        points, axis=1, keepdims=True
    )
    return points * np.array([42.0, 36.0, 30.0]), 7.0, 150.0


def _elongated() -> tuple[np.ndarray, float, float]:
    """Build a two-start helical rod, 240 Å long and 40 Å wide, 250 kDa."""
    t = np.arange(48)
    turns = 2 * np.pi * t / 9
    strands = [np.stack([14 * np.cos(a), 14 * np.sin(a), 5 * t], 1) for a in (turns, turns + np.pi)]
    return np.concatenate(strands), 6.0, 250.0


def place_particles(
    params: SimulationParams, rng: np.random.Generator, extent: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson number of particles at random (x, y) centres in Å, spaced by ``min_separation``."""
    count = rng.poisson(params.particle_density * extent[0] * extent[1] / 1e6)
    weights = np.asarray(params.particle_weights, float)
    kinds = rng.choice(len(weights), size=count, p=weights / weights.sum())
    radii = np.array([particle_template(params.particle_kinds[k]).radius for k in kinds])
    candidates = rng.uniform(0, 1, size=(count, 20, 2)) * np.array([extent[1], extent[0]])
    placed, centres = keep_apart(candidates, radii, params.min_separation)
    return kinds[placed], centres[placed]


def keep_apart(candidates: np.ndarray, radii: np.ndarray, min_separation: float
               ) -> tuple[list[int], np.ndarray]:
    """Place particles in turn at their first candidate far enough from those already placed.

    ``candidates`` is ``(n, tries, 2)``; a candidate is kept when its distance to every placed
    centre is at least ``min_separation`` × the two radii's sum. Returns the indices placed and
    an ``(n, 2)`` array whose rows at those indices are their centres.
    """
    placed: list[int] = []
    centres = np.empty((len(candidates), 2))
    for i in range(len(candidates)):
        gap = min_separation * (radii[i] + radii[placed])
        for point in candidates[i]:
            if np.all(np.sum((centres[placed] - point) ** 2, axis=1) >= gap**2):
                centres[i] = point
                placed.append(i)
                break
    return placed, centres


def random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 3, 3)`` rotation matrices, uniform on SO(3) (Shoemake's unit quaternions)."""
    u1, u2, u3 = rng.uniform(0, 1, size=(3, n))
    w, x = np.sqrt(1 - u1) * np.sin(2 * np.pi * u2), np.sqrt(1 - u1) * np.cos(2 * np.pi * u2)
    y, z = np.sqrt(u1) * np.sin(2 * np.pi * u3), np.sqrt(u1) * np.cos(2 * np.pi * u3)
    rows = [
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ]
    return np.stack(rows, axis=1)


def particle_phase_ft(
    params: SimulationParams,
    rng: np.random.Generator,
    kinds: np.ndarray,
    centres: np.ndarray,
    shape: tuple[int, int],
    k2: np.ndarray,
) -> np.ndarray:
    """rfft2 of the particles' phase shift: rotate, project along z, splat, blur per blob width."""
    rotations = random_rotations(rng, len(kinds))
    by_sigma: dict[float, list[tuple[np.ndarray, np.ndarray]]] = {}
    for k, kind in enumerate(params.particle_kinds):
        chosen = kinds == k
        if not chosen.any():
            continue
        template = particle_template(kind)
        xy = np.einsum("nij,mj->nmi", rotations[chosen, :2], template.coords)
        xy = (xy + centres[chosen, None, :]).reshape(-1, 2) / params.pixel_size
        by_sigma.setdefault(template.sigma, []).append((xy, np.full(len(xy), template.weight)))
    sigma_e = interaction_constant(params.voltage) / params.pixel_size**2
    phase_ft = np.zeros((shape[0], shape[1] // 2 + 1), np.complex64)
    for sigma, parts in by_sigma.items():
        xy, weight = (np.concatenate(a) for a in zip(*parts, strict=True))
        points = splat(xy, weight * sigma_e, shape)
        phase_ft += sfft.rfft2(points, workers=1) * gaussian_ft(k2, sigma)
    return phase_ft


def splat(xy: np.ndarray, weight: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear splat of weighted points (x, y in pixels) into a float32 image."""
    base = np.floor(xy).astype(np.int64)
    frac = xy - base
    index, weights = [], []
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        x, y = base[:, 0] + dx, base[:, 1] + dy
        inside = (x >= 0) & (x < shape[1]) & (y >= 0) & (y < shape[0])
        w = np.abs(1 - dx - frac[:, 0]) * np.abs(1 - dy - frac[:, 1]) * weight
        index.append((y * shape[1] + x)[inside])
        weights.append(w[inside])
    flat = np.bincount(np.concatenate(index), np.concatenate(weights), shape[0] * shape[1])
    return flat.reshape(shape).astype(np.float32)


