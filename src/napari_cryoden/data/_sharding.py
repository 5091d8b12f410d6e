"""What the two patch streams share: epochs dealt round-robin over ranks (torchrun)."""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

__all__ = ["ShardedCounts"]


class ShardedCounts:
    """``n_patches``, ``n_patches_all_ranks`` and ``n_dropped`` from the size of an epoch's plan.

    A subclass sets ``_rank``, ``_world_size``, ``_shuffle``, ``_batch_size``, ``_drop_last``
    and ``_epoch``, says how many patches an epoch's plan holds (:meth:`_plan_size`) and streams
    an epoch's batches (:meth:`_batches`). While training (``_shuffle``) the plan is cut to a
    multiple of the world size, so that every rank takes the same number of steps.
    """

    _rank: int
    _world_size: int
    _shuffle: bool
    _batch_size: int
    _drop_last: bool
    _epoch: int

    def _plan_size(self) -> int:
        raise NotImplementedError

    def _batches(self, epoch: int) -> Generator[Any, None, None]:
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch (and so the order, crops and noise) of the next iteration."""
        self._epoch = epoch

    def __len__(self) -> int:
        if self._drop_last:
            return self.n_patches // self._batch_size
        return math.ceil(self.n_patches / self._batch_size)

    def __iter__(self) -> Generator[Any, None, None]:
        return self._batches(self._epoch)

    @property
    def n_patches(self) -> int:
        """Patches per epoch streamed by this rank (all of them without sharding)."""
        return len(range(self._rank, self.n_patches_all_ranks, self._world_size))

    @property
    def n_patches_all_ranks(self) -> int:
        """Patches per epoch streamed by all ranks together: the plan less the dropped ones."""
        return self._plan_size() - self.n_dropped

    @property
    def n_dropped(self) -> int:
        """Patches of each epoch's plan that no rank streams (``< world_size``, training only)."""
        return self._plan_size() % self._world_size if self._shuffle else 0
