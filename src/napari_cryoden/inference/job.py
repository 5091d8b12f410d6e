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

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.normalize import fit_normalizer
from ..io.intensity import clip_hot_pixels
from .cache import cpu_threads, use_denoiser
from .region import Box
from .scale import denoise_binned
from .smoothing import (
    Smoothing,
    as_smoothing,
    sampled_threshold,
    smooth_margin,
    smoothed,
)

if TYPE_CHECKING:
    import torch

__all__ = ["DenoiseJob", "DenoiseResult", "REGION_MARGIN", "run_job"]

REGION_MARGIN = 32
"""Binned pixels around a region that a binned region run also denoises (then drops)."""


@dataclass(frozen=True)
class DenoiseJob:
    """Everything a denoise run needs: plain data, no layers.

    ``image`` is the whole image or stack when denoising it whole; for a region (``box``) it is
    the 2D slice ``z`` of a stack (``z`` is None for a 2D image). ``device`` is a choice
    (``auto``, ``cpu``, ``cuda[:n]``, ``mps``) or a ``torch.device``. ``pixel_cutoff``, if
    given, clips hot pixels first, per micrograph
    (:func:`~napari_cryoden.io.intensity.clip_hot_pixels`, as ``cryoden denoise --pixel-cutoff``).
    ``threads``, if given, is torch's CPU thread count for the run
    (:func:`~napari_cryoden.inference.cache.cpu_threads`). ``bin_factor`` > 1 denoises the image
    Fourier-binned by it and pads the result back (:mod:`.scale`); a region is then binned with
    a margin of :data:`REGION_MARGIN` binned pixels around it, clipped to the image.
    ``smooth`` > 0 blurs the result by a Gaussian of that σ in the image's pixels, or as a
    :class:`~napari_cryoden.inference.smoothing.Smoothing` says (keeping part of the finer
    detail, or only on the background); a region is then denoised with a margin of the
    kernel's radius, and for a background-only smoothing the sample boxes of the whole slice
    are denoised too (:func:`~napari_cryoden.inference.smoothing.sampled_threshold`), so its
    pixels equal the same crop of a whole-image run.
    """

    weights: Path
    device: str | torch.device
    image: Any
    box: Box | None = None
    name: str = "image"
    z: int | None = None
    pixel_cutoff: float | None = None
    threads: int | None = None
    bin_factor: float = 1.0
    smooth: float | Smoothing = 0.0


@dataclass(frozen=True)
class DenoiseResult:
    """The denoised image (or the pixels of ``job.box``) and how long the model ran.

    ``unsmoothed`` is the model's own output when the job smoothed a whole image (what judges
    the weights, e.g. the scramble guards, must see); None otherwise (then ``data`` is it).
    """

    job: DenoiseJob
    data: np.ndarray
    seconds: float
    unsmoothed: np.ndarray | None = None

    @property
    def model_output(self) -> np.ndarray:
        """The model's output before any smoothing (``data`` when there was none)."""
        return self.data if self.unsmoothed is None else self.unsmoothed


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
        options: dict[str, Any] = {"name": job.name, "progress": progress}
        if job.box is None:
            raw = denoise_binned(denoiser.denoise, np.asarray(image), job.bin_factor, **options)
            # after any binning is undone, as denoise_binned
            data = smoothed(raw, job.smooth, source=image)
            return DenoiseResult(job, data, time.perf_counter() - start,
                                 None if data is raw else raw)
        normalizer = None  # fitted once on the whole image for the box and its sample boxes
        if job.bin_factor == 1:
            normalizer = fit_normalizer(np.asarray(image), denoiser.normalization, job.name)

        def denoise_box(box: Box, **extra: Any) -> np.ndarray:
            if normalizer is not None:
                return denoiser.denoise_region(image, box, normalizer=normalizer, **extra)
            return _binned_region(denoiser.denoise, image, box, job.bin_factor, extra)

        smoothing = as_smoothing(job.smooth)
        threshold = None
        if smoothing and smoothing.where == "background":  # the whole micrograph's
            threshold = sampled_threshold(partial(denoise_box, name=job.name), image,
                                          smoothing)
        outer = job.box.grown(smooth_margin(smoothing), np.shape(image))
        data = smoothed(denoise_box(outer, **options), smoothing, threshold)[job.box.within(outer)]
        return DenoiseResult(job, np.ascontiguousarray(data), time.perf_counter() - start)


def _binned_region(run: Callable[..., np.ndarray], image: Any, box: Box, factor: float,
                   options: dict[str, Any]) -> np.ndarray:
    """Denoise ``box`` of a 2D image binned by ``factor``, with a margin for the model's view."""
    outer = box.grown(math.ceil(REGION_MARGIN * factor), np.shape(image))
    data = denoise_binned(run, np.asarray(image[outer.slices]), factor, **options)
    return data[box.within(outer)]
