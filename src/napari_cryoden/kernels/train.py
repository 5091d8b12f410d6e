"""Fused Triton training of the seed net: MSE loss and all six gradients in three kernels.

Optional like :mod:`.fused`: Triton is imported only when a kernel is launched. The loss is
``mean((net(x) - target)²)`` and ``loss.backward()`` fills the parameters' ``.grad`` as PyTorch's
autograd would under fp16 autocast: fp16 operands on tensor cores, fp32 accumulation, fp16
hidden activations, fp32 gradients. docs/kernels-notes.md ("Training kernels") has the design.

No loss scaling is needed: the kernels carry the error ``e = y - target`` unscaled (fp16) and
apply the factor ``2 / N`` of the mean to the fp32 sums at the end, so nothing small enough to
underflow fp16 is ever formed (PyTorch's fp16 path needs a GradScaler because it forms
``dy = 2 e / N`` in fp16, ~1e-9 at batch 64 of 1024²).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ._train_pack import pack_training, unpack_gradients
from .fused import (
    KernelConfig,
    PackedSeedNet,
    _check_buffer,
    _convs,
    _interpreting,
    _launch_conv12,
    available,
)

__all__ = ["TrainKernelConfig", "make_fused_step", "seed_net_loss", "stage_launchers", "supports"]


@dataclass(frozen=True)
class TrainKernelConfig:
    """Launch shapes of the training kernels (tile sides are powers of two).

    Attributes
    ----------
    forward : KernelConfig
        The conv1+conv2 kernel (``tile_h``, ``tile_w``, ``num_warps``; ``conv1`` must be
        ``"dot"``) and the conv3+loss kernel (``tile_h3``, ``tile_w3``, ``num_warps3``).
    tile_h, tile_w, num_warps : int
        Tile and warps of the backward kernel (``tile_h * tile_w >= 16``).
    programs_per_sm : int
        Persistent programs of the backward kernel per SM (each writes one set of partial
        sums); 0: as many as fit at once, read from the compiled kernel after its first launch
        (2 for that launch).
    programs : int
        If > 0, exactly this many persistent programs (for tests); else ``programs_per_sm × SMs``.
    """

    forward: KernelConfig = field(default_factory=lambda: KernelConfig(tile_h=4))
    tile_h: int = 4
    tile_w: int = 32
    num_warps: int = 4
    programs_per_sm: int = 0
    programs: int = 0

    def validate(self) -> None:
        """Raise ``ValueError`` for a bad forward config, a ``conv1`` not "dot", or bad tiles."""
        self.forward.validate()
        if self.forward.conv1 != "dot":  # the backward recomputes h1 with fp16 weights
            raise ValueError("TrainKernelConfig: forward.conv1 must be 'dot' (tensor cores), "
                             "so that the forward's h1 is the one the backward recomputes")
        for s in (self.tile_h, self.tile_w):
            if s < 1 or s & (s - 1):
                raise ValueError(f"TrainKernelConfig: tile sides must be powers of two, got {s}")
        if self.tile_h * self.tile_w < 16:
            raise ValueError("TrainKernelConfig: tile_h * tile_w must be >= 16")


def supports(model: nn.Module) -> bool:
    """Tell whether :func:`make_fused_step` can train ``model`` here.

    It can for the seed net's shape (any hidden width a multiple of 16 up to 64; fastest at 16),
    float32 or float16 parameters, on CUDA with Triton (or on CPU under ``TRITON_INTERPRET=1``).
    """
    try:
        convs = _convs(model)
    except ValueError:
        return False
    weight = convs[0].weight
    if weight.dtype not in (torch.float32, torch.float16):
        return False
    return _interpreting() or (available() and weight.device.type == "cuda")


def _programs(config: TrainKernelConfig, device: torch.device, n_tiles: int, chans: int) -> int:
    """Count the backward kernel's persistent programs: one full wave (:func:`_note_occupancy`)."""
    if config.programs > 0:
        wanted = config.programs
    elif device.type == "cuda":
        per_sm = config.programs_per_sm or _OCCUPANCY.get((config, chans, str(device)), 2)
        wanted = torch.cuda.get_device_properties(device).multi_processor_count * per_sm
    else:
        wanted = 4
    return max(1, min(wanted, n_tiles))


_OCCUPANCY: dict[tuple[TrainKernelConfig, int, str], int] = {}


def _note_occupancy(compiled: object, config: TrainKernelConfig, chans: int,
                    device: torch.device) -> None:
    """Remember how many backward programs fit on one SM at once.

    The count comes from the compiled kernel's registers and shared memory: the tiles are split
    evenly over the programs, so a launch of exactly one full wave leaves no SM idle at the end.
    """
    key = (config, chans, str(device))
    if config.programs_per_sm or device.type != "cuda" or key in _OCCUPANCY:
        return
    try:
        regs = int(compiled.n_regs)  # type: ignore[attr-defined]
        shared = int(compiled.metadata.shared)  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError):
        return
    props = torch.cuda.get_device_properties(device)
    warps = config.num_warps
    by_regs = getattr(props, "regs_per_multiprocessor", 65536) // (
        max(1, -(-regs * 32 // 256)) * 256 * warps)
    by_smem = getattr(props, "shared_memory_per_multiprocessor", 228 * 1024) // (shared + 1024)
    by_threads = getattr(props, "max_threads_per_multi_processor", 2048) // (32 * warps)
    _OCCUPANCY[key] = max(1, min(by_regs, by_smem, by_threads, 32))


class _SeedNetLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, target, w1, b1, w2, b2, w3, b3, config, hidden, error):  # type: ignore[override]
        packed, ctx.backward_weights = pack_training(w1, b1, w2, b2, w3, b3)
        _launch_conv12(packed, x, hidden, config.forward)
        sums = _launch_conv3_loss(packed, hidden, target, error, config).sum(0)
        count = error.numel()
        ctx.save_for_backward(x, hidden, error, sums)
        ctx.config, ctx.count, ctx.channels = config, count, packed.channels
        ctx.dtypes = [t.dtype for t in (w1, b1, w2, b2, w3, b3)]
        return sums[0] / count

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        x, hidden, error, sums = ctx.saved_tensors
        partial, _ = _launch_backward(x, hidden, error, ctx.backward_weights, ctx.config)
        scale = grad.float() * (2.0 / ctx.count)
        grads = unpack_gradients(partial.sum(0) * scale, sums[1] * scale, ctx.channels, x.device)
        grads = [g.to(dtype).contiguous() for g, dtype in zip(grads, ctx.dtypes, strict=True)]
        return (None, None, *grads, None, None, None)


def _launch_conv3_loss(packed: PackedSeedNet, hidden: torch.Tensor, target: torch.Tensor,
                       error: torch.Tensor, config: TrainKernelConfig) -> torch.Tensor:
    """Fill ``error``; return per-program ``(Σ e², Σ e)``, shape ``(programs, 2)``."""
    from . import _triton_train as kt

    batch, height, width, chans = hidden.shape
    fwd = config.forward
    tiles_w = -(-width // fwd.tile_w3)
    grid = (-(-height // fwd.tile_h3) * tiles_w, batch)
    part = torch.empty(batch * grid[0], 2, dtype=torch.float32, device=hidden.device)
    kt.conv3_loss_kernel[grid](
        hidden, packed.w3, packed.b3, target, error, part,
        height, width, tiles_w, target.stride(0), target.stride(2), target.stride(3),
        C=chans, TH=fwd.tile_h3, TW=fwd.tile_w3, num_warps=fwd.num_warps3)
    return part


def _launch_backward(x: torch.Tensor, hidden: torch.Tensor, error: torch.Tensor,
                     weights: dict[str, torch.Tensor],
                     config: TrainKernelConfig) -> tuple[torch.Tensor, object]:
    """Launch the backward kernel: per-program partial sums ``(programs, 9·C² + 49·C)``.

    Also returns what the launch returned (Triton's compiled kernel: ``n_regs``, ``n_spills``).
    """
    from . import _triton_train as kt

    batch, height, width, chans = hidden.shape
    tiles_w = -(-width // config.tile_w)
    tiles_img = -(-height // config.tile_h) * tiles_w
    n_tiles = batch * tiles_img
    programs = _programs(config, x.device, n_tiles, chans)
    partial = torch.empty(programs, 9 * chans * chans + 49 * chans, dtype=torch.float32,
                          device=x.device)
    compiled = kt.seed_backward_kernel[(programs,)](
        x, error, hidden, weights["w1x"], weights["w3_dot"], weights["w2t"], partial,
        height, width, tiles_w, tiles_img, n_tiles, x.stride(0), x.stride(2), x.stride(3),
        C=chans, TH=config.tile_h, TW=config.tile_w, num_warps=config.num_warps)
    _note_occupancy(compiled, config, chans, x.device)
    return partial, compiled


def _parameters(convs: list[nn.Conv2d]) -> list[torch.Tensor]:
    """w1, b1, w2, b2, w3, b3 (``_convs`` checked that every conv has a bias)."""
    params: list[torch.Tensor] = []
    for conv in convs:
        params += [conv.weight, conv.bias if conv.bias is not None else conv.weight]
    return params


def seed_net_loss(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *,
                  config: TrainKernelConfig | None = None, hidden: torch.Tensor | None = None,
                  error: torch.Tensor | None = None) -> torch.Tensor:
    """``mean((model(x) - target)²)`` by the fused kernels, differentiable in the parameters.

    Parameters
    ----------
    model : DenoiseCNN
        The seed net's shape (see :func:`.fused.check_model`); float32 (or float16) parameters.
    x, target : torch.Tensor
        ``(B, 1, H, W)`` float16 or float32, any strides, on the parameters' device (CUDA, or
        CPU under ``TRITON_INTERPRET=1``). ``x`` gets no gradient.
    config : TrainKernelConfig, optional
        Launch shapes; the default is :class:`TrainKernelConfig()`.
    hidden, error : torch.Tensor, optional
        Contiguous fp16 buffers ``(B, H, W, C)`` (h2, 32 B/px at C = 16) and ``(B, H, W)`` (the
        error); allocated per call if not given. They must live until ``backward`` has run.

    Returns
    -------
    torch.Tensor
        The 0-d float32 loss; ``loss.backward()`` adds the gradients to the parameters' ``.grad``.
    """
    config = config or TrainKernelConfig()
    config.validate()
    convs = _convs(model)
    for name, t in (("x", x), ("target", target)):
        if t.dim() != 4 or t.shape[1] != 1 or t.dtype not in (torch.float16, torch.float32):
            raise ValueError(f"{name} must be float16 or float32 (B, 1, H, W), got {t.dtype} "
                             f"{tuple(t.shape)}")
    if target.shape != x.shape:
        raise ValueError(f"target {tuple(target.shape)} must match x {tuple(x.shape)}")
    if x.shape[0] > 65535 or x.numel() == 0:
        raise ValueError(f"x must be non-empty with batch <= 65535 (the kernels' grid), got "
                         f"{tuple(x.shape)}")
    device = convs[0].weight.device
    if x.device != device or target.device != device:
        raise ValueError(f"x and target must be on the model's device {device}")
    if device.type != "cuda" and not _interpreting():
        raise ValueError(f"the model must be on CUDA (or set TRITON_INTERPRET=1), got {device}")
    batch, _, height, width = x.shape
    chans = convs[0].out_channels
    if hidden is None:
        hidden = torch.empty(batch, height, width, chans, dtype=torch.float16, device=device)
    if error is None:
        error = torch.empty(batch, height, width, dtype=torch.float16, device=device)
    _check_buffer("hidden", hidden, (batch, height, width, chans), torch.float16, device)
    _check_buffer("error", error, (batch, height, width), torch.float16, device)
    if not (hidden.is_contiguous() and error.is_contiguous()):
        raise ValueError("hidden and error must be contiguous")
    params = _parameters(convs)
    return _SeedNetLoss.apply(x, target, *params, config, hidden, error)


def make_fused_step(model: nn.Module, optimizer: torch.optim.Optimizer,
                    config: TrainKernelConfig | None = None) -> Callable[..., torch.Tensor]:
    """Build a training step computed by the fused kernels (:func:`seed_net_loss`).

    The step is ``step(noisy, clean, before_update=None) -> loss``, the contract of
    :func:`napari_cryoden.training.steps.make_step`. Each call zeroes the gradients, computes
    the loss and the gradients (fp16 math, fp32 gradients into the fp32 master parameters, no
    GradScaler), calls ``before_update(loss)`` if given, steps ``optimizer`` and returns the loss
    detached on the device, without synchronising with the host. Raises ``ValueError`` if
    :func:`supports` is false.
    """
    if not supports(model):
        raise ValueError("make_fused_step needs the seed net (Conv-ReLU-Conv-ReLU-Conv, 3x3, "
                         "hidden width a multiple of 16 up to 64) on CUDA with Triton")
    config = config or TrainKernelConfig()
    config.validate()

    def step(noisy: torch.Tensor, clean: torch.Tensor,
             before_update: Callable[[torch.Tensor], None] | None = None) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = seed_net_loss(model, noisy, clean, config=config)
        loss.backward()
        total = loss.detach()
        if before_update is not None:
            before_update(total)
        optimizer.step()
        return total

    return step


def stage_launchers(model: nn.Module, x: torch.Tensor, target: torch.Tensor,
                    config: TrainKernelConfig | None = None) -> dict[str, Callable[[], object]]:
    """Return launchers, for benchmarks, of each piece of one fused step's loss and gradients.

    Each runs alone on buffers allocated here, and once first so that later ones see real data.
    """
    config = config or TrainKernelConfig()
    convs = _convs(model)
    params = _parameters(convs)
    batch, _, height, width = x.shape
    chans = convs[0].out_channels
    hidden = torch.empty(batch, height, width, chans, dtype=torch.float16, device=x.device)
    error = torch.empty(batch, height, width, dtype=torch.float16, device=x.device)
    packed, weights = pack_training(*params)
    _launch_conv12(packed, x, hidden, config.forward)
    sums = _launch_conv3_loss(packed, hidden, target, error, config)
    partial, _ = _launch_backward(x, hidden, error, weights, config)
    return {
        "pack weights": lambda: pack_training(*params),
        "conv1+conv2": lambda: _launch_conv12(packed, x, hidden, config.forward),
        "conv3+loss": lambda: _launch_conv3_loss(packed, hidden, target, error, config),
        "backward": lambda: _launch_backward(x, hidden, error, weights, config)[1],
        "sums+unpack": lambda: unpack_gradients(partial.sum(0), sums.sum(0)[1], chans, x.device),
    }
