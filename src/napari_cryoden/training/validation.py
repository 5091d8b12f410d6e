"""The validation pass of training: loss and raw-intensity MSE of a model over a stream."""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import distributed, steps
from .distributed import World
from .modes import ModeBatches
from .setup import Engine, Stream

__all__ = ["validate"]


@torch.no_grad()
def validate(engine: Engine, stream: Stream, modes: ModeBatches | None,
             world: World) -> tuple[float, float]:
    """Score ``engine``'s model on every batch of ``stream``, summed over ranks.

    Parameters
    ----------
    engine
        The model, its device and precision.
    stream
        The validation batches.
    modes
        The mode's way to validate (n2n: against the held-out partner, n2v: at fixed blind
        spots); None: plain noisy→clean.
    world
        The ranks whose sums are combined.

    Returns
    -------
    tuple of float
        The mean loss in normalised units and the mean squared error in raw intensity units.

    Notes
    -----
    A run the fused kernels train validates with the fused forward pass (fp16, as the autocast
    forward it replaces), so that it never loads cuDNN (≈ 370 MB of host memory, estimated in
    docs/performance.md).
    """
    model, precision, device = engine.model, engine.precision, engine.device
    model.eval()
    fused = _fused_forward(engine)
    loss_sum, mse_sum, pixels = 0.0, 0.0, 0
    for index, batch in enumerate(stream):
        x, target, mask = ((batch.noisy, batch.clean, None) if modes is None
                           else modes.validation(batch.noisy, batch.clean, index))
        x = x if precision in ("fp16", "bf16") else x.float()
        if fused is not None:
            pred = fused(x.half()).float()
        else:
            with steps.autocast(precision, device):
                pred = model(x).float()
        target, scale = target.float(), batch.scale.view(-1, 1, 1, 1)
        if mask is not None:  # n2v: only the blind spots count
            pred, target, scale = pred[mask], target[mask], scale.expand(mask.shape)[mask]
        loss_sum += float(torch.nn.functional.mse_loss(pred, target, reduction="sum"))
        mse_sum += float((((pred - target) * scale) ** 2).sum())
        pixels += pred.numel()
    loss_sum, mse_sum, total = distributed.all_sum([loss_sum, mse_sum, pixels], world)
    return loss_sum / total, mse_sum / total


def _fused_forward(engine: Engine) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """Return the fused kernels' forward pass of the model when they train it, else None."""
    if not engine.fused:
        return None
    from ..kernels import FusedForward

    return FusedForward(engine.model, engine.device)
