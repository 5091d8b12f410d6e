"""A batch of training pairs and how it reaches the device.

:class:`Batch` is what every stream yields; :func:`to_tensors` and :class:`PinnedStager` turn a
list of :class:`Sample` (one patch pair each, as a reader thread made it) into one, on the CPU
(or MPS) and through two reused pinned buffers on CUDA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from .normalize import Normalizer

__all__ = ["Batch", "PinnedStager", "Sample", "to_tensors"]


class Batch(NamedTuple):
    """One batch of training pairs, normalised per micrograph; ``raw = x * scale + offset``.

    ``noisy`` and ``clean`` are float32 ``(B, 1, h, w)`` on the stream's device; ``offset`` and
    ``scale`` are float32 ``(B,)`` (use ``scale[:, None, None, None]`` to broadcast).
    """

    noisy: torch.Tensor
    clean: torch.Tensor
    offset: torch.Tensor
    scale: torch.Tensor


@dataclass(frozen=True)
class Sample:
    """One patch pair as read: normalised float32 ``(h, w)`` arrays and their normaliser."""

    noisy: np.ndarray  # (h, w) float32, normalised
    clean: np.ndarray
    normalizer: Normalizer


def to_tensors(batch: list[Sample], device: torch.device | None = None) -> Batch:
    """Stack samples into a batch of fresh CPU tensors.

    Parameters
    ----------
    batch
        The samples, all of one shape.
    device
        Where to move the tensors (e.g. MPS); None or CPU: they stay on the CPU.

    Returns
    -------
    Batch
        ``noisy``/``clean`` ``(B, 1, h, w)``, ``offset``/``scale`` ``(B,)``, all float32.
    """
    noisy = torch.from_numpy(np.stack([s.noisy for s in batch])[:, None])
    clean = torch.from_numpy(np.stack([s.clean for s in batch])[:, None])
    offset, scale = _affine(batch)
    result = Batch(noisy, clean, offset, scale)
    if device is not None and device.type != "cpu":
        result = Batch(*(t.to(device) for t in result))
    return result


def _affine(batch: list[Sample]) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the normalisers' offsets and scales as float32 ``(B,)`` CPU tensors."""
    offset = torch.tensor([s.normalizer.offset for s in batch], dtype=torch.float32)
    scale = torch.tensor([s.normalizer.scale for s in batch], dtype=torch.float32)
    return offset, scale


class PinnedStager:
    """Two pinned host buffers used alternately for non-blocking copies to a CUDA device.

    A buffer is refilled only after the CUDA event recorded behind its last copy has completed,
    so the host never overwrites memory that a copy still reads.
    """

    def __init__(self, device: torch.device) -> None:
        self._device = device
        self._slots: list[dict[str, Any]] = [{}, {}]
        self._turn = 0

    def __call__(self, batch: list[Sample]) -> Batch:
        """Stage ``batch`` in the next pinned buffer and copy it to the device without blocking.

        Parameters
        ----------
        batch
            The samples, all of one shape.

        Returns
        -------
        Batch
            On the device; its copies may still be in flight on the current CUDA stream.
        """
        slot = self._slots[self._turn]
        self._turn ^= 1
        if slot.get("event") is not None:
            slot["event"].synchronize()
        shape = (len(batch), 1, *batch[0].noisy.shape)
        if slot.get("noisy") is None or slot["noisy"].shape[0] < len(batch):
            slot["noisy"] = torch.empty(shape, dtype=torch.float32, pin_memory=True)
            slot["clean"] = torch.empty(shape, dtype=torch.float32, pin_memory=True)
        n = len(batch)
        noisy_host, clean_host = slot["noisy"][:n], slot["clean"][:n]
        np.stack([s.noisy for s in batch], out=noisy_host.numpy()[:, 0])
        np.stack([s.clean for s in batch], out=clean_host.numpy()[:, 0])
        offset, scale = _affine(batch)
        result = Batch(
            noisy_host.to(self._device, non_blocking=True),
            clean_host.to(self._device, non_blocking=True),
            offset.to(self._device),
            scale.to(self._device),
        )
        slot["event"] = torch.cuda.Event()
        slot["event"].record(torch.cuda.current_stream(self._device))
        return result
