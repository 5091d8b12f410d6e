"""Patch counts of a stream whose epochs are dealt round-robin over ranks (torchrun)."""

from __future__ import annotations

__all__ = ["ShardedCounts"]


class ShardedCounts:
    """``n_patches``, ``n_patches_all_ranks`` and ``n_dropped`` from the size of an epoch's plan.

    A subclass sets ``_rank``, ``_world_size`` and ``_shuffle`` and says how many patches an
    epoch's plan holds (:meth:`_plan_size`). While training (``_shuffle``) the plan is cut to a
    multiple of the world size, so that every rank takes the same number of steps.
    """

    _rank: int
    _world_size: int
    _shuffle: bool

    def _plan_size(self) -> int:
        raise NotImplementedError

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
