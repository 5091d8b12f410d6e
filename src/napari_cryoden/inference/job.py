"""One denoise request as plain data, and the function that carries it out (no Qt, no napari).

The Denoise widget builds a :class:`DenoiseJob` from its choices on the main thread, runs
:func:`run_job` in a worker, and writes the :class:`DenoiseResult` into a layer back on the main
thread. The model and the device are resolved once per job, and the loaded model kept for the
next job with the same file and device (:func:`~napari_cryoden.inference.cache.use_denoiser`).
Torch is imported only when a job runs, so that building a job stays light. A job ends early
when its ``loaded`` or ``progress`` callback raises (:class:`~napari_cryoden.errors.Cancelled`
when the user cancelled); callbacks come between batches of tiles, so a CPU job stops within
one batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..io.intensity import clip_hot_pixels
from .cache import cpu_threads, use_denoiser
from .region import Box

if TYPE_CHECKING:
    import torch

__all__ = ["DenoiseJob", "DenoiseResult", "run_job"]


@dataclass(frozen=True)
class DenoiseJob:
    """Everything a denoise run needs: plain data, no layers.

    ``image`` is the whole image or stack when denoising it whole; for a region (``box``) it is
    the 2D slice ``z`` of a stack (``z`` is None for a 2D image). ``device`` is a choice
    (``auto``, ``cpu``, ``cuda[:n]``, ``mps``) or a ``torch.device``. ``pixel_cutoff``, if
    given, clips hot pixels first, per micrograph
    (:func:`~napari_cryoden.io.intensity.clip_hot_pixels`, as ``cryoden denoise --pixel-cutoff``).
    ``threads``, if given, is torch's CPU thread count for the run
    (:func:`~napari_cryoden.inference.cache.cpu_threads`).
    """

    weights: Path
    device: str | torch.device
    image: Any
    box: Box | None = None
    name: str = "image"
    z: int | None = None
    pixel_cutoff: float | None = None
    threads: int | None = None


@dataclass(frozen=True)
class DenoiseResult:
    """The denoised image (or the pixels of ``job.box``) and how long the model ran."""

    job: DenoiseJob
    data: np.ndarray
    seconds: float


def run_job(job: DenoiseJob, progress: Callable[[int, int], None] | None = None,
            loaded: Callable[[], None] | None = None) -> DenoiseResult:
    """Resolve the device, load the checkpoint and denoise the whole image or the box.

    Parameters
    ----------
    job
        What to denoise, with which weights, where.
    progress
        Called as ``progress(done_tiles, total_tiles)`` after each batch of tiles (from the
        thread that runs the job).
    loaded
        Called once the model is loaded, before the first tile (from that thread).

    Returns
    -------
    DenoiseResult
        The float32 result (the image's shape, or ``job.box.shape``) and the model's run time
        (loading excluded).
    """
    with use_denoiser(job.weights, job.device) as denoiser, cpu_threads(job.threads):
        if loaded is not None:
            loaded()
        start = time.perf_counter()
        image = job.image
        if job.pixel_cutoff is not None:  # the whole micrograph's statistics, also for a box
            image = clip_hot_pixels(np.asarray(image), job.pixel_cutoff)
        if job.box is None:
            data = denoiser.denoise(np.asarray(image), name=job.name, progress=progress)
        else:
            data = denoiser.denoise_region(image, job.box, name=job.name, progress=progress)
        return DenoiseResult(job, data, time.perf_counter() - start)
