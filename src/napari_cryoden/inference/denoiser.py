"""Tiled, blended denoising of micrographs of any size; the result equals one whole-image pass.

A convolutional net's output pixel depends only on input pixels within its receptive radius ``r``.
Each tile is therefore read with a halo of ``r`` pixels; outputs within ``r`` of an *internal*
tile edge are discarded (weight 0), the rest of the overlap is blended with a cosine ramp, and the
weights are normalised to sum to one. Tiles at the image border touch it, so the net's zero padding
acts exactly as in the untiled pass. A pooling model (the ``unet-small`` preset) gets tiles on
its pooling grid and the halo its edge reaches (``ModelConfig.downsampling``,
``ModelConfig.receptive_radius``), which keeps the equality. The geometry is in :mod:`._tiling`,
the loop in :mod:`._tile_loops`; docs/inference.md explains the rule, the memory planning and the
fast paths (channels_last on CPU; fp16/bf16 with channels_last and cuDNN autotuning on CUDA).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config.sections import PRECISIONS, ConfigError
from ..data.normalize import MAX_FIT_ROWS, Normalizer, fit_normalizer
from ..devices import resolve_device
from ..errors import InputError
from ..io.images import read_image, write_mrc
from . import loops
from .tiling import (
    CPU_ACTIVATION_BYTES,
    TilePlan,
    back_off,
    hidden_channels,
    plan_tiles,
    receptive_radius,
    tile_multiple,
)

__all__ = [
    "CPU_ACTIVATION_BYTES", "PRECISIONS", "PrecisionCheck", "TilePlan", "compare_precision",
    "denoise", "denoise_file", "plan_tiles", "precision_error", "receptive_radius",
]


@dataclass(frozen=True)
class PrecisionCheck:
    """How far a reduced precision's outputs are from fp32 on the first batch of tiles.

    ``max_abs`` is in the image's units (after undoing the normalisation); ``image_std`` is the
    standard deviation of the image's first slice.
    """

    precision: str
    max_abs: float
    image_std: float

    @property
    def relative(self) -> float:
        """``max_abs`` as a fraction of ``image_std``."""
        if self.max_abs == 0.0:
            return 0.0
        return self.max_abs / self.image_std if self.image_std > 0 else math.inf

    def __str__(self) -> str:
        return (f"{self.precision}: max |difference| vs fp32 on the first tiles = "
                f"{self.max_abs:.1e} ({100 * self.relative:.2g} % of the image's std)")


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
    stack = _as_stack(image)
    dev = _device(device)
    precision = _resolve_precision(precision, amp, dev)
    if precision in loops.AUTOCAST and dev.type == "cpu":
        warnings.warn(f"denoise: {precision} on CPU is usually slower than fp32 (it needs "
                      "AVX512-BF16 or AMX); fp32 is exact", RuntimeWarning, stacklevel=2)
    layout = _default_layout(dev, precision) if channels_last is None else channels_last
    halo = receptive_radius(model) if halo is None else halo
    plan = plan_tiles(stack.shape, halo=halo, hidden_channels=hidden_channels(model),
                      device=dev, tile_size=tile_size, batch_size=batch_size, precision=precision,
                      multiple=tile_multiple(model))
    normalizers = [fit_normalizer(stack[z], normalization, _slice_name(name, z, stack.shape[0]))
                   for z in range(stack.shape[0])]
    out = np.empty(stack.shape, np.float32)
    was_training = model.training
    model.to(dev).eval()
    net = _fused_forward(model, dev, precision) if fused else None
    layout = layout and net is None
    try:
        with loops.fast_backend(dev, precision), loops.model_layout(model, layout):
            while not _run_plan(net or model, stack, out, normalizers, plan, dev, precision,
                                layout, progress):
                plan = _back_off(plan, stack.shape)
    finally:
        model.train(was_training)
    return out.reshape(np.shape(image))


def denoise_file(model: nn.Module, src: str | os.PathLike[str], dst: str | os.PathLike[str],
                 **options: Any) -> Path:
    """Denoise a micrograph or stack file (MRC or TIFF) into an MRC file with the same pixel size.

    ``options`` are the keyword arguments of :func:`denoise`. Returns the path written.
    """
    image, pixel_size = read_image(src)
    write_mrc(dst, denoise(model, image, name=str(src), **options), pixel_size)
    return Path(dst)


def compare_precision(
    model: nn.Module,
    image: np.ndarray,
    precision: str,
    device: str | torch.device = "cpu",
    *,
    normalization: str = "none",
    tile_size: int | None = None,
    batch_size: int | None = None,
    channels_last: bool | None = None,
    halo: int | None = None,
    name: str | None = None,
    fused: bool = True,
) -> PrecisionCheck:
    """Run the first batch of tiles of ``image`` in ``precision`` and in fp32, and compare.

    The tiles, layout and normalisation are those :func:`denoise` would use with the same
    arguments (see there), the fused kernels included; the reference runs in exact fp32 (TF32
    off).

    Returns
    -------
    PrecisionCheck
        ``max_abs`` in the image's units: 0 for fp32 (nothing is run), ``inf`` if the reduced
        precision gave non-finite values (e.g. fp16 overflow on un-normalised counts).

    Raises
    ------
    ConfigError
        An unknown ``precision`` or ``normalization``.
    """
    stack = _as_stack(image)
    dev = _device(device)
    precision = _resolve_precision(precision, False, dev)
    step = max(1, math.ceil(stack.shape[1] / MAX_FIT_ROWS))
    std = float(np.asarray(stack[0, ::step], np.float64).std())
    if precision == "fp32":
        return PrecisionCheck(precision, 0.0, std)
    halo = receptive_radius(model) if halo is None else halo
    plan = plan_tiles(stack.shape, halo=halo, hidden_channels=hidden_channels(model),
                      device=dev, tile_size=tile_size, batch_size=batch_size, precision=precision,
                      multiple=tile_multiple(model))
    norm = fit_normalizer(stack[0], normalization, _slice_name(name, 0, stack.shape[0]))
    outputs = []
    was_training = model.training
    model.to(dev).eval()
    try:
        for run in ("fp32", precision):
            layout = _default_layout(dev, run) if channels_last is None else channels_last
            net = _fused_forward(model, dev, run) if fused else None
            layout = layout and net is None
            with (torch.inference_mode(), loops.fast_backend(dev, run),
                  loops.model_layout(model, layout)):
                outputs.append(loops.first_batch(net or model, stack, norm, plan, dev, run,
                                                 layout))
    finally:
        model.train(was_training)
    diff = np.abs(outputs[1].astype(np.float64) - outputs[0])
    max_abs = float(diff.max()) * norm.scale if np.isfinite(diff).all() else math.inf
    return PrecisionCheck(precision, max_abs, std)


def precision_error(model: nn.Module, image: np.ndarray, precision: str,
                    device: str | torch.device = "cpu", **options: Any) -> float:
    """Max |``precision`` − fp32| on the first tiles, in the image's units.

    ``options`` are the keyword arguments of :func:`compare_precision`.
    """
    return compare_precision(model, image, precision, device, **options).max_abs


def _fused_forward(model: nn.Module, dev: torch.device, precision: str) -> loops.Net | None:
    """The fused Triton forward of the seed net for fp16 on CUDA; None where it does not apply."""
    if precision != "fp16" or dev.type != "cuda":
        return None
    from .. import kernels

    if not kernels.available():
        return None
    try:
        return kernels.FusedForward(model, dev)
    except ValueError:  # not the 3-layer 3x3 net the kernels compute
        return None


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


def _device(device: str | torch.device) -> torch.device:
    """A ``torch.device`` as given (resolved once by the caller), else the resolved choice."""
    return device if isinstance(device, torch.device) else resolve_device(device)


def _resolve_precision(precision: str, amp: bool, dev: torch.device) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    if not amp:
        return precision
    warnings.warn("denoise: amp=True is deprecated; use precision='fp16'", DeprecationWarning,
                  stacklevel=3)
    if precision not in ("fp32", "fp16"):
        raise ConfigError(f"precision: amp=True (fp16) contradicts precision {precision!r}")
    return "fp16" if dev.type == "cuda" else precision


def _default_layout(dev: torch.device, precision: str) -> bool:
    """channels_last: always on CPU (2x faster convolutions), on CUDA for fp16/bf16."""
    return dev.type == "cpu" or (dev.type == "cuda" and precision in loops.AUTOCAST)


def _as_stack(image: np.ndarray) -> np.ndarray:
    """A (z, y, x) view of a 2D image or stack, without copying."""
    array = np.asarray(image)
    if array.ndim not in (2, 3) or 0 in array.shape:
        raise InputError(f"denoise: expected a (y, x) image or (z, y, x) stack, got shape "
                         f"{array.shape}")
    if not np.issubdtype(array.dtype, np.integer) and not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"denoise: expected real pixel values, got dtype {array.dtype}")
    return array if array.ndim == 3 else array[None]


def _slice_name(name: str | None, z: int, nz: int) -> str | None:
    return name if nz == 1 else f"{name or 'stack'} slice {z}"
