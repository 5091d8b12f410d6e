"""Tile geometry for denoising (:mod:`.denoiser`): tile size, batch, halo and blend weights.

All tiles of an image have one shape; along each axis they are spread evenly, overlap by
``2 · halo + blend`` pixels, and carry 1-D weights that are 0 on the halo, a cosine ramp over the
blend and 1 elsewhere, normalised to sum to one at every pixel. docs/inference.md explains why
the blended result equals one whole-image pass, and how the sizes are chosen.

For a model that pools (``unet-small``: ``multiple`` 4) tiles start on multiples of ``multiple``
and are that many pixels long, and the image counts as zero-padded (after normalisation) to a
multiple of it at the bottom and right, as the model pads it itself: tiles that reach into the
padding are cut with zeros there (``loops``), and their weights stop at the image's edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from ..devices import resolve_device

__all__ = [
    "AxisTile", "TilePlan", "axis_tiles", "back_off", "hidden_channels", "plan_tiles",
    "receptive_radius", "tile_multiple",
]

CPU_ACTIVATION_BYTES = 512 * 2**20
"""Activation budget for one batch of tiles on CPU and MPS."""
CUDA_FREE_FRACTION = 0.5
"""Share of the free CUDA memory (``torch.cuda.mem_get_info``) one batch of tiles may use."""
MAX_BATCH = 32
"""Most tiles in one forward pass."""
CPU_TILE_BYTES = 16 * 2**20
"""Default CPU tiles hold at most this many bytes per hidden activation (512² for 16 channels):
well below the 32 MiB up to which glibc keeps freed blocks on its heap (see ``loops``)."""
DEVICE_TILE_CORE = 1024
"""Default tile edge on CUDA/MPS, without its halo and blend: large tiles, batched."""
_MAX_BLEND = 64
_INT32_ELEMENTS = 2**31 - 1  # some conv kernels index one sample with 32-bit integers
_REDUCED = ("fp16", "bf16")


@dataclass(frozen=True)
class TilePlan:
    """How an image is cut: every tile has the same ``tile`` shape (y, x), halo included.

    ``grid`` is the number of tiles per slice along (y, x), ``n_tiles`` the count over the whole
    stack, ``blend`` the width in pixels of the cosine ramp between neighbouring tiles,
    ``multiple`` the grid that tile starts and sizes keep to (a pooling model's factor).
    """

    tile: tuple[int, int]
    halo: int
    blend: int
    batch: int
    grid: tuple[int, int]
    n_tiles: int
    multiple: int = 1


@dataclass(frozen=True)
class AxisTile:
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
        If the model resamples (strided convolution or pooling): pass ``halo=`` to :func:`denoise`.
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


def tile_multiple(model: nn.Module) -> int:
    """Return the pooling factor tiles must align to: ``model.config.downsampling``, else 1."""
    return int(getattr(getattr(model, "config", None), "downsampling", 1))


def plan_tiles(
    shape: tuple[int, ...],
    *,
    halo: int = 3,
    hidden_channels: int = 16,
    in_channels: int = 1,
    device: str | torch.device = "cpu",
    tile_size: int | None = None,
    batch_size: int | None = None,
    precision: str = "fp32",
    amp: bool = False,
    budget_bytes: int | None = None,
    multiple: int = 1,
) -> TilePlan:
    """Choose tile shape and batch for an image of ``shape`` (y, x) or (z, y, x).

    Activations take about ``bytes · (in_channels + 2 · hidden_channels)`` per pixel and tile
    (4 bytes; 2 for fp16/bf16 off the CPU, where ``amp`` means fp16), plus 8 bytes per pixel of
    the slices kept on a CUDA/MPS device. A batch must fit in ``budget_bytes``: by default 50 %
    of the free CUDA memory, or 512 MiB on CPU/MPS. Without ``tile_size`` the tile is the
    largest that fits at ``batch_size`` (default 1), but at most :data:`CPU_TILE_BYTES` per
    hidden activation on CPU (512² for 16 channels), and ``DEVICE_TILE_CORE`` plus halo and
    blend elsewhere. Without ``batch_size`` the batch is the most tiles that fit (at most 32; on
    CPU about one default tile's pixels), evened out over the batches. Tiles never exceed the
    image, and are shrunk so that an integer number of them covers each axis with the least
    overlap. With ``multiple`` > 1 (a model that pools) tiles are multiples of it, start on
    multiples of it, and the image counts as padded to a multiple of it.

    Raises
    ------
    ValueError
        If ``tile_size`` is too small for the halo: < ``2 · halo + 16`` rounded up to ``multiple``.
    """
    ny, nx = shape[-2:]
    nz = int(np.prod(shape[:-2], dtype=np.int64))
    min_tile = _round_up(2 * halo + max(16, 2 * multiple), multiple)
    if tile_size is not None and tile_size < min_tile:
        raise ValueError(f"tile_size {tile_size} is below the minimum {min_tile} for halo {halo}")
    dev = resolve_device(device, check=False)
    on_cpu = dev.type == "cpu"
    half = (amp or precision in _REDUCED) and not on_cpu
    per_pixel = (2 if half else 4) * (in_channels + 2 * hidden_channels)
    pixels = _batch_pixels(dev, ny * nx, per_pixel, budget_bytes)
    if tile_size is None:
        per_tile = min(pixels // (batch_size or 1), _INT32_ELEMENTS // max(hidden_channels, 1))
        fit = max(min_tile, math.isqrt(per_tile) // 32 * 32)
        tile_size = min(fit, _preferred_tile(on_cpu, halo, hidden_channels))
    tile_size = max(min_tile, tile_size // multiple * multiple)
    blend = blend_width(tile_size, halo)
    overlap = 2 * halo + blend
    ty, tx = (_fit_axis(n, tile_size, overlap, multiple) for n in (ny, nx))
    gy, gx = (_axis_count(n, t, overlap, multiple) for n, t in ((ny, ty), (nx, tx)))
    n_tiles = nz * gy * gx
    if batch_size is None:
        fits = _preferred_tile(True, halo, hidden_channels) ** 2 if on_cpu else pixels
        batch_size = _even_batch(n_tiles, fits // (ty * tx))
    return TilePlan((ty, tx), halo, blend, max(1, batch_size), (gy, gx), n_tiles, multiple)


def _batch_pixels(dev: torch.device, plane_pixels: int, per_pixel: int,
                  budget_bytes: int | None) -> int:
    """Tile pixels one batch may hold: the activation budget over the bytes per pixel."""
    budget = budget_bytes if budget_bytes is not None else _activation_budget(dev)
    if dev.type != "cpu":  # the input and the accumulated output of a slice live on the device
        per_pixel += 8
        budget = max(budget - 8 * plane_pixels, budget // 4)
    return max(1, budget // per_pixel)


def _even_batch(n_tiles: int, fits: int) -> int:
    """Return the batch size: at most ``fits`` tiles (and :data:`MAX_BATCH`), equal batches."""
    most = max(1, min(MAX_BATCH, n_tiles, fits))
    return math.ceil(n_tiles / math.ceil(n_tiles / most))


def _preferred_tile(on_cpu: bool, halo: int, hidden_channels: int) -> int:
    """CPU: tiles of :data:`CPU_TILE_BYTES` per activation; else a core of 1024² plus margins."""
    if on_cpu:
        return max(2 * halo + 16, math.isqrt(CPU_TILE_BYTES // (4 * max(hidden_channels, 1)))
                   // 32 * 32)
    core = 2 * halo + DEVICE_TILE_CORE
    return core + blend_width(core, halo)


def blend_width(tile: int, halo: int) -> int:
    """Width of the cosine ramp between tiles: 1/32 of the tile's core, from 2 to 64 pixels."""
    return max(2, min(_MAX_BLEND, (tile - 2 * halo) // 32))


def axis_tiles(n: int, tile: int, halo: int, blend: int, multiple: int = 1) -> list[AxisTile]:
    """Evenly spread tiles along one axis, with weights that sum to one at every pixel.

    With ``multiple`` > 1 the axis counts as padded to ``padded = ceil(n / multiple) · multiple``
    and the starts are multiples of ``multiple`` (``tile`` must be one too); the last tile may
    reach past ``n``, and its kept span (``hi``) stops at ``n``.
    """
    padded = _round_up(n, multiple)
    if tile >= padded:
        return [AxisTile(0, 0, n, np.ones(n, np.float32))]
    count = _axis_count(n, tile, 2 * halo + blend, multiple)
    units = (padded - tile) // multiple
    starts = [multiple * ((k * units + (count - 1) // 2) // (count - 1)) for k in range(count)]
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(blend) + 0.5) / blend)
    raw, total = [], np.zeros(padded)
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
        hi = min(hi, n - start)  # a tile reaching into the padding keeps only image pixels
        share = weight[lo:hi] / total[start + lo:start + hi]
        tiles.append(AxisTile(start, lo, hi, share.astype(np.float32)))
    return tiles


def back_off(plan: TilePlan, shape: tuple[int, ...]) -> TilePlan:
    """Halve the batch, else the tile; re-raise out-of-memory when both are at their minimum."""
    if plan.batch > 1:
        return replace(plan, batch=plan.batch // 2)
    smaller = max(plan.tile) // 2
    if smaller >= _round_up(2 * plan.halo + max(16, 2 * plan.multiple), plan.multiple):
        return plan_tiles(shape, halo=plan.halo, tile_size=smaller, batch_size=1,
                          multiple=plan.multiple)
    raise torch.cuda.OutOfMemoryError(f"out of memory even with tile {plan.tile}, batch 1")


def hidden_channels(model: nn.Module) -> int:
    """Return the widest layer's channel count, for the activation estimate.

    A config's ``activation_channels`` (e.g. 4 · channels for unet-small), else its ``channels``.
    """
    config = getattr(model, "config", None)
    channels = getattr(config, "activation_channels", getattr(config, "channels", None))
    if channels is not None:
        return int(channels)
    convs = [m.out_channels for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    return max(convs, default=1)


def _fit_axis(n: int, tile_max: int, overlap: int, multiple: int = 1) -> int:
    """Return the shortest tile (≤ ``tile_max``) that covers ``n`` in as few tiles as ``tile_max``.

    When ``multiple`` > 1 the length is a multiple of it, covering ``n`` padded to one.
    """
    if multiple > 1:
        padded = _round_up(n, multiple)
        if padded <= tile_max:
            return padded
        count = _axis_count(n, tile_max, overlap, multiple)
        tile = _round_up(overlap + multiple, multiple)
        while _axis_count(n, tile, overlap, multiple) > count:
            tile += multiple
        return tile
    if n <= tile_max:
        return n
    return math.ceil((n - overlap) / _tile_count(n, tile_max, overlap)) + overlap


def _axis_count(n: int, tile: int, overlap: int, multiple: int) -> int:
    """Count the tiles along an axis of ``n`` pixels (on the ``multiple`` grid when that is > 1).

    The count allows for the most a rounded start moves, so neighbours still overlap enough.
    """
    if multiple == 1:
        return _tile_count(n, tile, overlap)
    padded = _round_up(n, multiple)
    if tile >= padded:
        return 1
    step = (tile - overlap) // multiple  # largest spacing of starts, in grid units
    if step < 1:
        raise ValueError(f"tile {tile} is too small for overlap {overlap} on a {multiple}-px grid")
    return 1 + math.ceil((padded - tile) // multiple / step)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _tile_count(n: int, tile: int, overlap: int) -> int:
    """Tiles of this length needed to cover ``n`` pixels when neighbours overlap by ``overlap``."""
    return 1 if tile >= n else math.ceil((n - overlap) / (tile - overlap))


def _activation_budget(dev: torch.device) -> int:
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
        return int(free * CUDA_FREE_FRACTION)
    return CPU_ACTIVATION_BYTES
