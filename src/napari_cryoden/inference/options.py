"""How a denoise run is set up: the device, the precision, the layout, the fused path, the tiles.

Shared by :func:`~napari_cryoden.inference.denoiser.denoise` and
:func:`~napari_cryoden.inference.precision.compare_precision`, so that the precision check runs
exactly the tiles and the forward pass that denoising would.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from ..config.sections import PRECISIONS, ConfigError
from ..devices import resolve_device
from ..errors import InputError
from ..io.intensity import clip_hot_pixels
from . import loops
from .tiling import TilePlan, hidden_channels, plan_tiles, receptive_radius, tile_multiple

__all__ = ["as_stack", "default_layout", "forward_for", "fused_forward", "input_stack",
           "plan_for", "resolve_precision", "slice_name", "to_device"]


def plan_for(model: nn.Module, shape: tuple[int, ...], dev: torch.device, precision: str,
             tile_size: int | None, batch_size: int | None, halo: int | None) -> TilePlan:
    """Plan the tiles of ``model`` on a stack of ``shape``, the halo by default the model's."""
    halo = receptive_radius(model) if halo is None else halo
    return plan_tiles(shape, halo=halo, hidden_channels=hidden_channels(model), device=dev,
                      tile_size=tile_size, batch_size=batch_size, precision=precision,
                      multiple=tile_multiple(model))


def forward_for(model: nn.Module, dev: torch.device, precision: str, channels_last: bool | None,
                fused: bool) -> tuple[loops.Net | None, bool]:
    """Choose the fused forward (or None) and whether to run the PyTorch model channels_last.

    ``channels_last`` None means :func:`default_layout`; the PyTorch model runs channels_last
    only when there is no fused forward. ``fused`` False never uses one.
    """
    layout = default_layout(dev, precision) if channels_last is None else channels_last
    net = fused_forward(model, dev, precision) if fused else None
    return net, layout and net is None


def fused_forward(model: nn.Module, dev: torch.device, precision: str) -> loops.Net | None:
    """Build the fused Triton forward of the seed net for fp16 on CUDA.

    Returns None where it does not apply: another precision or device, no Triton kernels, or a
    model other than the 3-layer 3x3 net the kernels compute.
    """
    if precision != "fp16" or dev.type != "cuda":
        return None
    from .. import kernels

    if not kernels.available():
        return None
    try:
        return kernels.FusedForward(model, dev)
    except ValueError:  # not the 3-layer 3x3 net the kernels compute
        return None


def to_device(device: str | torch.device) -> torch.device:
    """Return a ``torch.device`` as given (resolved once by the caller), else resolve it."""
    return device if isinstance(device, torch.device) else resolve_device(device)


def resolve_precision(precision: str, amp: bool, dev: torch.device) -> str:
    """Check ``precision``; the deprecated ``amp=True`` means fp16 on CUDA (with a warning)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    if not amp:
        return precision
    warnings.warn("denoise: amp=True is deprecated; use precision='fp16'", DeprecationWarning,
                  stacklevel=3)
    if precision not in ("fp32", "fp16"):
        raise ConfigError(f"precision: amp=True (fp16) contradicts precision {precision!r}")
    return "fp16" if dev.type == "cuda" else precision


def default_layout(dev: torch.device, precision: str) -> bool:
    """channels_last: always on CPU (2x faster convolutions), on CUDA for fp16/bf16."""
    return dev.type == "cpu" or (dev.type == "cuda" and precision in loops.AUTOCAST)


def as_stack(image: np.ndarray) -> np.ndarray:
    """Return a (z, y, x) view of a 2D image or stack, without copying.

    Raises
    ------
    InputError
        The image is not 2D or 3D, is empty, or does not hold real numbers.
    """
    array = np.asarray(image)
    if array.ndim not in (2, 3) or 0 in array.shape:
        raise InputError(f"denoise: expected a (y, x) image or (z, y, x) stack, got shape "
                         f"{array.shape}")
    if not np.issubdtype(array.dtype, np.integer) and not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"denoise: expected real pixel values, got dtype {array.dtype}")
    return array if array.ndim == 3 else array[None]


def input_stack(image: np.ndarray, pixel_cutoff: float | None) -> np.ndarray:
    """:func:`as_stack`; a copy with hot pixels clipped per slice if ``pixel_cutoff`` is given."""
    stack = as_stack(image)
    return stack if pixel_cutoff is None else clip_hot_pixels(stack, pixel_cutoff)


def slice_name(name: str | None, z: int, nz: int) -> str | None:
    """How slice ``z`` of a stack of ``nz`` is named in errors (the name alone for one slice)."""
    return name if nz == 1 else f"{name or 'stack'} slice {z}"
