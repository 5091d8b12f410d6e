"""Tiled, blended denoising of micrographs of any size; the result equals one whole-image pass.

A convolutional net's output pixel depends only on input pixels within its receptive radius ``r``.
Each tile is therefore read with a halo of ``r`` pixels; outputs within ``r`` of an *internal*
tile edge are discarded (weight 0), the rest of the overlap is blended with a cosine ramp, and the
weights are normalised to sum to one. Tiles at the image border touch it, so the net's zero padding
acts exactly as in the untiled pass. docs/inference.md explains the rule and the memory planning.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .data.io import read_image, write_mrc
from .data.normalize import Normalizer, fit_normalizer
from .errors import InputError

__all__ = ["TilePlan", "plan_tiles", "receptive_radius", "denoise", "denoise_file"]

CPU_ACTIVATION_BYTES = 512 * 2**20
"""Activation budget for one batch of tiles on CPU and MPS."""
CUDA_FREE_FRACTION = 0.5
"""Share of the free CUDA memory (``torch.cuda.mem_get_info``) one batch of tiles may use."""
MAX_BATCH = 32
_MAX_BLEND = 64
_INT32_ELEMENTS = 2**31 - 1  # some conv kernels index one sample with 32-bit integers


@dataclass(frozen=True)
class TilePlan:
    """How an image is cut: every tile has the same ``tile`` shape (y, x), halo included.

    ``grid`` is the number of tiles per slice along (y, x), ``n_tiles`` the count over the whole
    stack, ``blend`` the width in pixels of the cosine ramp between neighbouring tiles.
    """

    tile: tuple[int, int]
    halo: int
    blend: int
    batch: int
    grid: tuple[int, int]
    n_tiles: int


@dataclass(frozen=True)
class _AxisTile:
    """One tile along one axis: image span ``[start + lo, start + hi)`` gets ``weight``."""

    start: int
    lo: int
    hi: int
    weight: np.ndarray


def receptive_radius(model: nn.Module) -> int:
    """Pixels on each side of an output pixel that can influence it.

    Taken from ``model.config.receptive_radius`` when present; otherwise the sum of the radii of
    all stride-1 convolutions, an upper bound for any net built of such convolutions and
    pointwise operations.

    Raises
    ------
    ValueError
        If the model resamples (strided convolution or pooling); pass ``halo=`` to
        :func:`denoise` for such models.
    """
    radius = getattr(getattr(model, "config", None), "receptive_radius", None)
    if radius is not None:
        return int(radius)
    radius = 0
    for module in model.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            if any(s != 1 for s in module.stride) or module.transposed:
                raise ValueError(f"{type(module).__name__} resamples; pass halo= explicitly")
            pairs = zip(module.kernel_size, module.dilation, strict=True)
            radius += max(d * (k // 2) for k, d in pairs)
        elif isinstance(module, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
                                 nn.Upsample)):
            raise ValueError(f"{type(module).__name__} resamples; pass halo= explicitly")
    return radius


def plan_tiles(
    shape: tuple[int, ...],
    *,
    halo: int = 3,
    hidden_channels: int = 16,
    in_channels: int = 1,
    device: str | torch.device = "cpu",
    tile_size: int | None = None,
    batch_size: int | None = None,
    amp: bool = False,
    budget_bytes: int | None = None,
) -> TilePlan:
    """Choose tile shape and batch for an image of ``shape`` (y, x) or (z, y, x).

    Activations take about ``bytes · (in_channels + 2 · hidden_channels)`` per pixel and tile
    (4 bytes, 2 with ``amp`` on CUDA). A batch of tiles must fit in ``budget_bytes``: by default
    50 % of the free CUDA memory, or 512 MiB on CPU/MPS. Without ``tile_size`` the tile is the
    largest that fits at ``batch_size`` (default 1); without ``batch_size`` the batch is the most
    tiles that fit (at most 32). Tiles never exceed the image, and are shrunk so that an integer
    number of them covers each axis with the least overlap.

    Raises
    ------
    ValueError
        If ``tile_size`` is too small for the halo (below ``2 · halo + 16``).
    """
    ny, nx = shape[-2:]
    nz = int(np.prod(shape[:-2], dtype=np.int64))
    min_tile = 2 * halo + 16
    if tile_size is not None and tile_size < min_tile:
        raise ValueError(f"tile_size {tile_size} is below the minimum {min_tile} for halo {halo}")
    pixels = 0  # pixels of activations that fit in the budget; needed only to choose a size
    if tile_size is None or batch_size is None:
        dev = _resolve_device(device)
        per_pixel = (2 if amp and dev.type == "cuda" else 4) * (in_channels + 2 * hidden_channels)
        budget = budget_bytes if budget_bytes is not None else _activation_budget(dev)
        pixels = max(1, budget // per_pixel)
    if tile_size is None:
        per_tile = min(pixels // (batch_size or 1), _INT32_ELEMENTS // max(hidden_channels, 1))
        tile_size = max(min_tile, math.isqrt(per_tile) // 32 * 32)
    blend = max(2, min(_MAX_BLEND, (tile_size - 2 * halo) // 8))
    ty, tx = (_fit_axis(n, tile_size, 2 * halo + blend) for n in (ny, nx))
    gy, gx = _tile_count(ny, ty, 2 * halo + blend), _tile_count(nx, tx, 2 * halo + blend)
    n_tiles = nz * gy * gx
    if batch_size is None:
        batch_size = max(1, min(MAX_BATCH, n_tiles, pixels // (ty * tx)))
    return TilePlan((ty, tx), halo, blend, max(1, batch_size), (gy, gx), n_tiles)


def denoise(
    model: nn.Module,
    image: np.ndarray,
    *,
    normalization: str = "none",
    device: str | torch.device = "cpu",
    tile_size: int | None = None,
    batch_size: int | None = None,
    amp: bool = False,
    progress: Callable[[int, int], None] | None = None,
    halo: int | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Denoise a micrograph (y, x) or a stack (z, y, x) slice by slice, in blended tiles.

    Parameters
    ----------
    model
        A same-size 1-channel → 1-channel image net; it is moved to ``device``, and run in eval
        mode (its training flag is restored afterwards).
    image
        Any real dtype, e.g. a memory-mapped MRC; it is read tile by tile, never copied whole.
    normalization
        ``none``, ``meanstd`` or ``percentile``: fitted on each whole slice, applied to its tiles
        and inverted on the outputs, so brightness is kept and tiling does not change the result.
    device
        ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto`` (cuda > mps > cpu).
    tile_size, batch_size
        Largest tile edge (halo included) and tiles per forward pass; chosen from the memory
        available when ``None`` (see :func:`plan_tiles`).
    amp
        Autocast to bf16 (fp16 where bf16 is unsupported) on CUDA; ignored elsewhere.
    progress
        Called as ``progress(done_tiles, total_tiles)`` after each batch.
    halo
        Receptive radius of the model; :func:`receptive_radius` by default.
    name
        The micrograph's file name, for error messages.

    Returns
    -------
    numpy.ndarray
        float32 array of the input's shape. On CUDA out-of-memory the batch, then the tile, is
        halved and the image redone, with a warning.
    """
    stack = _as_stack(image)
    dev = _resolve_device(device)
    halo = receptive_radius(model) if halo is None else halo
    plan = plan_tiles(stack.shape, halo=halo, hidden_channels=_hidden_channels(model),
                      device=dev, tile_size=tile_size, batch_size=batch_size, amp=amp)
    normalizers = [fit_normalizer(stack[z], normalization, _slice_name(name, z, stack.shape[0]))
                   for z in range(stack.shape[0])]
    out = np.zeros(stack.shape, np.float32)
    was_training = model.training
    model.to(dev).eval()
    try:
        while not _run_plan(model, stack, out, normalizers, plan, dev, amp, progress):
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


def _run_plan(model: nn.Module, stack: np.ndarray, out: np.ndarray, normalizers: list[Normalizer],
              plan: TilePlan, dev: torch.device, amp: bool,
              progress: Callable[[int, int], None] | None) -> bool:
    """Fill ``out``; ``False`` if CUDA ran out of memory (``out`` is then incomplete)."""
    try:
        with torch.inference_mode():
            for done in _fill(model, stack, out, normalizers, plan, dev, amp):
                if progress is not None:
                    progress(done, plan.n_tiles)
        return True
    except torch.cuda.OutOfMemoryError:
        pass
    if dev.type == "cuda":  # outside the except block, so the failed batch's tensors are freed
        torch.cuda.empty_cache()
    return False


def _fill(model: nn.Module, stack: np.ndarray, out: np.ndarray, normalizers: list[Normalizer],
          plan: TilePlan, dev: torch.device, amp: bool) -> Iterator[int]:
    """Run all tiles batch by batch, accumulating weighted outputs; yield tiles done."""
    out.fill(0.0)
    (th, tw), (_, ny, nx) = plan.tile, stack.shape
    rows = _axis_tiles(ny, th, plan.halo, plan.blend)
    cols = _axis_tiles(nx, tw, plan.halo, plan.blend)
    jobs = [(z, r, c) for z in range(stack.shape[0]) for r in rows for c in cols]
    buffer = torch.empty((plan.batch, 1, th, tw), dtype=torch.float32,
                         pin_memory=dev.type == "cuda")
    host = buffer.numpy()
    for first in range(0, len(jobs), plan.batch):
        chunk = jobs[first:first + plan.batch]
        for i, (z, r, c) in enumerate(chunk):
            tile = stack[z, r.start:r.start + th, c.start:c.start + tw]
            host[i, 0] = normalizers[z].apply(tile)
        pred = _forward(model, buffer[:len(chunk)], dev, amp)
        for i, (z, r, c) in enumerate(chunk):
            _accumulate(out[z], pred[i], r, c, normalizers[z])
        yield first + len(chunk)


def _forward(model: nn.Module, batch: torch.Tensor, dev: torch.device, amp: bool) -> np.ndarray:
    """One forward pass of a (b, 1, h, w) host batch; returns (b, h, w) float32 on the host."""
    context: Any = contextlib.nullcontext()
    if amp and dev.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        context = torch.autocast("cuda", dtype=dtype)
    with context:
        pred = model(batch.to(dev, non_blocking=True))
    return pred.float().cpu().numpy()[:, 0]


def _accumulate(out: np.ndarray, pred: np.ndarray, row: _AxisTile, col: _AxisTile,
                normalizer: Normalizer) -> None:
    """Add a tile's kept outputs, mapped back to image intensities, times its blend weight."""
    kept = normalizer.invert(pred[row.lo:row.hi, col.lo:col.hi])
    out[row.start + row.lo:row.start + row.hi, col.start + col.lo:col.start + col.hi] += (
        kept * row.weight[:, None] * col.weight[None, :])


def _fit_axis(n: int, tile_max: int, overlap: int) -> int:
    """Smallest tile length (≤ ``tile_max``) that covers ``n`` in as few tiles as ``tile_max``."""
    if n <= tile_max:
        return n
    return math.ceil((n - overlap) / _tile_count(n, tile_max, overlap)) + overlap


def _tile_count(n: int, tile: int, overlap: int) -> int:
    """Tiles of this length needed to cover ``n`` pixels when neighbours overlap by ``overlap``."""
    return 1 if tile >= n else math.ceil((n - overlap) / (tile - overlap))


def _axis_tiles(n: int, tile: int, halo: int, blend: int) -> list[_AxisTile]:
    """Evenly spread tiles along one axis, with weights that sum to one at every pixel."""
    if tile >= n:
        return [_AxisTile(0, 0, n, np.ones(n, np.float32))]
    count = _tile_count(n, tile, 2 * halo + blend)
    starts = [(k * (n - tile) + (count - 1) // 2) // (count - 1) for k in range(count)]
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(blend) + 0.5) / blend)
    raw, total = [], np.zeros(n)
    for k, start in enumerate(starts):
        weight = np.ones(tile)
        if k > 0:
            weight[:halo], weight[halo:halo + blend] = 0.0, ramp
        if k < count - 1:
            weight[tile - halo:], weight[tile - halo - blend:tile - halo] = 0.0, ramp[::-1]
        raw.append(weight)
        total[start:start + tile] += weight
    tiles = []
    for k, (start, weight) in enumerate(zip(starts, raw, strict=True)):
        lo, hi = (halo if k > 0 else 0), (tile - halo if k < count - 1 else tile)
        share = weight[lo:hi] / total[start + lo:start + hi]
        tiles.append(_AxisTile(start, lo, hi, share.astype(np.float32)))
    return tiles


def _back_off(plan: TilePlan, shape: tuple[int, ...]) -> TilePlan:
    """Halve the batch, else the tile; re-raise out-of-memory when both are at their minimum."""
    if plan.batch > 1:
        new = replace(plan, batch=plan.batch // 2)
    elif max(plan.tile) // 2 >= 2 * plan.halo + 16:
        new = plan_tiles(shape, halo=plan.halo, tile_size=max(plan.tile) // 2, batch_size=1)
    else:
        raise torch.cuda.OutOfMemoryError(f"out of memory even with tile {plan.tile}, batch 1")
    warnings.warn(f"denoise: out of memory with tile {plan.tile} x batch {plan.batch}; "
                  f"retrying with tile {new.tile} x batch {new.batch}", RuntimeWarning,
                  stacklevel=3)
    return new


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


def _hidden_channels(model: nn.Module) -> int:
    channels = getattr(getattr(model, "config", None), "channels", None)
    if channels is not None:
        return int(channels)
    convs = [m.out_channels for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    return max(convs, default=1)


def _resolve_device(device: str | torch.device) -> torch.device:
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _activation_budget(dev: torch.device) -> int:
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
        return int(free * CUDA_FREE_FRACTION)
    return CPU_ACTIVATION_BYTES
