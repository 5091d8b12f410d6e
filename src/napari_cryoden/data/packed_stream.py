"""Batches from a packed store (:mod:`.packed`) at disk speed: the :class:`PatchStream` interface.

One epoch of :class:`PackedStream` is a seeded permutation of the store's patch indices, sharded
over ranks as :class:`~.stream.PatchStream` does. Batches are read into a ring of whole-batch host
buffers (pinned when the device is CUDA): ``reader_threads`` threads each read whole patches with
one ``os.preadv`` straight into a buffer (the GIL is released; no per-pixel Python, no extra
copy). The consumer's thread copies a finished buffer to the device without blocking on a side CUDA
stream, makes its current stream wait on the copy's event, and refills the buffer only after that
event has completed. Crops, synthetic noise (clean-only stores) and per-patch normalisation then
run on the device. Host memory is ``ring · arrays · B · P² · 2`` bytes (:attr:`host_bytes`),
whatever the size of the store: as many batches as fit in 128 MiB, from 2 to 4
(:func:`~._packed_ring.ring_depth`; 2 for 1024² float16 batches of 32, 64 MiB each). An epoch is
the same for a given ``(seed, epoch)`` whatever the number of reader threads.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Sequence

import numpy as np
import torch

from ..config.sections import NORMALIZATIONS
from ..errors import InputError
from . import _packed_ring
from ._packed_ring import Ring
from ._sharding import ShardedCounts
from .batches import Batch
from .packed import PackedStore
from .reading import epoch_rng

__all__ = ["PackedStream"]


class PackedStream(ShardedCounts):
    """Batches of (noisy, clean) patches of a packed store, each patch exactly once per epoch.

    Parameters
    ----------
    store : PackedStore or path
        The store (see :func:`~.packed.pack`).
    indices : sequence of int, optional
        The patches to stream (e.g. one side of :meth:`PackedStore.split`); default all.
    batch_size : int
        Patches per batch.
    shuffle : bool
        Permute the patches per epoch (training); otherwise stream them in ``indices`` order.
    seed, epoch : int
        Order, crops and synthetic noise depend on ``(seed, epoch)`` (and the rank) only.
    crop : int, optional
        With ``shuffle``, a random ``crop`` × ``crop`` region of each patch, cut on the device.
    reader_threads : int
        Threads reading patches from the store.
    device : str or torch.device
        Where batches are delivered.
    drop_last : bool
        Drop the last, smaller batch.
    rank, world_size : int
        This process's share of a data-parallel run: every ``world_size``-th patch of the
        epoch's order from ``rank``; with ``shuffle`` the last ``n % world_size`` are dropped.
    normalization : str
        Pair stores: must be the store's own (its values are normalised at pack time).
        Clean-only stores: ``"meanstd"`` (each noisy patch to mean 0, std 1, the clean patch
        with the same affine map) or ``"none"`` (raw values).
    dtype : torch.dtype
        dtype of ``noisy`` and ``clean`` (float16 halves the device memory traffic).
    """

    def __init__(
        self,
        store: PackedStore | str | os.PathLike[str],
        indices: Sequence[int] | np.ndarray | None = None,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        epoch: int = 0,
        crop: int | None = None,
        reader_threads: int = 4,
        device: str | torch.device = "cpu",
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        normalization: str = "meanstd",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.store = store if isinstance(store, PackedStore) else PackedStore.open(store)
        p = self.store.patch_size
        self._indices = (np.arange(self.store.count, dtype=np.int64) if indices is None
                         else np.asarray(indices, dtype=np.int64).reshape(-1))
        if self._indices.size and not (0 <= self._indices.min() and
                                       self._indices.max() < self.store.count):
            raise ValueError(f"indices must lie in [0, {self.store.count})")
        if crop is not None and not 1 <= crop <= p:
            raise ValueError(f"crop ({crop}) must be between 1 and the patch size ({p})")
        if batch_size < 1 or reader_threads < 1 or not 0 <= rank < world_size:
            raise ValueError("batch_size and reader_threads must be >= 1, 0 <= rank < world_size")
        _check_normalization(self.store, normalization)
        self._batch_size, self._shuffle, self._seed, self._epoch = batch_size, shuffle, seed, epoch
        self._crop = crop if shuffle and crop != p else None
        self._reader_threads, self._drop_last = reader_threads, drop_last
        self._rank, self._world_size = rank, world_size
        self._normalization, self._dtype = normalization, dtype
        self.device = torch.device(device)

    def _plan_size(self) -> int:
        return len(self._indices)

    @property
    def sample_size(self) -> int:
        """Side of the patches in the batches: the crop with shuffle, else the patch size."""
        return self._crop or self.store.patch_size

    @property
    def epoch(self) -> int:
        """The epoch the next iteration will stream."""
        return self._epoch

    @property
    def host_bytes(self) -> int:
        """Host memory of the read buffers, independent of the store's size."""
        one = _packed_ring.batch_bytes(self.store, self._batch_size)
        return _packed_ring.ring_depth(one) * one


    def _plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Return this rank's patch indices in order and their crop corners ``(n, 2)``."""
        order, n_all = self._indices, self.n_patches_all_ranks
        corners = np.zeros((n_all, 2), dtype=np.int64)
        if self._shuffle:
            order = order[epoch_rng(self._seed, epoch, 0).permutation(len(order))]
            margin = self.store.patch_size - self.sample_size
            corners = epoch_rng(self._seed, epoch, 1).integers(0, margin + 1, size=(n_all, 2))
        step = slice(self._rank, n_all, self._world_size)
        return order[:n_all][step], corners[step]

    def _batches(self, epoch: int) -> Generator[Batch, None, None]:
        order, corners = self._plan(epoch)
        n_batches, size = len(self), self._batch_size
        if n_batches == 0:
            return
        cuda = self.device.type == "cuda"
        ring = Ring(self.store, size, self._reader_threads, pinned=cuda)
        side = torch.cuda.Stream(self.device) if cuda else None
        generator = self._generator(epoch) if self.store.noise is not None else None
        affine = self.store.affine
        stage = torch.float32 if generator is not None else self._dtype  # noise needs float32

        def plan(k: int) -> tuple[np.ndarray, np.ndarray]:
            chunk = slice(k * size, (k + 1) * size)
            extra = np.zeros((len(order[chunk]), 4), dtype=np.float32)
            extra[:, 2:] = corners[chunk]
            if affine is not None:
                extra[:, :2] = affine[order[chunk]]
            return order[chunk], extra

        try:
            for arrays, extra in ring.batches(n_batches, plan, self.device, side, stage):
                yield self._finish(arrays, extra, generator)
        finally:
            ring.close()

    def _generator(self, epoch: int) -> torch.Generator:
        generator = torch.Generator(device=self.device)
        seed = epoch_rng(self._seed, epoch, 2 + self._rank).integers(2**63)
        return generator.manual_seed(int(seed))

    def _finish(self, arrays: dict[str, torch.Tensor], extra: torch.Tensor,
                generator: torch.Generator | None) -> Batch:
        """Crop, synthesise noise and normalise on the device."""
        if self._crop is not None:
            corners = extra[:, 2:].long()
            arrays = {name: _crop(x, corners, self._crop) for name, x in arrays.items()}
        if "noisy" in arrays:
            noisy, clean = arrays["noisy"], arrays["clean"]
            offset, scale = extra[:, 0], extra[:, 1]
        else:
            assert generator is not None and self.store.noise is not None
            clean = arrays["clean"].float()
            noisy = _expose(clean, self.store.noise, generator)
            offset, scale = _fit(noisy, self._normalization)
            noisy = (noisy - offset[:, None, None]) / scale[:, None, None]
            clean = (clean - offset[:, None, None]) / scale[:, None, None]
        return Batch(noisy[:, None].to(self._dtype), clean[:, None].to(self._dtype),
                     offset.float().contiguous(), scale.float().contiguous())


def _check_normalization(store: PackedStore, normalization: str) -> None:
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}")
    if store.noise is not None and normalization == "percentile":
        raise InputError(f"{store.path}: a clean-only store normalises each patch on the "
                         "device with 'meanstd' or 'none', not 'percentile'")
    if store.noise is None and normalization != store.normalization:
        raise InputError(f"{store.path}: packed with normalization {store.normalization!r}, "
                         f"not {normalization!r}; repack with --normalization {normalization}")


def _crop(x: torch.Tensor, corners: torch.Tensor, size: int) -> torch.Tensor:
    """``x[b, y_b : y_b + size, x_b : x_b + size]`` for every b, as one gather."""
    steps = torch.arange(size, device=x.device)
    rows, cols = corners[:, :1] + steps, corners[:, 1:] + steps
    b = torch.arange(x.shape[0], device=x.device)[:, None, None]
    return x[b, rows[:, :, None], cols[:, None, :]]


def _expose(clean: torch.Tensor, noise: dict[str, float], generator: torch.Generator
            ) -> torch.Tensor:
    """Shot noise at ``dose`` e⁻/Å² and Gaussian read noise, as the simulator's ``expose``."""
    electrons = noise["dose"] * noise["pixel_size"] ** 2
    noisy = torch.poisson((clean * electrons).clamp_(min=0), generator=generator) / electrons
    if noise["read_noise"] > 0:
        noisy += noise["read_noise"] * torch.randn(clean.shape, generator=generator,
                                                   device=clean.device, dtype=clean.dtype)
    return noisy


def _fit(noisy: torch.Tensor, normalization: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-patch offset and scale: mean and std of each noisy patch, or 0 and 1."""
    if normalization == "none":
        ones = torch.ones(noisy.shape[0], device=noisy.device)
        return torch.zeros_like(ones), ones
    std, mean = torch.std_mean(noisy, dim=(1, 2), correction=0)
    return mean, torch.where(std > 0, std, torch.ones_like(std))
