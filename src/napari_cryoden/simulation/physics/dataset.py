"""Physics-grade datasets on disk: what ``cryoden simulate --physics`` writes.

Micrograph *i* is drawn from the *i*-th child of ``numpy.random.SeedSequence(seed)``: its
specimen (:func:`.specimen.noise_free_image`) and its exposure (:func:`.exposure.expose_movie`)
from two streams of that child, so the same seed gives the same files whatever ``n`` and however
many worker processes write them. Layout (float32 MRC, voxel size = the sum's pixel size)::

    out_dir/noisy/mic_0000.mrc     the motion-corrected, dose-weighted sum of all frames
    out_dir/clean/mic_0000.mrc     its truth: the noise-free frames through the same pipeline
    out_dir/even/, out_dir/odd/    with even_odd: the sums of frames 0, 2, … and 1, 3, …
    out_dir/clean_even/, clean_odd/  … and their truths
    out_dir/movies/mic_0000.mrcs   with movies: the raw frames, before motion correction
    out_dir/picks/mic_0000.coord   the particle centres in view, ``x y`` px per line
    out_dir/simulation.json        seed, shape, parameters, and per micrograph what was drawn
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...io.atomic import atomic_path
from ...io.images import write_mrc
from .exposure import ExposedMicrograph, expose_movie
from .exposure_params import ExposureParams
from .specimen import noise_free_image
from .specimen_params import SpecimenParams

__all__ = ["PhysicsParams", "PhysicsDataset", "simulate_physics_dataset", "simulate_physics_shot"]


@dataclass(frozen=True)
class PhysicsParams:
    """The specimen's and the exposure's parameters of a physics-grade dataset."""

    specimen: SpecimenParams = dataclasses.field(default_factory=SpecimenParams)
    exposure: ExposureParams = dataclasses.field(default_factory=ExposureParams)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (``from_dict`` reads it back)."""
        return {"specimen": self.specimen.to_dict(), "exposure": self.exposure.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PhysicsParams:
        """Rebuild the parameters from :meth:`to_dict`'s output."""
        return cls(SpecimenParams.from_dict(data["specimen"]),
                   ExposureParams.from_dict(data["exposure"]))


@dataclass(frozen=True)
class PhysicsDataset:
    """What :func:`simulate_physics_dataset` wrote."""

    out_dir: Path
    names: tuple[str, ...]
    even_odd: bool
    movies: bool

    def folder(self, kind: str) -> Path:
        """Return ``out_dir/kind`` (``noisy``, ``clean``, ``even``, ``picks`` …)."""
        return self.out_dir / kind


def simulate_physics_shot(params: PhysicsParams, child: np.random.SeedSequence,
                          shape: tuple[int, int], device: str = "cpu",
                          frames_out: Path | None = None) -> tuple[ExposedMicrograph, Any]:
    """Simulate micrograph ``child``: return its sums and the specimen's noise-free image."""
    specimen_seed, exposure_seed = child.spawn(2)
    image = noise_free_image(params.specimen, np.random.default_rng(specimen_seed), shape,
                             device=device)
    shot = expose_movie(image, params.exposure, np.random.default_rng(exposure_seed),
                        frames_out=frames_out)
    return shot, image


def simulate_physics_dataset(out_dir: str | os.PathLike[str], n: int,
                             shape: int | tuple[int, int], seed: int = 0,
                             params: PhysicsParams | None = None, *, even_odd: bool = False,
                             movies: bool = False, device: str = "cpu", workers: int = 1,
                             progress: Callable[[int, int], None] | None = None
                             ) -> PhysicsDataset:
    """Simulate ``n`` physics-grade micrographs of ``shape`` px into ``out_dir``.

    Parameters
    ----------
    out_dir
        The dataset folder (see the module's docstring for its layout).
    n, shape, seed
        How many micrographs, their size (``ny, nx`` or a square side, before any binning)
        and the seed every draw comes from.
    params
        Specimen and exposure parameters (default: :class:`PhysicsParams`'s).
    even_odd, movies
        Also write the even/odd sums and their truths; the raw frame stacks.
    device
        Where ttsim3d, the projections and the CTF run (``cpu``, ``cuda``).
    workers
        Processes writing micrographs in parallel (the files do not depend on it).
    progress
        Called as ``progress(done, n)`` after each micrograph.
    """
    params = params or PhysicsParams()
    out = Path(out_dir)
    size = (int(shape), int(shape)) if isinstance(shape, int) else (int(shape[0]), int(shape[1]))
    names = tuple(f"mic_{i:04d}" for i in range(n))
    children = np.random.SeedSequence(seed).spawn(n)
    jobs = [(params, children[i], size, names[i], out, even_odd, movies, device)
            for i in range(n)]
    records: list[dict[str, Any]] = []
    if workers <= 1:
        for job in jobs:
            records.append(_write_shot(*job))
            if progress is not None:
                progress(len(records), n)
    else:
        with ProcessPoolExecutor(workers, initializer=_one_thread) as pool:
            for record in pool.map(_write_shot, *zip(*jobs, strict=True)):
                records.append(record)
                if progress is not None:
                    progress(len(records), n)
    _write_json(out / "simulation.json", params, seed, size, even_odd, records)
    return PhysicsDataset(out, names, even_odd, movies)


def _one_thread() -> None:
    """Worker processes share the cores: one torch/BLAS thread each."""
    import torch

    torch.set_num_threads(1)


def _write_shot(params: PhysicsParams, child: np.random.SeedSequence, shape: tuple[int, int],
                name: str, out: Path, even_odd: bool, movies: bool, device: str
                ) -> dict[str, Any]:
    frames_out = out / "movies" / f"{name}.mrcs" if movies else None
    if frames_out is not None:
        frames_out.parent.mkdir(parents=True, exist_ok=True)
    shot, image = simulate_physics_shot(params, child, shape, device, frames_out)
    arrays = {"noisy": shot.noisy, "clean": shot.truth}
    if even_odd:
        arrays.update(even=shot.even, odd=shot.odd, clean_even=shot.truth_even,
                      clean_odd=shot.truth_odd)
    for kind, data in arrays.items():
        (out / kind).mkdir(parents=True, exist_ok=True)
        write_mrc(out / kind / f"{name}.mrc", data, shot.pixel_size)
    scale = image.pixel_size / shot.pixel_size  # binning shrinks the coordinates
    centres = np.asarray(image.particle_centres, dtype=np.float64).reshape(-1, 2) * scale
    (out / "picks").mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "picks" / f"{name}.coord") as tmp:
        Path(tmp).write_text("".join(f"{x:.1f} {y:.1f}\n" for y, x in centres))
    return _record(name, image, shot, len(centres))


def _record(name: str, image: Any, shot: ExposedMicrograph, n_particles: int) -> dict[str, Any]:
    drawn = shot.exposure
    return {"name": name, "pixel_size": shot.pixel_size, "specimen_pixel_size": image.pixel_size,
            "defocus": image.defocus, "astigmatism": image.astigmatism,
            "astigmatism_angle": image.astigmatism_angle, "particles": n_particles,
            "structures": sorted(set(image.particle_kinds)), "carbon": image.carbon,
            "dose": drawn.dose, "frames": drawn.frames, "detector": drawn.detector,
            "interpolation": drawn.interpolation, "dose_weighting": drawn.dose_weighting,
            "binning": drawn.binning,
            "drift": float(np.abs(np.diff(drawn.trajectory, axis=0)).sum())}


def _write_json(path: Path, params: PhysicsParams, seed: int, shape: tuple[int, int],
                even_odd: bool, records: list[dict[str, Any]]) -> None:
    payload = {"mode": "physics", "seed": seed, "shape": list(shape), "even_odd": even_odd,
               "params": params.to_dict(), "micrographs": records}
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(payload, indent=1))
