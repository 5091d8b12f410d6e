"""Split-frame SNR of an adaptation's starting and adapted model, on its held-out patches.

With even/odd halves, :func:`held_out_split_frame` denoises each half of every micrograph on its
own with both models and estimates the split-frame SNR
(:mod:`~napari_cryoden.evaluation.split_frame`) over the patches the adaptation held out: the
fine-tune never learned from them, so the adapted model is judged on regions it did not see.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import Cancelled
from ..evaluation.split_frame import PatchMoments, db, patch_moments, pool_split_frame
from ..inference.denoiser import denoise
from .adapt_data import held_out_boxes

__all__ = ["held_out_split_frame"]

Halves = tuple[np.ndarray, np.ndarray]


def held_out_split_frame(start: nn.Module, adapted: nn.Module, halves: Sequence[Halves],
                         normalization: str, *, patch_size: int, held_out: float, seed: int,
                         device: str | torch.device = "cpu",
                         names: Sequence[str] | None = None,
                         stop: Callable[[], bool] | None = None,
                         by_micrograph: bool = False) -> dict[str, Any] | None:
    """Return the split-frame SNR of both models on the held-out patches, or None if stopped.

    Parameters
    ----------
    start, adapted
        The starting model and the one the adaptation kept.
    halves
        ``(even, odd)`` of every micrograph, in the order given to the adaptation.
    normalization
        The starting model's per-micrograph normalisation.
    patch_size, held_out, seed
        The adaptation's (:class:`~napari_cryoden.training.adapt.AdaptOptions`): they say which
        patches were held out.
    device
        Where the models run.
    names
        The micrographs' names, for error messages.
    stop
        Polled between batches of tiles; True ends the measurement (None is returned).
    by_micrograph
        The adaptation held out whole micrographs (``AdaptOptions.hold_out_micrographs``).

    Returns
    -------
    dict or None
        ``raw_half_db``, ``before_db``, ``after_db`` (dB), ``n_patches``, ``patch_size``, a
        ``note``, and the full estimates ``before``/``after``
        (:meth:`~napari_cryoden.evaluation.split_frame.SplitFrameSNR.to_json`).
    """
    boxes = held_out_boxes([np.shape(even) for even, _ in halves], patch_size, held_out, seed,
                           by_micrograph)
    names = list(names or [f"micrograph {i + 1}" for i in range(len(halves))])
    moments: dict[str, list[PatchMoments]] = {"before": [], "after": []}

    def check(done: int, total: int) -> None:
        if stop is not None and stop():
            raise Cancelled("split-frame SNR stopped")

    try:
        for (even, odd), where, name in zip(halves, boxes, names, strict=True):
            if not where:  # none of this micrograph's patches was held out
                continue
            for key, net in (("before", start), ("after", adapted)):
                de, do = (denoise(net, half, normalization=normalization, device=device,
                                  progress=check, name=name) for half in (even, odd))
                moments[key].append(patch_moments(even, odd, de, do, patch_size, where))
    except Cancelled:
        return None
    before, after = pool_split_frame(moments["before"]), pool_split_frame(moments["after"])
    return {"raw_half_db": db(before.snr_raw_half), "before_db": db(before.snr_denoised),
            "after_db": db(after.snr_denoised), "n_patches": before.n_patches,
            "patch_size": patch_size,
            "note": "held-out patches only (never learned from); each half denoised on its own",
            "before": before.to_json(), "after": after.to_json()}
