"""Denoise a list of micrograph files into a folder, pipelined, cancellable (no Qt, no napari).

The Denoise panel's *Denoise files on disk…* section and ``cryoden denoise`` name their outputs
the same way (:func:`output_path`: the input's name, written as float32 MRC with its pixel size).
:func:`denoise_files` is a generator: it yields one :class:`FileResult` per input, so a face can
show "file 3/20 · ~40 s left" and list what is done; the files are read, denoised and written
at once by :mod:`.pipeline` (reader threads, the model here, writer threads). A file that
cannot be read or denoised becomes a ``"failed"`` result with a one-line message naming it, and
the run goes on with the others. An existing output is skipped unless ``overwrite`` is set,
and an output that would replace its own input is refused before anything runs.

Cancelling: set the ``stop`` event. It is checked between files and after every batch of tiles
(by the tile progress callback, which raises :class:`~napari_cryoden.errors.Cancelled`), so a run
ends within one batch; outputs are written atomically (:mod:`napari_cryoden.io.atomic`), so no
half-written file is left.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Cancelled, InputError, SaveError
from ..io.images import list_images

if TYPE_CHECKING:
    import torch

    from ..io.star import MicrographStar
    from .load import Denoiser
    from .pipeline import Stages
    from .smoothing import Smoothing

__all__ = ["AUTOTUNE_MIN_FILES", "FileResult", "FolderJob", "autotune_for", "check_outputs",
           "default_output_folder", "denoise_files", "existing_outputs", "micrographs_in",
           "output_path", "plan_outputs", "remaining_seconds", "run_folder_job", "star_job"]

TileProgress = Callable[[int, int], None]

#: Runs of at least this many files turn cuDNN's autotuner on. On the H100 (general model,
#: fp32, K3 micrographs; two runs of ``benchmarks/denoise_startup.py``) it cost 5.2–5.3 s on the
#: first file and saved 0.02–0.03 s on each later one: it pays back after 180–260 files.
AUTOTUNE_MIN_FILES = 200


def autotune_for(n_files: int, autotune: bool | None = None) -> bool:
    """Return whether a run of ``n_files`` uses cuDNN's autotuner.

    ``autotune`` when given; else on from :data:`AUTOTUNE_MIN_FILES` files, where it pays back.
    """
    return n_files >= AUTOTUNE_MIN_FILES if autotune is None else autotune


@dataclass(frozen=True)
class FileResult:
    """What happened to one input file of a run.

    Attributes
    ----------
    index : int
        The file's position in the run, from 0.
    total : int
        The number of files in the run.
    source, output : Path
        The input and its output file.
    status : str
        ``"done"`` (written), ``"skipped"`` (the output existed) or ``"failed"``.
    message : str
        For a failed file, one line naming it and the problem; else empty.
    seconds : float
        How long the file took.
    scale : str
        For a denoised file, the pixel size it was denoised at
        (:meth:`~napari_cryoden.inference.scale.ScalePlan.describe`, with its note if any).
    disk_full : bool
        A failed write because the disk (or quota) is full or read-only: the files after it
        would fail alike, so :func:`denoise_files` ends the run on it.
    """

    index: int
    total: int
    source: Path
    output: Path
    status: str
    message: str = ""
    seconds: float = 0.0
    scale: str = ""
    disk_full: bool = False


@dataclass(frozen=True)
class FolderJob:
    """A run of :func:`run_folder_job`: which files, where to, with which model and device.

    ``working`` and ``bin_factor`` choose each file's binning as ``cryoden denoise``'s
    ``--working-pixel-size`` and ``--bin`` do (:func:`~napari_cryoden.inference.scale.
    plan_scale`, with the file's header pixel size and the model's range).
    """

    files: tuple[Path, ...]
    out_dir: Path
    weights: str | os.PathLike[str]
    device: str | torch.device = "auto"
    pixel_cutoff: float | None = None
    overwrite: bool = False
    working: float | str | None = "auto"
    bin_factor: float | None = None
    outputs: tuple[Path, ...] | None = None
    """Each file's output; None: :func:`output_path`'s names in ``out_dir``."""
    star: MicrographStar | None = None
    """The STAR file the files came from: written back to ``out_dir`` with the outputs' paths
    when every file has its output (:func:`~napari_cryoden.io.star.write_denoised_star`)."""
    out_dtype: str = "float32"
    """``"float32"`` or ``"float16"`` (MRC mode 12) outputs."""
    smooth: float | Smoothing = 0.0
    """σ px of a Gaussian after denoising, or a
    :class:`~napari_cryoden.inference.smoothing.Smoothing`; 0: off."""

    def planned_outputs(self) -> list[Path]:
        """Each file's output path."""
        return (list(self.outputs) if self.outputs is not None
                else [output_path(f, self.out_dir) for f in self.files])

    @property
    def star_output(self) -> Path | None:
        """Where the denoised STAR file goes (None without a STAR file)."""
        return None if self.star is None else self.out_dir / self.star.output_name


def star_job(star_file: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None,
             weights: str | os.PathLike[str], project: str | os.PathLike[str] | None = None,
             **options: Any) -> FolderJob:
    """Return a :class:`FolderJob` for the micrographs a STAR file lists, folder tree kept.

    ``out_dir`` None: ``denoised`` next to the STAR file (inside a RELION project, so the new
    STAR file's paths stay relative to it). Checked before any work: every micrograph exists,
    no output replaces an input, the STAR file is not replaced.

    Raises
    ------
    InputError
        As :func:`~napari_cryoden.io.star.read_micrograph_star`, or an output would replace an
        input.
    """
    from ..io.star import denoised_paths, read_micrograph_star

    star = read_micrograph_star(star_file, project)
    out = Path(out_dir) if out_dir is not None else star.path.parent / "denoised"
    if (out / star.output_name).resolve() == star.path.resolve():
        raise InputError(f"{out / star.output_name}: the denoised STAR file would overwrite the "
                         "input; choose another output folder")
    outputs = check_outputs(star.files, denoised_paths(star, out))
    return FolderJob(tuple(star.files), out, weights, outputs=tuple(outputs), star=star,
                     **options)


def micrographs_in(items: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Return the micrographs named: files as given, folders as the images in them.

    Raises
    ------
    InputError
        A folder holds no micrographs, or a file does not exist.
    """
    files: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            files += list_images(item)
        elif not item.is_file():
            raise InputError(f"{item}: file not found")
        else:
            files.append(item)
    return files


def default_output_folder(items: Sequence[str | os.PathLike[str]]) -> Path:
    """``<folder>/denoised`` for a folder, else ``denoised`` next to the first file."""
    first = Path(items[0])
    return (first if first.is_dir() else first.parent) / "denoised"


def output_path(source: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Name the output of ``source`` in ``out_dir``: its name as MRC (``.mrcs`` for stacks)."""
    from ..io.formats import output_suffix

    return Path(out_dir) / (Path(source).stem + output_suffix(source))


def plan_outputs(files: Sequence[Path], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Return each file's output; refuse a run that would overwrite an input or write twice.

    Raises
    ------
    InputError
        An output would replace an input file, or two inputs would write the same output.
    """
    return check_outputs(files, [output_path(f, out_dir) for f in files])


def check_outputs(files: Sequence[Path], outputs: Sequence[Path]) -> list[Path]:
    """Return ``outputs`` (one per file) after refusing overwrites of inputs and double writes.

    Raises
    ------
    InputError
        An output would replace an input file, or two inputs would write the same output.
    """
    outputs = list(outputs)
    inputs = {f.resolve() for f in files}
    seen: dict[Path, Path] = {}
    for source, out in zip(files, outputs, strict=True):
        where = out.resolve()
        if where in inputs:
            raise InputError(f"{out}: the output would overwrite an input; choose another "
                             "output folder")
        if where in seen:
            raise InputError(f"{source}: its output {out.name} is also that of {seen[where]}; "
                             "rename one of them")
        seen[where] = source
    return outputs


def existing_outputs(files: Sequence[Path], out_dir: str | os.PathLike[str]) -> list[Path]:
    """List the outputs of ``files`` that already exist in ``out_dir``."""
    return [out for out in (output_path(f, out_dir) for f in files) if out.exists()]


def remaining_seconds(elapsed: float, fraction_done: float) -> float | None:
    """Estimate the time left from the time so far and the fraction done (None: too early)."""
    if fraction_done <= 0.0 or elapsed <= 0.0:
        return None
    return max(0.0, elapsed * (1.0 - fraction_done) / fraction_done)


def denoise_files(denoiser: Denoiser, files: Sequence[Path], out_dir: str | os.PathLike[str],
                  *, outputs: Sequence[Path] | None = None, overwrite: bool = False,
                  stop: threading.Event | None = None,
                  progress: TileProgress | None = None, working: float | str | None = None,
                  bin_factor: float | None = 1.0, pixel_size: float | None = None,
                  out_dtype: str = "float32", readers: int = 2, writers: int = 2,
                  depth: int = 2, autotune: bool | None = None,
                  **options: Any) -> Iterator[FileResult]:
    """Denoise ``files`` into ``out_dir``; yield a :class:`FileResult` per file as it is written.

    The files go through a pipeline (:mod:`.pipeline`): reader threads read ahead, the model
    runs here, writer threads write behind, with bounded queues between them. Results come in
    the input order (a file's is held until those before it are written); existing outputs are
    ``"skipped"`` unless ``overwrite``.

    Parameters
    ----------
    denoiser
        The loaded model (:func:`~napari_cryoden.inference.load.load_denoiser`).
    files
        Micrographs or stacks (MRC, TIFF).
    out_dir
        The output folder; created if missing.
    outputs
        Each file's output path (e.g. a STAR file's tree under ``out_dir``,
        :func:`~napari_cryoden.io.star.denoised_paths`); by default :func:`output_path`'s.
        Missing folders are created.
    overwrite
        Replace existing outputs; by default they are skipped (a run resumes).
    stop
        Set it to cancel: checked between files and after every batch of tiles.
    progress
        Called as ``progress(done_tiles, total_tiles)`` of the file being denoised.
    working, bin_factor, pixel_size
        Each file's binning (:func:`~napari_cryoden.inference.scale.plan_scale`); by default
        none. A file whose choice cannot be followed (a working size in Å, no pixel size in
        its header) fails with one line. ``pixel_size`` overrides the headers'.
    out_dtype
        ``"float32"`` or ``"float16"`` (MRC mode 12: half the disk, ~3 significant digits).
    readers, writers, depth
        The pipeline's threads and queue depth.
    autotune
        cuDNN's autotuner on CUDA (see :func:`~napari_cryoden.inference.denoiser.denoise`); by
        default on when at least :data:`AUTOTUNE_MIN_FILES` files are to be denoised, where its
        cost on the first file is paid back.
    **options
        Further keyword arguments of :func:`~napari_cryoden.inference.denoiser.denoise`
        (``pixel_cutoff``, ``precision``, ``tile_size``...), and ``smooth`` (σ px of a
        Gaussian after denoising, or a :class:`.smoothing.Smoothing`), which the writer threads
        apply.

    Raises
    ------
    Cancelled
        ``stop`` was set; the file being denoised is not written, those already denoised are.
    InputError
        The outputs would overwrite an input (:func:`plan_outputs`).
    SaveError
        The disk (or quota) is full, or read-only: the run ends at the first such write.
    """
    from .pipeline import run_pipeline

    outputs = (plan_outputs(files, out_dir) if outputs is None
               else check_outputs(files, outputs))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    tiles = _cancellable(progress, stop)
    todo, waiting = [], {}  # to denoise; results waiting for the ones before them
    for index, (source, output) in enumerate(zip(files, outputs, strict=True)):
        result = FileResult(index, len(files), source, output, "done")
        if overwrite or not output.exists():
            todo.append(result)
        else:
            waiting[index] = replace(result, status="skipped")
    scale = {"working": working, "bin_factor": bin_factor, "pixel_size": pixel_size}
    options["autotune"] = autotune_for(len(todo), autotune)
    stages = _stages(denoiser, tiles, scale, options, out_dtype)
    following = 0
    try:
        for finished in run_pipeline(todo, stages, stop=stop, readers=readers, writers=writers,
                                     depth=depth):
            if finished.disk_full:  # every later write would fail alike: end the run here
                raise SaveError(finished.message)
            waiting[finished.index] = finished
            while following in waiting:  # in input order: a list reads as the files were given
                yield waiting.pop(following)
                following += 1
    except Cancelled:  # files written after a gap left by the stop are reported too
        yield from (waiting[i] for i in sorted(waiting))
        raise
    yield from (waiting[i] for i in sorted(waiting))


def run_folder_job(job: FolderJob, stop: threading.Event | None = None,
                   progress: TileProgress | None = None) -> Iterator[FileResult]:
    """Load the job's model on its device, then :func:`denoise_files` (same arguments).

    A job from a STAR file (:func:`star_job`) then writes the STAR file with the denoised
    paths, unless a file failed (a list with missing micrographs would break the next job).

    Raises
    ------
    Cancelled
        ``stop`` was set (also while the model was loading).
    """
    from .load import load_denoiser

    denoiser = load_denoiser(job.weights, job.device)
    failed = False
    for result in denoise_files(denoiser, job.files, job.out_dir, outputs=job.outputs,
                                overwrite=job.overwrite, stop=stop, progress=progress,
                                pixel_cutoff=job.pixel_cutoff, working=job.working,
                                bin_factor=job.bin_factor, out_dtype=job.out_dtype,
                                smooth=job.smooth):
        failed = failed or result.status == "failed"
        yield result
    if job.star is not None and job.star_output is not None and not failed:
        from ..io.star import write_denoised_star

        write_denoised_star(job.star, job.planned_outputs(), job.star_output)


def _stages(denoiser: Denoiser, tiles: TileProgress, scale: dict[str, Any],
            options: dict[str, Any], out_dtype: str) -> Stages:
    """Read (plan the binning, read the pixels), denoise, write: one file's three stages.

    The optional Gaussian after denoising runs in the writers' threads, off the model's.
    """
    from functools import partial

    from ..io.images import read_image, write_mrc
    from ..io.intensity import clip_hot_pixels
    from .denoiser import denoise
    from .pipeline import Stages
    from .scale import denoise_binned, plan_file
    from .smoothing import as_smoothing, smoothed

    options = dict(options)
    smoothing = as_smoothing(options.pop("smooth", 0.0))
    cutoff = options.pop("pixel_cutoff", None)  # clipped once: what the model and smoothing see

    def read(result: FileResult) -> tuple[Any, Any, float]:
        plan = plan_file(result.source, denoiser.checkpoint.pixel_size_range, **scale)
        image, pixel_size = read_image(result.source)
        return plan, image, pixel_size

    def compute(result: FileResult, item: tuple[Any, Any, float]
                ) -> tuple[Any, Any, float, Any]:
        plan, image, pixel_size = item
        tiles(0, 1)
        if cutoff is not None:
            image = clip_hot_pixels(image, cutoff)
        run = partial(denoise, denoiser.net, name=str(result.source))
        data = denoise_binned(run, image, plan.factor, **denoiser.options(), progress=tiles,
                              **options)
        return plan, data, pixel_size, image  # the image: the background smoothing's noise

    def write(result: FileResult, item: tuple[Any, Any, float, Any]) -> FileResult:
        plan, data, pixel_size, image = item
        result.output.parent.mkdir(parents=True, exist_ok=True)
        write_mrc(result.output, smoothed(data, smoothing, source=image), pixel_size,
                  dtype=out_dtype)
        note = f" ({plan.note})" if plan.note else ""
        return replace(result, scale=plan.describe() + note)

    return Stages(read, compute, write)


def _cancellable(progress: TileProgress | None, stop: threading.Event | None) -> TileProgress:
    """Wrap ``progress`` in a tile callback that raises :class:`Cancelled` once ``stop`` is set."""

    def tiles(done: int, total: int) -> None:
        if stop is not None and stop.is_set():
            raise Cancelled("denoising cancelled")
        if progress is not None:
            progress(done, total)

    return tiles
