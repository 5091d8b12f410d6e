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
from pathlib import Path
from typing import Any

import numpy as np
from scipy import fft as sfft

from ..config.sections import ConfigError
from .optics import (
    absorption,
    carbon_mask,
    ctf,
    electron_wavelength,
    expose,
    frequencies,
    texture_phase_ft,
)
from .particles import particle_phase_ft, place_particles

__all__ = [
    "PARTICLE_KINDS",
    "SimulationParams",
    "HIGH_CONTRAST",
    "SimulatedMicrograph",
    "SimulatedDataset",
    "simulate_exposure",
    "simulate_micrograph",
    "simulate_dataset",
    "electron_wavelength",
    "ctf_zero",
]

PARTICLE_KINDS = ("proteasome", "globular", "elongated")


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



#: The demo's specimen: particle contrast ×20 at 100 e/Å². At physical contrast a single frame's
#: per-pixel SNR is ≈ 0.01 and a wide Gaussian blur beats a 7-px receptive field; here local
#: structure is learnable in minutes, so the sample data, the demo and the quality test use it.
HIGH_CONTRAST = SimulationParams(contrast_scale=20.0, dose=100.0)

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
    noisy = expose(truth, params.dose, params, detector)
    target_dose = params.clean_dose
    clean = truth if target_dose is None else expose(truth, target_dose, params, detector)
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
    vary: dict[str, tuple[float, float]] | None = None,
) -> SimulatedDataset:
    """Write ``n`` simulated pairs as ``out_dir/{noisy,clean}/mic_0000.mrc`` ….

    ``progress(done, n)`` is called after each micrograph. ``vary`` maps fields of
    :class:`SimulationParams` (``dose``, ``pixel_size``, ``contrast_scale``, ...) to ranges
    ``(low, high)``: each micrograph draws its own value uniformly from them (from a generator
    of its own, so the rest of the micrograph's draws do not change), is written with its own
    pixel size, and its values are recorded in ``simulation.json``.

    Micrograph ``i`` is drawn from its own generator spawned from ``seed``, so the same seed gives
    the same files and micrograph ``i`` does not depend on ``n``. With ``params.clean_dose`` set
    the noise-free micrographs go to ``out_dir/truth/``. ``out_dir/simulation.json`` records the
    parameters, the seed and each micrograph's defocus and particle count.
    """
    from ..io.images import write_mrc

    params = params or SimulationParams()
    out = Path(out_dir)
    folders = ["noisy", "clean"] + (["truth"] if params.clean_dose is not None else [])
    for folder in folders:
        (out / folder).mkdir(parents=True, exist_ok=True)
    paths: dict[str, list[Path]] = {folder: [] for folder in folders}
    records = []
    vary = check_ranges(vary or {})
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(n)):
        drawn = _draw(vary, child)
        mine = dataclasses.replace(params, **drawn) if drawn else params
        shot = simulate_exposure(mine, np.random.default_rng(child), size)
        name = f"mic_{i:04d}.mrc"
        for folder in folders:
            path = out / folder / name
            write_mrc(path, getattr(shot, folder), mine.pixel_size)
            paths[folder].append(path)
        records.append({**_record(name, shot), **{k: round(v, 4) for k, v in drawn.items()}})
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
    kinds, centres = place_particles(params, sample, (shape[0] * px, shape[1] * px))
    carbon = carbon_mask(params, ice, shape)
    k2, k_angle = frequencies(shape, px)
    phase_ft = particle_phase_ft(params, sample, kinds, centres, shape, k2)
    phase_ft += texture_phase_ft(params, ice, carbon, k2)
    transfer = ctf(params, k2, k_angle, *aberrations) * np.float32(params.contrast_scale)
    contrast = sfft.irfft2(phase_ft * transfer, s=shape, workers=1)
    image = params.transmission * absorption(params, ice, carbon, shape) * (1 + 2 * contrast)
    truth = np.clip(image[pad : pad + ny, pad : pad + nx], 0.0, 1.0).astype(np.float32)
    centres_px = (centres[:, ::-1] / px - pad).astype(np.float32)
    return truth, kinds, centres_px, carbon is not None


# --- files ----------------------------------------------------------------------------------


def check_ranges(vary: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """``vary`` checked: known numeric fields of SimulationParams, ``low <= high``."""
    numeric = {f.name for f in dataclasses.fields(SimulationParams)
               if f.type in ("float", float)} - {"clean_dose"}
    for name, bounds in vary.items():
        if name not in numeric:
            raise ConfigError(f"simulation: cannot vary {name!r} (numeric fields: "
                              f"{', '.join(sorted(numeric))})")
        low, high = bounds
        if not low <= high:
            raise ConfigError(f"simulation.{name}: range {low}:{high} must have low <= high")
    return {name: (float(low), float(high)) for name, (low, high) in vary.items()}


def _draw(vary: dict[str, tuple[float, float]], child: np.random.SeedSequence
          ) -> dict[str, float]:
    """One value per varied field, from a generator spawned from the micrograph's seed."""
    if not vary:
        return {}
    rng = np.random.default_rng(child.spawn(1)[0])  # child's own stream is unchanged
    return {name: float(rng.uniform(low, high)) for name, (low, high) in sorted(vary.items())}


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
    from .. import __version__

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
