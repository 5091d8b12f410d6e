"""Held-out micrographs with a true noise-free image, even/odd halves and particle picks.

The data source of benchmarks/topaz_compare.py, pluggable: :func:`simulated` draws cartoon
micrographs in memory (white shot noise, or that noise coloured per half as in
evaluation/coloured_noise.py); :func:`from_folder` reads a dataset written by
``cryoden simulate --even-odd`` (or the physics-grade mode): ``even/``, ``odd/``, ``clean/``
(the true noise-free image; ``simulation.json``'s ``clean_scale`` says its units), optionally
``noisy/`` (else even + odd) and ``picks/*.coord`` (else re-drawn from ``simulation.json``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_cryoden.evaluation.coloured_noise import coloured_noise
from napari_cryoden.io.images import read_image
from napari_cryoden.simulation.micrographs import simulate_exposure
from napari_cryoden.simulation.movies import expose_frames
from napari_cryoden.simulation.params import SimulationParams


@dataclass(frozen=True)
class Micrograph:
    """One held-out micrograph: ``noisy`` = even + odd, ``truth`` in its units, picks (x, y)."""

    name: str
    noisy: np.ndarray
    truth: np.ndarray
    even: np.ndarray
    odd: np.ndarray
    picks: np.ndarray


def simulated(n: int, size: int, seed: int, params: SimulationParams,
              noise_sigma: float = 0.0, frames: int = 8) -> list[Micrograph]:
    """``n`` cartoon micrographs as ``frames``-frame movies; each half's shot noise coloured by a
    Gaussian of ``noise_sigma`` px and rescaled to its variance (0: white, as simulated)."""
    out = []
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(n)):
        rng = np.random.default_rng(child)
        shot = simulate_exposure(params, rng, size)
        half_truth = shot.truth.astype(np.float64) / 2
        halves = _half_sums(expose_frames(shot.truth, params.dose, frames, params, rng))
        even, odd = ((half_truth + coloured_noise(h - half_truth, noise_sigma)).astype(np.float32)
                     for h in halves)
        out.append(Micrograph(f"mic_{i:04d}", even + odd, shot.truth, even, odd,
                              shot.particle_centres[:, ::-1].astype(np.float64)))
    return out


def _half_sums(frames: Iterator[np.ndarray]) -> list[np.ndarray]:
    """The sums of the even and of the odd frames, float64."""
    sums: list[np.ndarray] = [np.zeros(()), np.zeros(())]
    for k, frame in enumerate(frames):
        sums[k % 2] = sums[k % 2] + frame.astype(np.float64)
    return sums


def from_folder(folder: Path) -> list[Micrograph]:
    """Read a ``cryoden simulate --even-odd`` dataset (see the module docstring)."""
    record = json.loads((folder / "simulation.json").read_text()) if (
        folder / "simulation.json").exists() else {}
    scale = float(record.get("clean_scale", 1.0))
    picks = _redrawn_picks(record) if not (folder / "picks").is_dir() else None
    out = []
    for i, even_path in enumerate(sorted((folder / "even").glob("*.mrc"))):
        name = even_path.stem
        even, odd = (_image(folder / half / even_path.name) for half in ("even", "odd"))
        noisy_path = folder / "noisy" / even_path.name
        noisy = _image(noisy_path) if noisy_path.exists() else even + odd
        truth = _image(folder / "clean" / even_path.name) / np.float32(scale)
        xy = (np.loadtxt(folder / "picks" / f"{name}.coord", ndmin=2)[:, :2] if picks is None
              else picks[i])
        out.append(Micrograph(name, noisy, truth, even, odd, xy))
    if not out:
        raise SystemExit(f"{folder}: no even/*.mrc (write one with cryoden simulate --even-odd)")
    return out


def _image(path: Path) -> np.ndarray:
    return np.asarray(read_image(path)[0], np.float32)


def _redrawn_picks(record: dict) -> list[np.ndarray]:
    """The particle centres (x, y) of each micrograph, re-drawn from ``simulation.json``."""
    if not record:
        raise SystemExit("no picks/ and no simulation.json to re-draw them from")
    params = SimulationParams.from_dict(record["params"])
    children = np.random.SeedSequence(record["seed"]).spawn(len(record["micrographs"]))
    return [simulate_exposure(params, np.random.default_rng(child),
                              tuple(record["size"])).particle_centres[:, ::-1].astype(np.float64)
            for child in children]
