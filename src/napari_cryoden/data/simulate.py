"""Simulated cryo-EM micrographs with a known noise-free ground truth.

Each micrograph is formed as in a transmission electron microscope, simplified to stay fast
(numpy FFTs only; a 1024² micrograph takes a fraction of a second on one core):

1. particles (a 20S-proteasome-like barrel, a globular and an elongated kind), each a cloud of
   Gaussian blobs, are rotated at random in 3D and projected along the beam into a projected
   Coulomb potential (V·Å);
2. the potential becomes a phase shift, joined by the structural noise of the vitreous ice and,
   on some micrographs, a carbon film beyond the edge of the hole;
3. the weak-phase image forms through the contrast transfer function (defocus, astigmatism,
   spherical aberration, amplitude contrast, B-factor envelope): particles look dark;
4. ice-thickness variation and carbon absorb electrons. The result is the *clean* micrograph, the
   fraction of incident electrons reaching each pixel: it lies in [0, 1] with mean ≈ 0.69;
5. the *noisy* micrograph counts electrons, ``Poisson(dose · pixel_size² · clean) / (dose ·
   pixel_size²)`` plus Gaussian read noise, in the same units as the clean one.

See docs/simulator.md for the physics, the parameters and a picture.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy import fft as sfft

from napari_cryoden.config import ConfigError

__all__ = [
    "PARTICLE_KINDS",
    "SimulationParams",
    "SimulatedMicrograph",
    "SimulatedDataset",
    "simulate_exposure",
    "simulate_micrograph",
    "simulate_dataset",
    "electron_wavelength",
    "ctf_zero",
]

PARTICLE_KINDS = ("proteasome", "globular", "elongated")
_PROTEIN_VOLUME = 1.21  # Å³ per Da
_PROTEIN_POTENTIAL = 2.4  # V, mean inner potential of protein above that of vitreous ice
_CARBON_POTENTIAL = 1.5  # V, carbon film (with its thin ice) above the ice in the hole
_ICE_FREE_PATH = 3500.0  # Å, inelastic mean free path of 300 kV electrons in ice
_CARBON_FREE_PATH = 1700.0  # Å, the same in amorphous carbon
_TEXTURE_SIGMA = 2.0  # Å, correlation length of the ice/carbon structural noise
_CARBON_TEXTURE = 3.0  # carbon's structural noise relative to the ice's


@dataclass(frozen=True)
class SimulationParams:
    """Physical parameters of a simulated exposure. Units are the microscopist's.

    Attributes
    ----------
    pixel_size : float
        Å per pixel.
    dose : float
        Electron dose of the noisy micrograph, e⁻/Å²; sets the shot noise.
    clean_dose : float or None
        None: the clean target is noise-free. A dose (e⁻/Å²): the clean target is itself a noisy
        micrograph at that dose, as in the seed's protocol; the noise-free one is then ``truth``.
    read_noise : float
        Standard deviation of additive Gaussian detector noise, in clean-image units.
    voltage : float
        Acceleration voltage, kV.
    cs : float
        Spherical aberration, mm.
    amplitude_contrast : float
        Fraction of amplitude contrast (0–1).
    b_factor : float
        B-factor of the CTF envelope exp(-B k²/4), Å².
    defocus_min, defocus_max : float
        Range of the per-micrograph defocus (underfocus positive), µm.
    astigmatism : float
        Largest defocus difference between the astigmatic axes, µm.
    transmission : float
        Mean fraction of incident electrons reaching the detector through the ice: the clean
        micrograph's mean away from carbon (the seed's data have a mean of 0.69).
    particle_density : float
        Mean number of particles per 10⁶ Å² (a 1000 Å square); the count is Poisson.
    particle_kinds : tuple of str
        Which of :data:`PARTICLE_KINDS` appear.
    particle_weights : tuple of float
        Relative abundance of each kind in ``particle_kinds``.
    min_separation : float
        Smallest centre distance of two particles, as a fraction of their summed radii.
    ice_thickness : float
        Mean ice thickness, Å.
    ice_thickness_variation : float
        Standard deviation of the smooth ice-thickness variation, relative to the mean.
    ice_texture : float
        RMS phase (rad) of the vitreous ice's structural noise at a 2 Å correlation length.
    carbon_edge_probability : float
        Chance that a micrograph shows carbon film beyond the edge of its hole.
    carbon_thickness : float
        Thickness of the carbon film, Å.
    contrast_scale : float
        Multiplies every phase shift (particles, ice, carbon): 1 is physical, with a per-pixel
        signal-to-noise ratio near 0.01 as in real data; larger values make structure plainer.
    """

    pixel_size: float = 1.0
    dose: float = 20.0
    clean_dose: float | None = None
    read_noise: float = 0.01
    voltage: float = 300.0
    cs: float = 2.7
    amplitude_contrast: float = 0.07
    b_factor: float = 80.0
    defocus_min: float = 0.8
    defocus_max: float = 2.5
    astigmatism: float = 0.05
    transmission: float = 0.69
    particle_density: float = 20.0
    particle_kinds: tuple[str, ...] = PARTICLE_KINDS
    particle_weights: tuple[float, ...] = (0.7, 0.2, 0.1)
    min_separation: float = 0.8
    ice_thickness: float = 300.0
    ice_thickness_variation: float = 0.2
    ice_texture: float = 0.01
    carbon_edge_probability: float = 0.25
    carbon_thickness: float = 150.0
    contrast_scale: float = 1.0

    def __post_init__(self) -> None:
        positive = ["pixel_size", "dose", "voltage", "transmission", "ice_thickness"]
        for name in [*positive, "contrast_scale"]:
            if not getattr(self, name) > 0:
                raise ConfigError(f"simulation.{name} must be > 0, got {getattr(self, name)}")
        if self.clean_dose is not None and not self.clean_dose > 0:
            raise ConfigError(f"simulation.clean_dose must be > 0 or None, got {self.clean_dose}")
        if not 0 < self.defocus_min <= self.defocus_max:
            raise ConfigError(
                f"simulation.defocus range must satisfy 0 < min <= max, "
                f"got {self.defocus_min}..{self.defocus_max} µm"
            )
        if not 0 <= self.amplitude_contrast < 1 or self.transmission > 1:
            raise ConfigError("simulation.amplitude_contrast must be in [0, 1), transmission <= 1")
        unknown = set(self.particle_kinds) - set(PARTICLE_KINDS)
        if unknown or len(self.particle_weights) != len(self.particle_kinds):
            raise ConfigError(
                f"simulation.particle_kinds must be among {PARTICLE_KINDS} with one weight each, "
                f"got {self.particle_kinds} / {self.particle_weights}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary of the fields."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SimulationParams:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"simulation: unknown parameter(s) {', '.join(unknown)}")
        plain: dict[str, Any] = {k: _from_json(v) for k, v in values.items()}
        return cls(**plain)


@dataclass(frozen=True)
class SimulatedMicrograph:
    """One simulated exposure and what it shows.

    Attributes
    ----------
    noisy : numpy.ndarray
        float32 ``(ny, nx)`` micrograph at ``params.dose``.
    clean : numpy.ndarray
        The training target: ``truth`` itself, or a micrograph at ``params.clean_dose``.
    truth : numpy.ndarray
        The noise-free micrograph, in [0, 1].
    defocus : float
        Mean defocus, µm.
    astigmatism : float
        Defocus difference of the astigmatic axes, µm.
    particle_centres : numpy.ndarray
        ``(n, 2)`` centres (y, x) in pixels of the particles; some may lie off the image.
    particle_kinds : tuple of str
        The kind of each particle.
    carbon : bool
        Whether a carbon edge was simulated.
    """

    noisy: np.ndarray
    clean: np.ndarray
    truth: np.ndarray
    defocus: float
    astigmatism: float
    particle_centres: np.ndarray
    particle_kinds: tuple[str, ...]
    carbon: bool


@dataclass(frozen=True)
class SimulatedDataset:
    """Files written by :func:`simulate_dataset`; ``truth_paths`` is empty without clean_dose."""

    out_dir: Path
    noisy_paths: tuple[Path, ...]
    clean_paths: tuple[Path, ...]
    truth_paths: tuple[Path, ...]
    params: SimulationParams
    seed: int

    @property
    def noisy_dir(self) -> Path:
        return self.out_dir / "noisy"

    @property
    def clean_dir(self) -> Path:
        return self.out_dir / "clean"


def electron_wavelength(voltage: float) -> float:
    """Relativistic electron wavelength in Å at ``voltage`` kV (0.0197 Å at 300 kV)."""
    volts = voltage * 1e3
    return 12.2643 / math.sqrt(volts * (1.0 + 0.978466e-6 * volts))


def ctf_zero(params: SimulationParams, defocus: float, n: int = 1) -> float:
    """Spatial frequency (1/Å) of the ``n``-th zero of the CTF at ``defocus`` µm, no astigmatism."""
    lam, cs, df = electron_wavelength(params.voltage), params.cs * 1e7, defocus * 1e4
    target = n * math.pi - math.asin(params.amplitude_contrast)  # chi at the zero
    a, b = 0.5 * math.pi * cs * lam**3, math.pi * lam * df  # chi(k) = b k² - a k⁴
    k2 = (b - math.sqrt(b * b - 4 * a * target)) / (2 * a) if a > 0 else target / b
    return math.sqrt(k2)


def simulate_exposure(
    params: SimulationParams, rng: np.random.Generator, size: int | tuple[int, int] = 1024
) -> SimulatedMicrograph:
    """Simulate one micrograph with everything known about it.

    Parameters
    ----------
    params : SimulationParams
        Physics of the exposure.
    rng : numpy.random.Generator
        Source of all randomness: the same generator state gives the same micrograph.
    size : int or (int, int)
        ``ny, nx`` in pixels (an int gives a square).
    """
    ny, nx = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    # Independent streams: the ice, defocus and noise of a seed stay put when particles change.
    optics, sample, ice, detector = (np.random.default_rng(s) for s in rng.integers(2**63, size=4))
    defocus = optics.uniform(params.defocus_min, params.defocus_max)
    aberrations = (defocus, optics.uniform(0, params.astigmatism), optics.uniform(0, math.pi))
    truth, kinds, centres, carbon = _form_image(params, sample, ice, (ny, nx), aberrations)
    noisy = _expose(truth, params.dose, params, detector)
    target_dose = params.clean_dose
    clean = truth if target_dose is None else _expose(truth, target_dose, params, detector)
    return SimulatedMicrograph(
        noisy=noisy,
        clean=clean,
        truth=truth,
        defocus=float(defocus),
        astigmatism=float(aberrations[1]),
        particle_centres=centres,
        particle_kinds=tuple(params.particle_kinds[k] for k in kinds),
        carbon=carbon,
    )


def simulate_micrograph(
    params: SimulationParams, rng: np.random.Generator, size: int | tuple[int, int] = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate one ``(noisy, clean)`` float32 pair; see :func:`simulate_exposure` for the rest.

    ``clean`` is the training target: noise-free when ``params.clean_dose`` is None, otherwise a
    second exposure at ``clean_dose`` (the noise-free one is then only in ``simulate_exposure``).
    """
    shot = simulate_exposure(params, rng, size)
    return shot.noisy, shot.clean


def simulate_dataset(
    out_dir: str | os.PathLike[str],
    n: int,
    size: int | tuple[int, int] = 1024,
    seed: int = 0,
    params: SimulationParams | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulatedDataset:
    """Write ``n`` simulated pairs as ``out_dir/{noisy,clean}/mic_0000.mrc`` ….

    ``progress(done, n)`` is called after each micrograph.

    Micrograph ``i`` is drawn from its own generator spawned from ``seed``, so the same seed gives
    the same files and micrograph ``i`` does not depend on ``n``. With ``params.clean_dose`` set
    the noise-free micrographs go to ``out_dir/truth/``. ``out_dir/simulation.json`` records the
    parameters, the seed and each micrograph's defocus and particle count.
    """
    from napari_cryoden.data.io import write_mrc

    params = params or SimulationParams()
    out = Path(out_dir)
    folders = ["noisy", "clean"] + (["truth"] if params.clean_dose is not None else [])
    for folder in folders:
        (out / folder).mkdir(parents=True, exist_ok=True)
    paths: dict[str, list[Path]] = {folder: [] for folder in folders}
    records = []
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(n)):
        shot = simulate_exposure(params, np.random.default_rng(child), size)
        name = f"mic_{i:04d}.mrc"
        for folder in folders:
            path = out / folder / name
            write_mrc(path, getattr(shot, folder), params.pixel_size)
            paths[folder].append(path)
        records.append(_record(name, shot))
        if progress is not None:
            progress(i + 1, n)
    _write_json(out / "simulation.json", params, seed, size, records)
    noisy, clean, truth = (tuple(paths.get(f, ())) for f in ("noisy", "clean", "truth"))
    return SimulatedDataset(out, noisy, clean, truth, params, seed)


def _form_image(
    params: SimulationParams,
    sample: np.random.Generator,
    ice: np.random.Generator,
    size: tuple[int, int],
    aberrations: tuple[float, float, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Noise-free micrograph, particle kinds, centres (y, x px) and whether carbon shows.

    The image is formed on a canvas padded on every side, so that particles are cut by the edges
    and the periodic CTF convolution does not wrap around; ``aberrations`` are the defocus,
    astigmatism (µm) and astigmatism angle (rad).
    """
    (ny, nx), px = size, params.pixel_size
    pad = max(16, (max(ny, nx) + 15) // 16)
    shape = (sfft.next_fast_len(ny + 2 * pad, True), sfft.next_fast_len(nx + 2 * pad, True))
    kinds, centres = _place_particles(params, sample, (shape[0] * px, shape[1] * px))
    carbon = _carbon_mask(params, ice, shape)
    k2, k_angle = _frequencies(shape, px)
    phase_ft = _particle_phase_ft(params, sample, kinds, centres, shape, k2)
    phase_ft += _texture_phase_ft(params, ice, carbon, k2)
    transfer = _ctf(params, k2, k_angle, *aberrations) * np.float32(params.contrast_scale)
    contrast = sfft.irfft2(phase_ft * transfer, s=shape, workers=1)
    image = params.transmission * _absorption(params, ice, carbon, shape) * (1 + 2 * contrast)
    truth = np.clip(image[pad : pad + ny, pad : pad + nx], 0.0, 1.0).astype(np.float32)
    centres_px = (centres[:, ::-1] / px - pad).astype(np.float32)
    return truth, kinds, centres_px, carbon is not None


# --- particles ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Template:
    coords: np.ndarray  # (m, 3) blob centres, Å, (x, y, z) about the centre of mass
    sigma: float  # Å, blob width
    weight: float  # V·Å³, integrated potential of one blob
    radius: float  # Å, radius used for spacing particles


@cache
def _template(kind: str) -> _Template:
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
    """A lumpy ellipsoid of 60 blobs, semi-axes 42 × 36 × 30 Å, 150 kDa (fixed shape)."""
    points = np.random.default_rng(2).normal(size=(60, 3))
    points *= (np.random.default_rng(3).uniform(0, 1, (60, 1)) ** (1 / 3)) / np.linalg.norm(
        points, axis=1, keepdims=True
    )
    return points * np.array([42.0, 36.0, 30.0]), 7.0, 150.0


def _elongated() -> tuple[np.ndarray, float, float]:
    """A two-start helical rod, 240 Å long and 40 Å wide, 250 kDa."""
    t = np.arange(48)
    turns = 2 * np.pi * t / 9
    strands = [np.stack([14 * np.cos(a), 14 * np.sin(a), 5 * t], 1) for a in (turns, turns + np.pi)]
    return np.concatenate(strands), 6.0, 250.0


def _place_particles(
    params: SimulationParams, rng: np.random.Generator, extent: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson number of particles at random (x, y) centres in Å, spaced by ``min_separation``."""
    count = rng.poisson(params.particle_density * extent[0] * extent[1] / 1e6)
    weights = np.asarray(params.particle_weights, float)
    kinds = rng.choice(len(weights), size=count, p=weights / weights.sum())
    radii = np.array([_template(params.particle_kinds[k]).radius for k in kinds])
    candidates = rng.uniform(0, 1, size=(count, 20, 2)) * np.array([extent[1], extent[0]])
    placed: list[int] = []
    centres = np.empty((count, 2))
    for i in range(count):
        gap = params.min_separation * (radii[i] + radii[placed])
        for point in candidates[i]:
            if np.all(np.sum((centres[placed] - point) ** 2, axis=1) >= gap**2):
                centres[i] = point
                placed.append(i)
                break
    return kinds[placed], centres[placed]


def _random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
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


def _particle_phase_ft(
    params: SimulationParams,
    rng: np.random.Generator,
    kinds: np.ndarray,
    centres: np.ndarray,
    shape: tuple[int, int],
    k2: np.ndarray,
) -> np.ndarray:
    """rfft2 of the particles' phase shift: rotate, project along z, splat, blur per blob width."""
    rotations = _random_rotations(rng, len(kinds))
    by_sigma: dict[float, list[tuple[np.ndarray, np.ndarray]]] = {}
    for k, kind in enumerate(params.particle_kinds):
        chosen = kinds == k
        if not chosen.any():
            continue
        template = _template(kind)
        xy = np.einsum("nij,mj->nmi", rotations[chosen, :2], template.coords)
        xy = (xy + centres[chosen, None, :]).reshape(-1, 2) / params.pixel_size
        by_sigma.setdefault(template.sigma, []).append((xy, np.full(len(xy), template.weight)))
    sigma_e = _interaction_constant(params.voltage) / params.pixel_size**2
    phase_ft = np.zeros((shape[0], shape[1] // 2 + 1), np.complex64)
    for sigma, parts in by_sigma.items():
        xy, weight = (np.concatenate(a) for a in zip(*parts, strict=True))
        splat = _splat(xy, weight * sigma_e, shape)
        phase_ft += sfft.rfft2(splat, workers=1) * _gaussian_ft(k2, sigma)
    return phase_ft


def _splat(xy: np.ndarray, weight: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
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


# --- ice, carbon and the microscope ----------------------------------------------------------


def _interaction_constant(voltage: float) -> float:
    """Phase shift per projected potential, rad/(V·Å) (6.5e-4 at 300 kV)."""
    volts, rest_energy = voltage * 1e3, 510998.95
    relativistic = (rest_energy + volts) / (2 * rest_energy + volts)
    return 2 * math.pi / (electron_wavelength(voltage) * volts) * relativistic


def _frequencies(shape: tuple[int, int], px: float) -> tuple[np.ndarray, np.ndarray]:
    """|k|² (1/Å²) and the azimuth of the rfft2 grid."""
    ky = sfft.fftfreq(shape[0], d=px).astype(np.float32)[:, None]
    kx = sfft.rfftfreq(shape[1], d=px).astype(np.float32)[None, :]
    return ky**2 + kx**2, np.arctan2(ky, kx)


def _gaussian_ft(k2: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(np.float32(-2 * math.pi**2 * sigma**2) * k2)


def _ctf(
    params: SimulationParams,
    k2: np.ndarray,
    angle: np.ndarray,
    defocus: float,
    astig: float,
    astig_angle: float,
) -> np.ndarray:
    """Phase-contrast transfer -sin(χ + asin(A)) times the B-factor envelope (negative at k=0)."""
    lam, cs = electron_wavelength(params.voltage), params.cs * 1e7
    df = 1e4 * (defocus + 0.5 * astig * np.cos(2 * (angle - astig_angle)))
    chi = math.pi * lam * df * k2 - 0.5 * math.pi * cs * lam**3 * k2**2
    envelope = np.exp(-params.b_factor / 4 * k2)
    return (-np.sin(chi + math.asin(params.amplitude_contrast)) * envelope).astype(np.float32)


def _texture_phase_ft(
    params: SimulationParams, rng: np.random.Generator, carbon: np.ndarray | None, k2: np.ndarray
) -> np.ndarray:
    """rfft2 of the structural phase noise of ice (and carbon), plus carbon's mean phase."""
    shape = (k2.shape[0], 2 * (k2.shape[1] - 1))
    blur = _gaussian_ft(k2, _TEXTURE_SIGMA)
    gain = params.ice_texture / math.sqrt(float(np.mean(blur**2)))  # rms after blur = ice_texture
    field = rng.standard_normal(shape, dtype=np.float32) * np.float32(gain)
    if carbon is not None:
        field *= 1 + _CARBON_TEXTURE * carbon
        step = _interaction_constant(params.voltage) * _CARBON_POTENTIAL * params.carbon_thickness
        field += step * carbon  # the film's mean phase: Fresnel fringes at its edge
    return sfft.rfft2(field, workers=1) * blur


def _carbon_mask(
    params: SimulationParams, rng: np.random.Generator, shape: tuple[int, int]
) -> np.ndarray | None:
    """1 on carbon film, 0 in the hole, with a soft edge of a large circular hole; or None."""
    if rng.uniform() >= params.carbon_edge_probability:
        return None
    size = max(shape)
    radius = rng.uniform(1.5, 4.0) * size  # hole much larger than the field of view
    direction = rng.uniform(0, 2 * np.pi)
    reach = rng.uniform(0.15, 0.45) * size  # how far the carbon reaches into the field
    centre = np.array(shape) / 2 - (radius - size / 2 + reach) * np.array(
        [np.sin(direction), np.cos(direction)]
    )
    y, x = np.ogrid[: shape[0], : shape[1]]
    distance = np.sqrt((y - centre[0]) ** 2 + (x - centre[1]) ** 2) - radius
    edge = max(1.0, 20.0 / params.pixel_size)
    return (0.5 * (1 + np.tanh(distance / edge))).astype(np.float32)


def _absorption(
    params: SimulationParams,
    rng: np.random.Generator,
    carbon: np.ndarray | None,
    shape: tuple[int, int],
) -> np.ndarray:
    """Relative transmission of the ice-thickness variation and the carbon film (mean ≈ 1)."""
    field = _smooth_field(rng, shape)
    excess = params.ice_thickness * params.ice_thickness_variation * field  # Å
    absorption = np.exp(-excess / _ICE_FREE_PATH)
    if carbon is not None:
        absorption *= np.exp(-params.carbon_thickness / _CARBON_FREE_PATH * carbon)
    return absorption


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], modes: int = 3) -> np.ndarray:
    """Random field of unit standard deviation varying over a few cycles per field of view."""
    spectrum = np.zeros((shape[0], shape[1] // 2 + 1), np.complex128)
    rows = np.r_[0:modes, shape[0] - modes + 1 : shape[0]]
    noise = rng.standard_normal((len(rows), modes, 2)) @ np.array([1, 1j])
    spectrum[rows[:, None], np.arange(modes)] = noise
    spectrum[0, 0] = 0
    field = sfft.irfft2(spectrum, s=shape, workers=1)
    return field / max(float(field.std()), 1e-12)


def _expose(
    truth: np.ndarray, dose: float, params: SimulationParams, rng: np.random.Generator
) -> np.ndarray:
    """Count electrons: Poisson shot noise at ``dose`` e⁻/Å² plus Gaussian read noise."""
    electrons = dose * params.pixel_size**2
    counts = rng.poisson(truth.astype(np.float64) * electrons)
    noisy = counts / electrons + params.read_noise * rng.standard_normal(truth.shape)
    return noisy.astype(np.float32)


# --- files ----------------------------------------------------------------------------------


def _record(name: str, shot: SimulatedMicrograph) -> dict[str, Any]:
    return {
        "name": name,
        "defocus_um": round(shot.defocus, 4),
        "astigmatism_um": round(shot.astigmatism, 4),
        "n_particles": int(np.sum(_in_view(shot.particle_centres, shot.truth.shape))),
        "carbon_edge": shot.carbon,
    }


def _in_view(centres: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    inside = (centres >= 0) & (centres < np.array(shape[-2:]))
    return np.asarray(inside.all(axis=1))


def _write_json(
    path: Path, params: SimulationParams, seed: int, size: int | tuple[int, int], records: list
) -> None:
    from napari_cryoden import __version__

    shape = [size, size] if isinstance(size, int) else [int(s) for s in size]
    document = {
        "generator": f"napari-cryoden {__version__} simulate_dataset",
        "seed": seed,
        "size": shape,
        "params": params.to_dict(),
        "micrographs": records,
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _from_json(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
