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

from .optics import (
    absorption,
    carbon_mask,
    ctf,
    electron_wavelength,
    expose,
    frequencies,
    texture_phase_ft,
)
from .params import SimulationParams, check_ranges
from .particles import particle_phase_ft, place_particles

__all__ = ["SimulatedMicrograph", "SimulatedDataset", "simulate_exposure", "simulate_micrograph",
           "simulate_dataset", "electron_wavelength", "ctf_zero", "shot_record"]


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
        """The folder of the noisy micrographs, ``out_dir/noisy``."""
        return self.out_dir / "noisy"

    @property
    def clean_dir(self) -> Path:
        """The folder of the clean targets, ``out_dir/clean``."""
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
        records.append({**shot_record(name, shot), **{k: round(v, 4) for k, v in drawn.items()}})
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


def _draw(vary: dict[str, tuple[float, float]], child: np.random.SeedSequence
          ) -> dict[str, Any]:
    """One value per varied field, from a generator spawned from the micrograph's seed."""
    if not vary:
        return {}
    rng = np.random.default_rng(child.spawn(1)[0])  # child's own stream is unchanged
    return {name: float(rng.uniform(low, high)) for name, (low, high) in sorted(vary.items())}


def shot_record(name: str, shot: SimulatedMicrograph) -> dict[str, Any]:
    """Return what ``simulation.json`` records of one micrograph.

    Parameters
    ----------
    name
        The micrograph's file name.
    shot
        The simulated exposure.

    Returns
    -------
    dict
        ``name``, ``defocus_um``, ``astigmatism_um``, ``n_particles`` (centres in view) and
        ``carbon_edge``.
    """
    return {
        "name": name,
        "defocus_um": round(shot.defocus, 4),
        "astigmatism_um": round(shot.astigmatism, 4),
        "n_particles": int(np.sum(_in_view(shot.particle_centres, shot.truth.shape))),
        "carbon_edge": shot.carbon,
    }


def _in_view(centres: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Whether each ``(y, x)`` centre lies inside an image of ``shape``."""
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
