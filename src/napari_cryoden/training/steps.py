"""The training step on the fast paths: precision, memory layout, cuDNN autotuning, batch size.

``make_step`` returns a callable doing one Adam/MSE update without synchronising with the GPU
(the loss comes back as a device tensor), so the host can queue the next batch's copy while the
GPU works. Precisions:

- ``fp32``: float32 everywhere, TF32 off: the plain PyTorch loop and the reference;
- ``tf32``: float32 tensors, TF32 tensor-core convolutions;
- ``fp16``: autocast to float16 with a dynamic gradient scaler (the seed's "mixed precision");
- ``bf16``: autocast to bfloat16 (no scaler needed: bf16 has float32's exponent range).

On CUDA the reduced precisions also use channels_last, the layout cuDNN's tensor-core
convolutions want, and :func:`prepare_cuda` turns cuDNN's autotuner on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..config.sections import PRECISIONS

__all__ = [
    "FP32_MOST_PIXELS", "FUSED_MOST_BATCH", "PRECISIONS", "autocast", "choose_batch_size",
    "compiled_step", "make_step", "most_batch", "prepare_cuda", "uses_channels_last",
]

_AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16}

Step = Callable[..., torch.Tensor]


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def uses_channels_last(precision: str, device: torch.device) -> bool:
    """channels_last pays off for tensor-core (fp16/bf16) convolutions on CUDA only."""
    return device.type == "cuda" and precision in _AUTOCAST


def prepare_cuda(precision: str) -> None:
    """CuDNN autotuning on (inputs have fixed shapes while training); TF32 only for ``tf32``."""
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Return the autocast context of ``precision`` on CUDA; a no-op for fp32/tf32 or off CUDA."""
    dtype = _AUTOCAST.get(check_precision(precision))
    if dtype is None or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=dtype)


def make_step(model: nn.Module, optimizer: torch.optim.Optimizer, precision: str,
              scaler: torch.amp.GradScaler | None = None, chunks: int = 1) -> Step:
    """``step(noisy, clean, before_update=None, mask=None) -> loss``: one update of ``model``.

    The loss comes back detached, on the device. ``noisy``/``clean`` may be float16 (a packed
    store) or float32; with fp32/tf32 they are promoted to float32. ``before_update(loss)``, if
    given, runs after the backward pass and before the optimizer step (a place to reduce the
    loss over ranks or refuse a NaN). ``scaler`` (fp16 only) is created when not given.

    ``chunks > 1`` splits each batch into that many micro-batches whose gradients add up to the
    whole batch's (the out-of-memory back-off: same update, less memory, slower). With
    DistributedDataParallel only the last micro-batch synchronises gradients.

    ``mask`` (bool, the shape of ``clean``), if given, restricts the loss to its pixels: the
    mean squared error over the masked pixels of the whole batch (Noise2Void's blind spots).
    """
    device = next(model.parameters()).device
    check_precision(precision)
    if precision == "fp16" and scaler is None:
        scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    scaling = scaler if scaler is not None and scaler.is_enabled() else None
    reduced = precision in _AUTOCAST and device.type == "cuda"
    layout = torch.channels_last if uses_channels_last(precision, device) else None
    no_sync = getattr(model, "no_sync", contextlib.nullcontext)

    def step(noisy: torch.Tensor, clean: torch.Tensor,
             before_update: Callable[[torch.Tensor], None] | None = None,
             mask: torch.Tensor | None = None) -> torch.Tensor:
        if not reduced:
            noisy, clean = noisy.float(), clean.float()
        optimizer.zero_grad(set_to_none=True)
        masks = mask.chunk(chunks) if mask is not None else (None,) * len(noisy.chunk(chunks))
        pieces = list(zip(noisy.chunk(chunks), clean.chunk(chunks), masks, strict=True))
        masked = mask.sum().clamp(min=1).float() if mask is not None else None
        total = torch.zeros((), device=noisy.device)
        for i, (x, y, m) in enumerate(pieces):
            if layout is not None:
                x = x.contiguous(memory_format=layout)
            weight = x.shape[0] / noisy.shape[0]
            with no_sync() if i < len(pieces) - 1 else contextlib.nullcontext():
                with autocast(precision, device):
                    pred = model(x).float()
                    loss = (nn.functional.mse_loss(pred, y.float()) * weight if m is None
                            else ((pred - y.float()) ** 2 * m).sum() / masked)
                (scaling.scale(loss) if scaling is not None else loss).backward()
            total += loss.detach()
        if before_update is not None:
            before_update(total)
        if scaling is not None:
            scaling.step(optimizer)
            scaling.update()
        else:
            optimizer.step()
        return total

    return step


def compiled_step(model: nn.Module, optimizer: torch.optim.Optimizer, precision: str) -> Step:
    """:func:`make_step` over ``torch.compile(model)`` (Inductor fuses bias, ReLU and casts)."""
    compiled = torch.compile(model)
    assert isinstance(compiled, nn.Module)  # an OptimizedModule wrapping ``model``
    return make_step(compiled, optimizer, precision)


FUSED_MOST_BATCH = 32
"""Largest batch :func:`choose_batch_size` gives the fused kernels: their step runs as fast at
32 patches as at 64 (``benchmarks/bench_kernels_train.py`` on the H100: 2,788 and 2,807
patches/s of 1024²), and a larger batch only doubles the loader's host buffers."""


FP32_MOST_PIXELS = 16 * 1024 * 1024
"""Most pixels a batch of :func:`choose_batch_size` holds for an fp32 or tf32 PyTorch step on
CUDA. On the H100 the seed net's fp32 step on 1024² patches ran 320 patches/s at batch 8 and 16,
and 115 and 183 at 32 and 64, with cuDNN's autotuner on or off (``benchmarks/bench_step.py``,
2026-12-07), and with TF32 convolutions 421 at 16 against 223 and 312 at 32 and 64
(``bench_kernels_train.py``): cuDNN's algorithms for larger tensors are slower per patch. fp16
and bf16 steps do not fall off (fp16 754 to 847 patches/s, bf16 725 to 734, from batch 16 to 64;
2026-11-24) and are not capped."""


def most_batch(side: int, precision: str, fused: bool, most: int = 64) -> int:
    """Return the largest batch :func:`choose_batch_size` may give for this step on CUDA.

    The fused kernels' step: :data:`FUSED_MOST_BATCH`. A PyTorch step in fp32 or tf32: as many
    ``side``² patches as fit in :data:`FP32_MOST_PIXELS` (at least 1). Otherwise ``most``.
    """
    if fused:
        return min(most, FUSED_MOST_BATCH)
    if precision in ("fp32", "tf32"):
        return max(1, min(most, FP32_MOST_PIXELS // (side * side)))
    return most


def choose_batch_size(model: nn.Module, side: int, precision: str, device: torch.device, *,
                      fraction: float = 0.6, most: int = 64, fused: bool = False) -> int:
    """Choose the largest power-of-two batch whose training step fits in GPU memory.

    The memory a patch needs is measured by one probe step at batch 2 of the step that will
    train: the fused kernels' with ``fused``, else :func:`make_step`'s. The batch is at most
    :func:`most_batch` (32 for the fused kernels; 16 patches of 1024² in fp32 and tf32).
    Probing the step that runs matters beyond its memory: a PyTorch probe loads cuDNN, host
    memory a fused run never needs (docs/performance.md). Off CUDA returns 4 (the CPU default:
    larger batches only slow each step down).

    Parameters
    ----------
    model
        The net to train, already on ``device`` (its weights are restored after the probe).
    side
        Side of the square training patches (px).
    precision
        Training precision (``fp32``, ``tf32``, ``fp16``, ``bf16``), as the step will use it.
    device
        The device to train on.
    fraction
        Share of the free GPU memory the batch may use.
    most
        Largest batch returned.
    fused
        The fused Triton kernels will step the model (fp16 on CUDA, the seed net).

    Returns
    -------
    int
        The batch size, a power of two.
    """
    if device.type != "cuda":
        return 4
    probe = 2
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    if fused:
        from ..kernels.train import make_fused_step

        x = torch.zeros(probe, 1, side, side, device=device, dtype=torch.float16)
        make_fused_step(model, optimizer)(x, x)
    else:
        x = torch.zeros(probe, 1, side, side, device=device)
        make_step(model, optimizer, precision)(x, x)
    torch.cuda.synchronize(device)
    per_patch = max(1, (torch.cuda.max_memory_allocated(device) - before) / probe)
    model.load_state_dict(state)
    model.zero_grad(set_to_none=True)
    del x, optimizer
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info(device)
    fits = int(free * fraction / per_patch)
    most = most_batch(side, precision, fused, most)
    batch = 1
    while batch * 2 <= min(fits, most):
        batch *= 2
    return batch
