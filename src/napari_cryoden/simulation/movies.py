"""Simulated movies: the dose of a micrograph split over frames with independent noise.

Frame *k* of an ``N``-frame movie at total dose ``D`` counts ``Poisson(D/N · pixel_size² ·
truth)`` electrons, divided by ``D · pixel_size²`` (the units of :func:`.simulate.expose`), plus
Gaussian read noise of ``read_noise / √N``. Sums of independent Poisson counts are Poisson, so the
sum of all frames has exactly the statistics of a noisy micrograph at dose ``D``, and the sums of
the even and of the odd frames are two independent half-dose exposures of the same truth, which
is what Noise2Noise trains on. The truth of micrograph *i* is the one ``simulate_dataset`` makes
for the same seed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np

from ..config.sections import ConfigError
from ..io.atomic import atomic_path
from ..io.images import write_mrc
from .micrographs import shot_record, simulate_exposure
from .params import SimulationParams

__all__ = ["SimulatedMovies", "expose_frames", "simulate_movie_dataset"]


@dataclass(frozen=True)
class SimulatedMovies:
    """Files written by :func:`simulate_movie_dataset`; empty tuples for what was not asked.

    ``clean_scale`` is the fraction of the dose in each clean image's exposure: 1 for a whole
    movie, ``1/2`` when the clean images match the even/odd halves.
    """

    out_dir: Path
    movie_paths: tuple[Path, ...]
    even_paths: tuple[Path, ...]
    odd_paths: tuple[Path, ...]
    clean_paths: tuple[Path, ...]
    frames: int
    clean_scale: float


def expose_frames(truth: np.ndarray, dose: float, n_frames: int, params: SimulationParams,
                  rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Yield the float32 frames of one movie at total ``dose`` e⁻/Å², one at a time.

    Parameters
    ----------
    truth
        The noise-free micrograph, in [0, 1]; the frames sum to it on average.
    dose
        Total dose of the movie, e⁻/Å², shared evenly by the ``n_frames`` frames.
    n_frames
        Number of frames.
    params
        The pixel size and the read noise (spread over the frames) come from here.
    rng
        Draws the electron counts and the read noise.
    """
    electrons = dose * params.pixel_size**2
    expected = truth.astype(np.float64) * (electrons / n_frames)
    read_noise = params.read_noise / math.sqrt(n_frames)
    for _ in range(n_frames):
        counts = rng.poisson(expected)
        frame = counts / electrons + read_noise * rng.standard_normal(truth.shape)
        yield frame.astype(np.float32)


def simulate_movie_dataset(
    out_dir: str | os.PathLike[str],
    n: int,
    size: int | tuple[int, int] = 1024,
    seed: int = 0,
    params: SimulationParams | None = None,
    *,
    frames: int = 8,
    movies: bool = True,
    even_odd: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SimulatedMovies:
    """Write ``n`` simulated movies and/or their even/odd frame sums, and the ground truth.

    Writes ``out_dir/movies/mic_0000.mrcs`` (``frames`` frames, with ``movies``),
    ``out_dir/even/mic_0000.mrc`` and ``out_dir/odd/mic_0000.mrc`` (with ``even_odd``: what
    ``cryoden split-frames`` makes of the movie), ``out_dir/clean/mic_0000.mrc`` and
    ``out_dir/simulation.json``. The clean image is the noise-free expectation of what it goes
    with: of a half sum (``truth / 2``) with ``even_odd``, else of the whole movie (``truth``),
    so that ``(even, clean)`` are a noisy/clean pair in the same units.

    Raises
    ------
    ConfigError
        Neither output asked for, fewer than 2 frames, an odd frame count with ``even_odd``
        (the halves would differ in dose), or ``params.clean_dose`` set.
    """
    params = params or SimulationParams()
    _check(frames, movies, even_odd, params)
    out = Path(out_dir)
    folders = (["movies"] if movies else []) + (["even", "odd"] if even_odd else []) + ["clean"]
    for folder in folders:
        (out / folder).mkdir(parents=True, exist_ok=True)
    paths: dict[str, list[Path]] = {folder: [] for folder in folders}
    scale = 0.5 if even_odd else 1.0
    records = []
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(n)):
        rng = np.random.default_rng(child)
        shot = simulate_exposure(params, rng, size)
        name = f"mic_{i:04d}"
        _write_frames(expose_frames(shot.truth, params.dose, frames, params, rng), out, name,
                      paths, params, frames, shot.truth.shape)
        paths["clean"].append(out / "clean" / f"{name}.mrc")
        write_mrc(paths["clean"][-1], shot.truth * np.float32(scale), params.pixel_size)
        records.append(shot_record(f"{name}.mrc", shot))
        if progress is not None:
            progress(i + 1, n)
    _write_json(out / "simulation.json", params, seed, size, frames, scale, records)
    found = {folder: tuple(paths.get(folder, ())) for folder in ("movies", "even", "odd")}
    return SimulatedMovies(out, found["movies"], found["even"], found["odd"],
                           tuple(paths["clean"]), frames, scale)


def _write_frames(stream: Iterator[np.ndarray], out: Path, name: str,
                  paths: dict[str, list[Path]], params: SimulationParams, n_frames: int,
                  shape: tuple[int, ...]) -> None:
    """Write one movie's frames as a stack and/or as even/odd sums.

    The stack is written when ``paths`` has ``movies``, the sums when it has ``even``; the files
    written are appended to ``paths``.
    """
    if "movies" in paths:
        paths["movies"].append(out / "movies" / f"{name}.mrcs")
        stream = _written(stream, paths["movies"][-1], n_frames, shape, params)
    if "even" in paths:
        for half, data in zip(("even", "odd"), _half_sums(stream), strict=True):
            paths[half].append(out / half / f"{name}.mrc")
            write_mrc(paths[half][-1], data, params.pixel_size)
    else:
        for _ in stream:  # writes the movie
            pass


def _check(frames: int, movies: bool, even_odd: bool, params: SimulationParams) -> None:
    if not (movies or even_odd):
        raise ConfigError("simulate: ask for movies, even/odd sums, or both")
    if frames < 2:
        raise ConfigError(f"simulate: a movie needs at least 2 frames, got {frames}")
    if even_odd and frames % 2:
        raise ConfigError(f"simulate: even/odd sums need an even number of frames (equal dose "
                          f"in both halves), got {frames}")
    if params.clean_dose is not None:
        raise ConfigError("simulate: clean_dose (noisy targets) does not apply to movies")


def _written(frames: Iterator[np.ndarray], path: Path, n_frames: int, shape: tuple[int, ...],
             params: SimulationParams) -> Iterator[np.ndarray]:
    """Pass ``frames`` through while writing them, one by one, to an MRC stack (atomically)."""
    with atomic_path(path) as tmp, mrcfile.new_mmap(tmp, shape=(n_frames, *shape), mrc_mode=2,
                                                     overwrite=True) as mrc:
        mrc.set_image_stack()
        mrc.voxel_size = params.pixel_size
        for k, frame in enumerate(frames):
            mrc.data[k] = frame
            yield frame
        mrc.update_header_stats()


def _half_sums(frames: Iterator[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sum the even and the odd frames, in float64 then float32 (as split-frames does)."""
    sums: list[np.ndarray] = []
    for k, frame in enumerate(frames):
        if k < 2:
            sums.append(np.zeros(frame.shape))
        np.add(sums[k % 2], frame, out=sums[k % 2])
    return sums[0].astype(np.float32), sums[1].astype(np.float32)


def _write_json(path: Path, params: SimulationParams, seed: int, size: int | tuple[int, int],
                frames: int, scale: float, records: list) -> None:
    from .. import __version__

    document = {
        "generator": f"napari-cryoden {__version__} simulate_movie_dataset",
        "seed": seed,
        "size": [size, size] if isinstance(size, int) else [int(s) for s in size],
        "frames": frames,
        "clean_scale": scale,
        "params": params.to_dict(),
        "micrographs": records,
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
