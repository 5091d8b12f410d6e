"""The denoiser networks of the architecture presets (:mod:`napari_cryoden.config.presets`).

- :class:`DenoiseCNN`: a stack of same-size convolutions (presets ``seed``, ``deep``, ``wide5``,
  and ``residual``, which adds the input to the output); the seed's 3-layer net by default.
- :class:`UNetSmall`: the ``unet-small`` preset, a 2-level U-Net.

Every convolution is a module named ``conv1 … convN`` in data-flow order, so that the state
dict's keys are exactly the weight file's tensor names (``conv{k}.weight`` with shape
(out, in, kH, kW) and ``conv{k}.bias``) for every preset; :func:`expected_shapes` gives them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import presets
from ..config.sections import ModelConfig

__all__ = ["DenoiseCNN", "UNetSmall", "build_model", "expected_shapes"]


class DenoiseCNN(nn.Module):
    """Conv → ReLU → … → Conv, 1 channel in and out, 'same' zero padding.

    With the default :class:`ModelConfig` this is the seed's net:
    Conv2d(1,16,3,p=1) → ReLU → Conv2d(16,16,3,p=1) → ReLU → Conv2d(16,1,3,p=1), 2,625 parameters.
    With the ``residual`` preset the input is added to the last convolution's output.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        if not presets.get(self.config.preset).conv_stack:
            raise ValueError(f"DenoiseCNN builds conv stacks, not preset {self.config.preset!r}; "
                             "use build_model")
        self.residual = self.config.preset == "residual"
        for k, (c_in, c_out) in enumerate(_layer_channels(self.config), start=1):
            pad = self.config.kernel_size // 2
            conv = nn.Conv2d(c_in, c_out, self.config.kernel_size, padding=pad)
            self.add_module(f"conv{k}", conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        convs = list(self.children())
        h = x
        for conv in convs[:-1]:
            h = torch.relu(conv(h))
        out = convs[-1](h)
        return x + out if self.residual else out


class UNetSmall(nn.Module):
    """A 2-level U-Net of 3 × 3 convolutions (preset ``unet-small``; C = ``config.channels``).

    ======  ==================================  =================  ================
    layer   block                               channels           resolution
    ======  ==================================  =================  ================
    conv1-2   encoder 1                         1 → C → C          full
    conv3-4   encoder 2 (after 2 × 2 max-pool)  C → 2C → 2C        1/2
    conv5-6   bottleneck (after max-pool)       2C → 4C → 4C       1/4
    conv7-8   decoder 2: up(4C) ‖ encoder 2     6C → 2C → 2C       1/2
    conv9-10  decoder 1: up(2C) ‖ encoder 1     3C → C → C         full
    conv11    output                            C → 1              full
    ======  ==================================  =================  ================

    ReLU follows every convolution but the last; upsampling is bilinear (``align_corners=False``)
    and ``‖`` concatenates channels. Any image size works: the input is zero-padded at the
    bottom and right to a multiple of 4 and the output cropped back.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.preset != "unet-small":
            raise ValueError(f"UNetSmall needs preset 'unet-small', got {config.preset!r}")
        self.config = config
        for k, (c_in, c_out) in enumerate(_unet_channels(config.channels), start=1):
            self.add_module(f"conv{k}", nn.Conv2d(c_in, c_out, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        factor = presets.UNET_DOWNSAMPLING
        x = F.pad(x, (0, -width % factor, 0, -height % factor))
        c = list(self.children())

        def block(h: torch.Tensor, k: int) -> torch.Tensor:  # conv{k}, conv{k+1}, each + ReLU
            return torch.relu(c[k](torch.relu(c[k - 1](h))))

        enc1 = block(x, 1)
        enc2 = block(F.max_pool2d(enc1, 2), 3)
        bottom = block(F.max_pool2d(enc2, 2), 5)
        dec2 = block(torch.cat([_up(bottom, enc2), enc2], dim=1), 7)
        dec1 = block(torch.cat([_up(dec2, enc1), enc1], dim=1), 9)
        return c[10](dec1)[..., :height, :width]


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def _layer_channels(config: ModelConfig) -> list[tuple[int, int]]:
    widths = [1] + [config.channels] * (config.depth - 1) + [1]
    return list(zip(widths[:-1], widths[1:], strict=True))


def _unet_channels(c: int) -> list[tuple[int, int]]:
    return [(1, c), (c, c), (c, 2 * c), (2 * c, 2 * c), (2 * c, 4 * c), (4 * c, 4 * c),
            (6 * c, 2 * c), (2 * c, 2 * c), (3 * c, c), (c, c), (c, 1)]


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape for a model of this config, in weight-file order."""
    if config.preset == "unet-small":
        pairs, k = _unet_channels(config.channels), 3
    else:
        pairs, k = _layer_channels(config), config.kernel_size
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (c_in, c_out) in enumerate(pairs, start=1):
        shapes[f"conv{i}.weight"] = (c_out, c_in, k, k)
        shapes[f"conv{i}.bias"] = (c_out,)
    return shapes


def build_model(config: ModelConfig | None = None, seed: int | None = None) -> nn.Module:
    """A freshly initialised model of ``config``'s preset; with ``seed`` the initial weights
    are reproducible (and, for the seed preset, the same as before presets existed)."""
    config = config or ModelConfig()
    kind = UNetSmall if config.preset == "unet-small" else DenoiseCNN
    if seed is None:
        return kind(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return kind(config)
