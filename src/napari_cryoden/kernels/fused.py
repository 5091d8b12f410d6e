"""Fused Triton inference of the seed net: conv1+ReLU+conv2+ReLU in one kernel, conv3 in another.

Optional: Triton is imported only when a kernel is launched, so this module (and the package)
imports without it. On a GPU the kernels compute in fp16 on tensor cores with fp32 accumulation,
for float16 and float32 inputs alike (a float32 input gets an fp16-accurate float32 result).
With ``TRITON_INTERPRET=1`` set before Triton is first imported, the same kernels run on CPU
tensors (slowly), which is how the tests check them. docs/kernels-notes.md has the design.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

import torch
from torch import nn

from ..config import presets

__all__ = ["FusedForward", "KernelConfig", "PackedSeedNet", "available", "check_model",
           "fused_forward", "pack_weights"]

_MAX_CHANNELS = 64


@dataclass(frozen=True)
class KernelConfig:
    """Launch shape of the two kernels (tile sides are powers of two).

    Attributes
    ----------
    tile_h, tile_w : int
        Output tile of the conv1+conv2 kernel; ``tile_h * tile_w`` pixels per program (≥ 16).
    num_warps : int
        Warps per program of the conv1+conv2 kernel.
    conv1 : str
        ``"dot"`` computes conv1 on tensor cores from each pixel's 5 × 5 neighbourhood;
        ``"fma"`` computes it on CUDA cores (9 FMAs per channel and conv2 tap).
    tile_h3, tile_w3, num_warps3 : int
        The same for the conv3 kernel.
    """

    tile_h: int = 8
    tile_w: int = 32
    num_warps: int = 4
    conv1: str = "dot"
    tile_h3: int = 16
    tile_w3: int = 32
    num_warps3: int = 4

    def validate(self) -> None:
        """Raise ``ValueError`` for a tile shape or ``conv1`` the kernels cannot run.

        Tile sides must be powers of two, ``tile_h * tile_w`` at least 16 (``tl.dot``'s
        minimum), and ``conv1`` ``"dot"`` or ``"fma"``.
        """
        sides = (self.tile_h, self.tile_w, self.tile_h3, self.tile_w3)
        if any(s < 1 or s & (s - 1) for s in sides):
            raise ValueError(f"KernelConfig: tile sides must be powers of two, got {sides}")
        if self.tile_h * self.tile_w < 16:
            raise ValueError("KernelConfig: tile_h * tile_w must be >= 16 (tl.dot's minimum)")
        if self.conv1 not in ("dot", "fma"):
            raise ValueError(f"KernelConfig.conv1 must be 'dot' or 'fma', got {self.conv1!r}")


@dataclass(frozen=True)
class PackedSeedNet:
    """The net's weights rearranged for the kernels (see :func:`pack_weights`)."""

    channels: int
    w1_dot: torch.Tensor  # (9, 32, C) fp16: conv2 tap s, 5x5 window tap (+ bias row 25), out
    w1_fma: torch.Tensor  # (9, C) fp32: conv1 tap, out
    b1: torch.Tensor  # (C,) fp32
    w2: torch.Tensor  # (9, C, C) fp16: conv2 tap, in, out
    b2: torch.Tensor  # (C,) fp32
    w3: torch.Tensor  # (9, C) fp32: conv3 tap, in
    b3: torch.Tensor  # (1,) fp32


def available() -> bool:
    """Whether the fused kernels can run here: Triton is importable and CUDA is present."""
    return importlib.util.find_spec("triton") is not None and torch.cuda.is_available()


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def check_model(model: nn.Module) -> int:
    """Return the hidden channel count C if ``model`` is the 3-layer 3 × 3 net the kernels compute.

    Raises
    ------
    ValueError
        If the model is not Conv(1,C,3,p=1) → ReLU → Conv(C,C,3,p=1) → ReLU → Conv(C,1,3,p=1)
        with biases, stride 1, zero padding, and C a multiple of 16 up to 64.
    """
    return _convs(model)[0].out_channels


def _convs(model: nn.Module) -> list[nn.Conv2d]:
    from ..models.nets import DenoiseCNN

    if not isinstance(model, DenoiseCNN):
        raise ValueError(f"fused kernels need a DenoiseCNN, got {type(model).__name__}")
    if not presets.get(model.config.preset).fused or model.residual:  # seed-shaped tensors
        raise ValueError(f"fused kernels compute the seed preset only, got preset "
                         f"{model.config.preset!r}")
    names = [name for name, _ in model.named_children()]
    if names != ["conv1", "conv2", "conv3"]:
        raise ValueError(f"fused kernels need exactly 3 layers, got {len(names)}")
    convs = [m for m in model.children() if isinstance(m, nn.Conv2d)]
    channels = convs[0].out_channels if len(convs) == 3 else 0
    for k, conv in enumerate(convs, start=1):
        want = [(channels, 1), (channels, channels), (1, channels)][k - 1]
        shape = tuple(conv.weight.shape)
        if (shape != (*want, 3, 3) or conv.bias is None or conv.stride != (1, 1)
                or conv.padding != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1
                or conv.padding_mode != "zeros"):
            raise ValueError(f"fused kernels need conv{k} = Conv2d{want} 3x3, stride 1, "
                             f"padding 1, zeros, with bias; got weight {shape}")
    if len(convs) != 3:
        raise ValueError("fused kernels need conv1..conv3 to be Conv2d layers")
    if channels % 16 or channels > _MAX_CHANNELS:
        raise ValueError(f"fused kernels need hidden channels a multiple of 16 up to "
                         f"{_MAX_CHANNELS}, got {channels}")
    return convs


def pack_weights(model: nn.Module, device: torch.device | str) -> PackedSeedNet:
    """Rearrange the model's weights for the kernels, on ``device`` (checks the model first)."""
    conv1, conv2, conv3 = (_parameters(c) for c in _convs(model))
    chans = conv1[0].shape[0]
    w1 = conv1[0][:, 0]  # (C, 3, 3)
    w1_dot = torch.zeros(9, 32, chans)
    for s in range(9):
        sy, sx = s // 3 - 1, s % 3 - 1
        for k in range(9):
            dy, dx = sy + k // 3 - 1, sx + k % 3 - 1
            w1_dot[s, (dy + 2) * 5 + dx + 2] = w1[:, k // 3, k % 3]
        w1_dot[s, 25] = conv1[1]

    def put(t: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return t.to(device=device, dtype=dtype).contiguous()

    return PackedSeedNet(
        channels=chans,
        w1_dot=put(w1_dot, torch.float16),
        w1_fma=put(w1.permute(1, 2, 0).reshape(9, chans)),
        b1=put(conv1[1]),
        w2=put(conv2[0].permute(2, 3, 1, 0).reshape(9, chans, chans), torch.float16),
        b2=put(conv2[1]),
        w3=put(conv3[0][0].permute(1, 2, 0).reshape(9, chans)),
        b3=put(conv3[1].reshape(1)),
    )


def _parameters(conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) as float32 CPU tensors, detached."""
    bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
    return (conv.weight.detach().to("cpu", torch.float32),
            bias.detach().to("cpu", torch.float32))


def _check_buffer(name: str, buf: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype,
                  device: torch.device) -> None:
    if tuple(buf.shape) != shape or buf.dtype != dtype or buf.device != device:
        raise ValueError(f"{name} must be {dtype} {shape} on {device}, "
                         f"got {buf.dtype} {tuple(buf.shape)} on {buf.device}")


def fused_forward(model: nn.Module | PackedSeedNet, x: torch.Tensor, *,
                  config: KernelConfig | None = None, out: torch.Tensor | None = None,
                  workspace: torch.Tensor | None = None,
                  stages: tuple[str, ...] | None = None) -> torch.Tensor:
    """Run the seed net's forward pass by the two fused Triton kernels.

    Parameters
    ----------
    model : DenoiseCNN or PackedSeedNet
        The 3-layer 3 × 3 net (see :func:`check_model`), or its weights already packed by
        :func:`pack_weights` (saves repacking them on every call).
    x : torch.Tensor
        ``(B, 1, H, W)`` float16 or float32 on CUDA (on CPU only under ``TRITON_INTERPRET=1``),
        any strides.
    config : KernelConfig, optional
        Tile shapes and warps; the default is :class:`KernelConfig()`.
    out : torch.Tensor, optional
        ``(B, 1, H, W)`` tensor of ``x``'s dtype and device to write into (any strides).
    workspace : torch.Tensor, optional
        Contiguous ``(B, H, W, C)`` float16 buffer for the hidden activations (32 B per pixel for
        C = 16); allocated per call if not given.
    stages : tuple of str, optional
        For timing one kernel alone: ``("conv12",)`` fills ``workspace`` only, ``("conv3",)``
        computes ``out`` from ``workspace`` only. Default: both.

    Returns
    -------
    torch.Tensor
        ``(B, 1, H, W)`` in ``x``'s dtype (``out`` if given).
    """
    config = config or KernelConfig()
    config.validate()
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"x must be (B, 1, H, W), got {tuple(x.shape)}")
    if x.dtype not in (torch.float16, torch.float32):
        raise ValueError(f"x must be float16 or float32, got {x.dtype}")
    if x.shape[0] > 65535:
        raise ValueError(f"batch must be <= 65535 (the kernels' grid), got {x.shape[0]}")
    if x.device.type != "cuda" and not _interpreting():
        raise ValueError(f"x must be on CUDA (or set TRITON_INTERPRET=1), got {x.device}")
    packed = model if isinstance(model, PackedSeedNet) else pack_weights(model, x.device)
    if packed.w2.device != x.device:
        raise ValueError(f"packed weights are on {packed.w2.device}, x on {x.device}")
    batch, _, height, width = x.shape
    chans = packed.channels
    if out is None:
        out = torch.empty_like(x, memory_format=torch.contiguous_format)
    _check_buffer("out", out, tuple(x.shape), x.dtype, x.device)
    if workspace is None:
        workspace = torch.empty(batch, height, width, chans, dtype=torch.float16, device=x.device)
    _check_buffer("workspace", workspace, (batch, height, width, chans), torch.float16, x.device)
    if not workspace.is_contiguous():
        raise ValueError("workspace must be contiguous")
    if x.numel() == 0:
        return out

    stages = ("conv12", "conv3") if stages is None else stages
    if not set(stages) <= {"conv12", "conv3"}:
        raise ValueError(f"stages must name 'conv12' and/or 'conv3', got {stages}")
    if "conv12" in stages:
        _launch_conv12(packed, x, workspace, config)
    if "conv3" in stages:
        _launch_conv3(packed, workspace, out, config)
    return out


def _launch_conv12(packed: PackedSeedNet, x: torch.Tensor, workspace: torch.Tensor,
                   config: KernelConfig) -> None:
    from . import _triton_seed as k

    batch, _, height, width = x.shape
    tiles_w = -(-width // config.tile_w)
    grid = (-(-height // config.tile_h) * tiles_w, batch)
    k.conv12_kernel[grid](
        x, packed.w1_dot, packed.w1_fma, packed.b1, packed.w2, packed.b2, workspace,
        height, width, tiles_w, x.stride(0), x.stride(2), x.stride(3),
        C=packed.channels, TH=config.tile_h, TW=config.tile_w,
        CONV1_DOT=config.conv1 == "dot", num_warps=config.num_warps)


def _launch_conv3(packed: PackedSeedNet, workspace: torch.Tensor, out: torch.Tensor,
                  config: KernelConfig) -> None:
    from . import _triton_seed as k

    batch, height, width, _ = workspace.shape
    tiles_w = -(-width // config.tile_w3)
    grid = (-(-height // config.tile_h3) * tiles_w, batch)
    k.conv3_kernel[grid](
        workspace, packed.w3, packed.b3, out,
        height, width, tiles_w, out.stride(0), out.stride(2), out.stride(3),
        C=packed.channels, TH=config.tile_h3, TW=config.tile_w3, num_warps=config.num_warps3)


class FusedForward:
    """A seed net's forward pass by the fused kernels, with its packed weights and workspace kept.

    Callable like the model on ``(B, 1, H, W)`` float16/float32 CUDA batches; the weights are
    packed once (so later changes to the model are not seen) and the hidden-activation workspace
    is reused while the batch shape stays the same. Used by ``inference.denoise`` for fp16 on
    CUDA. Raises ``ValueError`` (from :func:`check_model`) for any other architecture.
    """

    def __init__(self, model: nn.Module, device: torch.device | str,
                 config: KernelConfig | None = None) -> None:
        self.packed = pack_weights(model, device)
        self.config = config or KernelConfig()
        self._workspace: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise a ``(B, 1, H, W)`` batch, reusing the workspace while the shape is the same."""
        batch, _, height, width = x.shape
        shape = (batch, height, width, self.packed.channels)
        if self._workspace is None or tuple(self._workspace.shape) != shape:
            self._workspace = None  # free the old one before allocating
            self._workspace = torch.empty(shape, dtype=torch.float16, device=x.device)
        return fused_forward(self.packed, x, config=self.config, workspace=self._workspace)
