"""Optional GPU kernels (Triton). Nothing here imports Triton until a kernel is launched.

Training (``TrainConfig.fused``) and ``inference.denoise`` use it for fp16 on CUDA when Triton
is installed; direct use::

    >>> from napari_cryoden.kernels import available, fused_forward
    >>> if available():
    ...     y = fused_forward(model, x)  # x: (B, 1, H, W) float16/float32 on CUDA
"""

from __future__ import annotations

from .fused import (
    FusedForward,
    KernelConfig,
    PackedSeedNet,
    available,
    check_model,
    fused_forward,
    pack_weights,
)

__all__ = ["FusedForward", "KernelConfig", "PackedSeedNet", "available", "check_model",
           "fused_forward", "pack_weights"]
