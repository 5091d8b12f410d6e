"""Tiled, blended denoising of micrographs of any size; the result equals one whole-image pass.

A convolutional net's output pixel depends only on input pixels within its receptive radius ``r``.
Each tile is therefore read with a halo of ``r`` pixels; outputs within ``r`` of an *internal*
tile edge are discarded (weight 0), the rest of the overlap is blended with a cosine ramp, and the
weights are normalised to sum to one. Tiles at the image border touch it, so the net's zero padding
acts exactly as in the untiled pass. A pooling model (the ``unet-small`` preset) gets tiles on
its pooling grid and the halo its edge reaches (``ModelConfig.downsampling``,
``ModelConfig.receptive_radius``), which keeps the equality. The geometry is in :mod:`.tiling`,
the loop in :mod:`.loops`; docs/inference.md explains the rule, the memory planning and the
fast paths (channels_last on CPU; fp16/bf16 with channels_last and cuDNN autotuning on CUDA).
How a run is set up (device, precision, layout, tiles) is in :mod:`.options`; the fp32 check of a
reduced precision in :mod:`.precision` (re-exported here).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config.sections import PRECISIONS
from ..data.normalize import Normalizer, fit_normalizer
from ..io.images import read_image, write_mrc
from . import loops
from .options import forward_for, input_stack, plan_for, resolve_precision, slice_name, to_device
from .precision import PrecisionCheck, compare_precision, precision_error
from .tiling import CPU_ACTIVATION_BYTES, TilePlan, back_off, plan_tiles, receptive_radius

__all__ = [
    "CPU_ACTIVATION_BYTES", "PRECISIONS", "PrecisionCheck", "TilePlan", "compare_precision",
    "denoise", "denoise_file", "plan_tiles", "precision_error", "receptive_radius",
]


def denoise(
    model: nn.Module,
    image: np.ndarray,
    *,
    normalization: str = "none",
    device: str | torch.device = "cpu",
    tile_size: int | None = None,
    batch_size: int | None = None,
    precision: str = "fp32",
    channels_last: bool | None = None,
    amp: bool = False,
    progress: Callable[[int, int], None] | None = None,
    halo: int | None = None,
    name: str | None = None,
    fused: bool = True,
    pixel_cutoff: float | None = None,
    autotune: bool = False,
) -> np.ndarray:
    """Denoise a micrograph (y, x) or a stack (z, y, x) slice by slice, in blended tiles.

    Parameters
    ----------
    model
        A same-size 1-channel → 1-channel image net; it is moved to ``device``, and run in eval
        mode (its training flag and weight layout are restored afterwards).
    image
        Any real dtype, e.g. a memory-mapped MRC; on CPU it is read tile by tile, on CUDA/MPS
        slice by slice, never copied whole.
    normalization
        ``none``, ``meanstd`` or ``percentile``: fitted on each whole slice, applied to its tiles
        and inverted on the outputs, so brightness is kept and tiling does not change the result.
    device
        ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto`` (cuda > mps > cpu); a
        ``torch.device`` is taken as already resolved and used as given.
    tile_size, batch_size
        Largest tile edge (halo included) and tiles per forward pass; chosen from the device and
        the memory available when ``None`` (see :func:`plan_tiles`).
    precision
        ``fp32`` (exact; TF32 off on CUDA), ``tf32`` (TF32 convolutions on CUDA, fp32
        elsewhere), ``fp16`` or ``bf16`` (forward pass under ``torch.autocast``, on any device;
        on CPU usually slower than fp32). :func:`compare_precision` measures the difference.
    channels_last
        Run the net in the channels_last layout; by default on CPU, and on CUDA for fp16/bf16.
    amp
        Deprecated: ``True`` means ``precision="fp16"`` on CUDA and is ignored elsewhere.
    progress
        Called as ``progress(done_tiles, total_tiles)`` after each batch.
    halo
        Receptive radius of the model; :func:`receptive_radius` by default.
    name
        The micrograph's file name, for error messages.
    fused
        With ``fp16`` on CUDA, run the seed net by the fused Triton kernels
        (:mod:`napari_cryoden.kernels`) when Triton is installed: about 3x cuDNN's fp16 forward,
        with the same fp16 accuracy. Other architectures, devices and precisions use PyTorch.
    pixel_cutoff
        If given, first set the pixels at least this many standard deviations from each
        micrograph's mean to the mean (hot pixels; Topaz's ``--pixel-cutoff``, see
        :func:`~napari_cryoden.io.intensity.clip_hot_pixels`); the image is then copied whole.
    autotune
        On CUDA, let cuDNN time its convolution algorithms on the first batch and keep the
        fastest. Off by default: it costs seconds on the first image and pays only over many
        (:func:`~napari_cryoden.inference.batch.denoise_files` turns it on for long runs).

    Returns
    -------
    numpy.ndarray
        float32 array of the input's shape. On CUDA out-of-memory the batch, then the tile, is
        halved and the image redone, with a warning.

    Raises
    ------
    ConfigError
        An unknown ``precision`` or ``normalization``.
    """
    stack = input_stack(image, pixel_cutoff)
    dev = to_device(device)
    precision = resolve_precision(precision, amp, dev)
    if precision in loops.AUTOCAST and dev.type == "cpu":
        warnings.warn(f"denoise: {precision} on CPU is usually slower than fp32 (it needs "
                      "AVX512-BF16 or AMX); fp32 is exact", RuntimeWarning, stacklevel=2)
    plan = plan_for(model, stack.shape, dev, precision, tile_size, batch_size, halo)
    normalizers = [fit_normalizer(stack[z], normalization, slice_name(name, z, stack.shape[0]))
                   for z in range(stack.shape[0])]
    out = np.empty(stack.shape, np.float32)
    was_training = model.training
    model.to(dev).eval()
    net, layout = forward_for(model, dev, precision, channels_last, fused)
    try:
        with loops.fast_backend(dev, precision, autotune), loops.model_layout(model, layout):
            while not _run_plan(net or model, stack, out, normalizers, plan, dev, precision,
                                layout, progress):
                plan = _back_off(plan, stack.shape)
    finally:
        model.train(was_training)
    return out.reshape(np.shape(image))


def denoise_file(model: nn.Module, src: str | os.PathLike[str], dst: str | os.PathLike[str],
                 bin_factor: float = 1.0, **options: Any) -> Path:
    """Denoise a micrograph or stack file (MRC or TIFF) into an MRC file with the same pixel size.

    ``options`` are the keyword arguments of :func:`denoise`, and ``smooth`` (σ px of a
    Gaussian after denoising, or a :class:`~napari_cryoden.inference.smoothing.Smoothing`). With
    ``bin_factor`` > 1 the micrograph is denoised Fourier-binned by that factor and padded back
    (:func:`~napari_cryoden.inference.scale.denoise_binned`): the output keeps the input's
    shape and pixel size. Returns the path written.
    """
    from .scale import denoise_binned

    image, pixel_size = read_image(src)
    data = denoise_binned(partial(denoise, model, name=str(src)), image, bin_factor, **options)
    write_mrc(dst, data, pixel_size)
    return Path(dst)


def _run_plan(model: loops.Net, stack: np.ndarray, out: np.ndarray, normalizers: list[Normalizer],
              plan: TilePlan, dev: torch.device, precision: str, layout: bool,
              progress: Callable[[int, int], None] | None) -> bool:
    """Fill ``out``; ``False`` if CUDA ran out of memory (``out`` is then incomplete)."""
    try:
        with torch.inference_mode():
            for done in loops.run_tiles(model, stack, out, normalizers, plan, dev, precision,
                                        layout):
                if progress is not None:
                    progress(done, plan.n_tiles)
        return True
    except torch.cuda.OutOfMemoryError:
        pass
    if dev.type == "cuda":  # outside the except block, so the failed batch's tensors are freed
        torch.cuda.empty_cache()
    return False


def _back_off(plan: TilePlan, shape: tuple[int, ...]) -> TilePlan:
    new = back_off(plan, shape)
    warnings.warn(f"denoise: out of memory with tile {plan.tile} x batch {plan.batch}; "
                  f"retrying with tile {new.tile} x batch {new.batch}", RuntimeWarning,
                  stacklevel=3)
    return new


