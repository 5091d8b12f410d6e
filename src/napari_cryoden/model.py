"""The denoiser network: the seed's 3-layer CNN and its generalisation by width, depth and kernel.

Layers are named ``conv1 … convN`` so that the state dict's keys are exactly the weight file's
tensor names (``conv{k}.weight`` with shape (out, in, kH, kW) and ``conv{k}.bias``).
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig

__all__ = ["DenoiseCNN", "build_model", "expected_shapes"]


class DenoiseCNN(nn.Module):
    """Conv → ReLU → … → Conv, 1 channel in and out, 'same' zero padding.

    With the default :class:`ModelConfig` this is the seed's net:
    Conv2d(1,16,3,p=1) → ReLU → Conv2d(16,16,3,p=1) → ReLU → Conv2d(16,1,3,p=1), 2,625 parameters.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        for k, (c_in, c_out) in enumerate(_layer_channels(self.config), start=1):
            pad = self.config.kernel_size // 2
            conv = nn.Conv2d(c_in, c_out, self.config.kernel_size, padding=pad)
            self.add_module(f"conv{k}", conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        convs = list(self.children())
        for conv in convs[:-1]:
            x = torch.relu(conv(x))
        return convs[-1](x)


def _layer_channels(config: ModelConfig) -> list[tuple[int, int]]:
    widths = [1] + [config.channels] * (config.depth - 1) + [1]
    return list(zip(widths[:-1], widths[1:], strict=True))


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape for a model of this config, in weight-file order."""
    k = config.kernel_size
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (c_in, c_out) in enumerate(_layer_channels(config), start=1):
        shapes[f"conv{i}.weight"] = (c_out, c_in, k, k)
        shapes[f"conv{i}.bias"] = (c_out,)
    return shapes


def build_model(config: ModelConfig | None = None, seed: int | None = None) -> DenoiseCNN:
    """A freshly initialised model; with ``seed`` the initial weights are reproducible."""
    if seed is None:
        return DenoiseCNN(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DenoiseCNN(config)
