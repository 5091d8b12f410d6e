"""The tile loop of :func:`napari_cryoden.inference.denoiser.denoise`, on the host or on a device.

Tiles are cut into one preallocated batch, run through the model, and their kept outputs are
added, times their blend weights, into a float32 accumulator of their slice; when a slice's last
tile is in, the accumulator is mapped back to image intensities (``acc · scale + offset``, which
equals inverting every tile because the weights sum to one).

- On CPU the accumulator is the output array itself, and each tile is copied (and cast) from the
  input into the batch and normalised there, while it is in the cache.
- On CUDA/MPS each slice is uploaded once, normalised on the device, cut into the batch by device
  copies, accumulated on the device and downloaded once. Every batch has the same shape (the
  last one is padded), so cuDNN's autotuner runs once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.normalize import Normalizer
from .tiling import AxisTile, TilePlan, axis_tiles

__all__ = ["AUTOCAST", "Net", "fast_backend", "first_batch", "forward", "model_layout", "run_tiles",
           "slices_on_device"]

AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16}
"""Precisions that run the forward pass under ``torch.autocast``, and their dtypes."""

_Job = tuple[int, int, int]  # slice, row tile, column tile
Net = nn.Module | Callable[[torch.Tensor], torch.Tensor]
"""The model, or a callable computing its forward pass (e.g. ``kernels.FusedForward``)."""


def forward(model: Net, batch: torch.Tensor, precision: str) -> torch.Tensor:
    """One forward pass of a (b, 1, h, w) batch on its device; fp16/bf16 under autocast."""
    dtype = AUTOCAST.get(precision)
    context: Any = contextlib.nullcontext()
    if dtype is not None:
        context = torch.autocast(batch.device.type, dtype=dtype)
    with context:
        return model(batch)


def slices_on_device(dev: torch.device) -> bool:
    """Whether whole slices are uploaded (CUDA, MPS) rather than tiles cut on the host (CPU)."""
    return dev.type != "cpu"


def run_tiles(model: Net, stack: np.ndarray, out: np.ndarray,
              normalizers: list[Normalizer], plan: TilePlan, dev: torch.device, precision: str,
              channels_last: bool) -> Iterator[int]:
    """Fill ``out`` (z, y, x) batch by batch; yield the number of tiles done after each batch."""
    slices = _Slices(stack, out, normalizers, dev)
    rows, cols, jobs = _layout(stack.shape, plan)
    last_job = {z: i for i, (z, _, _) in enumerate(jobs)}
    wy = [torch.from_numpy(r.weight).to(dev)[:, None] for r in rows]
    wx = [torch.from_numpy(c.weight).to(dev)[None, :] for c in cols]
    batch = _batch_buffer(plan, dev, channels_last)
    for first in range(0, len(jobs), plan.batch):
        chunk = jobs[first:first + plan.batch]
        for i, (z, r, c) in enumerate(chunk):
            slices.cut(batch[i, 0], z, rows[r], cols[c])
        pred = forward(model, batch if slices.on_device else batch[:len(chunk)], precision)
        for i, (z, r, c) in enumerate(chunk):
            slices.add(pred[i, 0], z, rows[r], cols[c], wy[r] * wx[c])
        for z in sorted({z for z, _, _ in chunk if last_job[z] < first + len(chunk)}):
            slices.finish(z)
        yield first + len(chunk)


def first_batch(model: Net, stack: np.ndarray, normalizer: Normalizer, plan: TilePlan,
                dev: torch.device, precision: str, channels_last: bool) -> np.ndarray:
    """Run the model on the first batch of tiles of slice 0.

    Returns
    -------
    numpy.ndarray
        The outputs ``(n, h, w)``, normalised, float32 on the host.
    """
    slices = _Slices(stack[:1], np.empty((0, 0, 0), np.float32), [normalizer], dev)
    rows, cols, jobs = _layout(stack[:1].shape, plan)
    chunk = jobs[:plan.batch]
    batch = _batch_buffer(replace(plan, batch=len(chunk)), dev, channels_last)
    for i, (z, r, c) in enumerate(chunk):
        slices.cut(batch[i, 0], z, rows[r], cols[c])
    return forward(model, batch, precision).float().cpu().numpy()[:, 0]


@contextlib.contextmanager
def fast_backend(dev: torch.device, precision: str, autotune: bool = False) -> Iterator[None]:
    """On CUDA: TF32 only for ``tf32``, cuDNN's autotuner only with ``autotune``.

    The previous flags are restored. The autotuner pays only over many files: on the H100 it
    cost 5.2–5.3 s on the first K3 micrograph and saved 0.02–0.03 s on each later one (the
    general model in fp32, two runs of ``benchmarks/denoise_startup.py``; docs/performance.md).
    """
    if dev.type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    saved = cudnn.benchmark, cudnn.allow_tf32
    cudnn.benchmark, cudnn.allow_tf32 = autotune, precision == "tf32"
    try:
        yield
    finally:
        cudnn.benchmark, cudnn.allow_tf32 = saved


@contextlib.contextmanager
def model_layout(model: nn.Module, channels_last: bool) -> Iterator[None]:
    """Hold the model's 4-D weights in channels_last inside the ``with`` block.

    The original tensors are restored on leaving it; with ``channels_last`` False nothing changes.
    """
    if not channels_last:
        yield
        return
    params = {name: p.data for name, p in model.named_parameters()}
    buffers = {name: b.data for name, b in model.named_buffers()}
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    try:
        yield
    finally:
        for name, p in model.named_parameters():
            p.data = params[name]
        for name, b in model.named_buffers():
            b.data = buffers[name]


def _layout(shape: tuple[int, ...], plan: TilePlan) -> tuple[list[AxisTile], list[AxisTile],
                                                            list[_Job]]:
    (th, tw), (nz, ny, nx) = plan.tile, shape
    rows = axis_tiles(ny, th, plan.halo, plan.blend, plan.multiple)
    cols = axis_tiles(nx, tw, plan.halo, plan.blend, plan.multiple)
    jobs = [(z, r, c) for z in range(nz) for r in range(len(rows)) for c in range(len(cols))]
    return rows, cols, jobs


def _batch_buffer(plan: TilePlan, dev: torch.device, channels_last: bool) -> torch.Tensor:
    layout = torch.channels_last if channels_last else torch.contiguous_format
    batch = torch.empty((plan.batch, 1, *plan.tile), dtype=torch.float32, device=dev,
                        memory_format=layout)
    return batch.zero_()  # padding of a last, short batch on a device must be finite


def _settle_heap() -> None:
    """Free one 30 MiB block, so that glibc keeps tile-sized blocks on its heap from now on.

    glibc's ``malloc`` serves blocks above its mmap threshold (128 KiB at first) with fresh
    pages and returns them to the system on ``free``; it raises the threshold only when a larger
    block (up to 32 MiB) is freed. Until then every forward pass on a tile page-faults on all of
    its activations (measured: 1.1 million faults and 3x the time for a 4096² micrograph on
    CPU). Freeing a block of 30 MiB raises the threshold now; elsewhere this is a no-op.
    """
    block = torch.empty(30 * 2**20, dtype=torch.uint8)  # never touched: costs no memory
    del block


def _padded(dst: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``dst``, or (zeroed) its top-left ``shape`` part when the source is smaller."""
    if tuple(shape) == tuple(dst.shape):
        return dst
    dst.zero_()
    return dst[:shape[0], :shape[1]]


class _Slices:
    """Where tiles come from and where their outputs go: the host arrays, or device copies."""

    def __init__(self, stack: np.ndarray, out: np.ndarray, normalizers: list[Normalizer],
                 dev: torch.device) -> None:
        self.stack, self.out, self.normalizers, self.dev = stack, out, normalizers, dev
        self.on_device = slices_on_device(dev)
        self._live: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        if not self.on_device:
            out.fill(0.0)
            _settle_heap()

    def cut(self, dst: torch.Tensor, z: int, row: AxisTile, col: AxisTile) -> None:
        """Copy tile (row, col) of slice ``z``, normalised, into ``dst`` (h, w).

        Where the tile reaches past the image (a pooling model's padded grid) ``dst`` is zero.
        """
        th, tw = dst.shape
        if self.on_device:
            image = self._slice(z)[0]
            src = image[row.start:row.start + th, col.start:col.start + tw]
            _padded(dst, src.shape).copy_(src)
            return
        tile = self.stack[z, row.start:row.start + th, col.start:col.start + tw]
        dst = _padded(dst, tile.shape)
        np.copyto(dst.numpy(), tile, casting="unsafe")
        norm = self.normalizers[z]
        if norm.mode != "none":
            dst.sub_(norm.offset).div_(norm.scale)

    def add(self, pred: torch.Tensor, z: int, row: AxisTile, col: AxisTile,
            weight: torch.Tensor) -> None:
        """Add a tile's kept outputs times their blend ``weight`` into slice ``z``'s sum."""
        acc = self._slice(z)[1] if self.on_device else torch.from_numpy(self.out[z])
        target = acc[row.start + row.lo:row.start + row.hi, col.start + col.lo:col.start + col.hi]
        target.addcmul_(pred[row.lo:row.hi, col.lo:col.hi], weight)

    def finish(self, z: int) -> None:
        """Map slice ``z``'s sum back to image intensities; download it from the device."""
        norm = self.normalizers[z]
        if self.on_device:
            acc = self._live.pop(z)[1]
            if norm.mode != "none":
                acc.mul_(norm.scale).add_(norm.offset)
            torch.from_numpy(self.out[z]).copy_(acc)
        elif norm.mode != "none":
            torch.from_numpy(self.out[z]).mul_(norm.scale).add_(norm.offset)

    def _slice(self, z: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Slice ``z`` on the device (normalised) and its accumulator, uploaded on first use."""
        if z not in self._live:
            host = torch.empty(self.stack.shape[1:], dtype=torch.float32,
                               pin_memory=self.dev.type == "cuda")
            np.copyto(host.numpy(), self.stack[z], casting="unsafe")
            image = host.to(self.dev)  # blocking: ``host`` is free again when this returns
            norm = self.normalizers[z]
            if norm.mode != "none":
                image.sub_(norm.offset).div_(norm.scale)
            self._live[z] = image, torch.zeros_like(image)
        return self._live[z]
