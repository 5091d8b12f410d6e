"""How far a reduced precision (fp16, bf16, tf32) is from fp32 on the first batch of tiles."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.normalize import MAX_FIT_ROWS, fit_normalizer
from . import loops
from .options import forward_for, input_stack, plan_for, resolve_precision, slice_name, to_device

__all__ = ["PrecisionCheck", "compare_precision", "precision_error"]


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
    pixel_cutoff: float | None = None,
) -> PrecisionCheck:
    """Run the first batch of tiles of ``image`` in ``precision`` and in fp32, and compare.

    The hot-pixel clip, tiles, layout and normalisation are those
    :func:`~napari_cryoden.inference.denoiser.denoise` would use with the same
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
    stack = input_stack(image, pixel_cutoff)
    dev = to_device(device)
    precision = resolve_precision(precision, False, dev)
    step = max(1, math.ceil(stack.shape[1] / MAX_FIT_ROWS))
    std = float(np.asarray(stack[0, ::step], np.float64).std())
    if precision == "fp32":
        return PrecisionCheck(precision, 0.0, std)
    plan = plan_for(model, stack.shape, dev, precision, tile_size, batch_size, halo)
    norm = fit_normalizer(stack[0], normalization, slice_name(name, 0, stack.shape[0]))
    outputs = []
    was_training = model.training
    model.to(dev).eval()
    try:
        for run in ("fp32", precision):
            net, layout = forward_for(model, dev, run, channels_last, fused)
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
