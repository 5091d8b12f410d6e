"""The denoiser networks of the architecture presets, and the builder that picks one.

- :class:`DenoiseCNN`: a stack of same-size convolutions (presets ``seed``, ``deep``,
  ``wide5``); the seed's 3-layer net by default.
- :class:`ResidualCNN`: the same stack with the input added to its output (``residual``).
- :class:`UNetSmall`: the ``unet-small`` preset, a 2-level U-Net.

Which class a preset uses is its registry entry's ``builder``
(:mod:`napari_cryoden.config.presets`); :func:`build_model` and :func:`expected_shapes` import
it from there. Every network class takes a resolved :class:`ModelConfig` and has a
``shapes(config)`` class method.

Every convolution is a module named ``conv1 … convN`` in data-flow order, so that the state
dict's keys are exactly the weight file's tensor names (``conv{k}.weight`` with shape
(out, in, kH, kW) and ``conv{k}.bias``) for every preset; :func:`expected_shapes` gives them.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import presets
from ..config.sections import ModelConfig

__all__ = ["DenoiseCNN", "ResidualCNN", "UNetSmall", "build_model", "expected_shapes",
           "network_class"]

Shapes = dict[str, tuple[int, ...]]


class DenoiseCNN(nn.Module):
    """Conv → ReLU → … → Conv, 1 channel in and out, 'same' zero padding.

    With the default :class:`ModelConfig` this is the seed's net:
    Conv2d(1,16,3,p=1) → ReLU → Conv2d(16,16,3,p=1) → ReLU → Conv2d(16,1,3,p=1), 2,625 parameters.
    """

    residual = False
    """Whether the input is added to the last convolution's output (:class:`ResidualCNN`)."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        for k, (c_in, c_out) in enumerate(_layer_channels(self.config), start=1):
            pad = self.config.kernel_size // 2
            conv = nn.Conv2d(c_in, c_out, self.config.kernel_size, padding=pad)
            self.add_module(f"conv{k}", conv)

    @classmethod
    def shapes(cls, config: ModelConfig) -> Shapes:
        """Return tensor name → shape of this net for ``config``, in weight-file order.

        Parameters
        ----------
        config : ModelConfig
            Resolved model fields: ``depth`` layers of ``kernel_size`` kernels.

        Returns
        -------
        dict
            ``conv{k}.weight`` → (out, in, kH, kW) and ``conv{k}.bias`` → (out,).
        """
        return _conv_shapes(_layer_channels(config), config.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the denoised batch ``x`` (N, 1, H, W), the same shape."""
        convs = list(self.children())
        h = x
        for conv in convs[:-1]:
            h = torch.relu(conv(h))
        out = convs[-1](h)
        return x + out if self.residual else out


class ResidualCNN(DenoiseCNN):
    """The ``residual`` preset: :class:`DenoiseCNN`'s stack predicting a correction.

    The output is y = x + net(x); its tensors are the seed's.
    """

    residual = True


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
        if (config.depth, config.kernel_size) != (presets.UNET_CONVS, 3):
            raise ValueError(f"UNetSmall has {presets.UNET_CONVS} layers of 3 x 3 kernels, got "
                             f"{config.depth} of {config.kernel_size} x {config.kernel_size}")
        self.config = config
        for k, (c_in, c_out) in enumerate(_unet_channels(config.channels), start=1):
            self.add_module(f"conv{k}", nn.Conv2d(c_in, c_out, 3, padding=1))

    @classmethod
    def shapes(cls, config: ModelConfig) -> Shapes:
        """Return tensor name → shape of this net for ``config``, in weight-file order.

        Parameters
        ----------
        config : ModelConfig
            Resolved model fields; only ``channels`` (C) matters.

        Returns
        -------
        dict
            ``conv1 … conv11``'s weights (out, in, 3, 3) and biases (out,).
        """
        return _conv_shapes(_unet_channels(config.channels), 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the denoised batch ``x`` (N, 1, H, W), the same shape."""
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


def _conv_shapes(pairs: list[tuple[int, int]], k: int) -> Shapes:
    shapes: Shapes = {}
    for i, (c_in, c_out) in enumerate(pairs, start=1):
        shapes[f"conv{i}.weight"] = (c_out, c_in, k, k)
        shapes[f"conv{i}.bias"] = (c_out,)
    return shapes


def network_class(config: ModelConfig) -> Any:
    """Return the network class of ``config``'s preset, imported from its registry entry.

    Parameters
    ----------
    config : ModelConfig
        A resolved model config; its preset's :attr:`~napari_cryoden.config.presets.Preset.builder`
        is ``"module:Class"``.

    Returns
    -------
    type
        The class: ``Class(config)`` builds the net, ``Class.shapes(config)`` lists its tensors.
    """
    module, _, name = presets.get(config.preset).builder.partition(":")
    return getattr(importlib.import_module(module), name)


def expected_shapes(config: ModelConfig) -> Shapes:
    """Return tensor name → shape for a model of this config, in weight-file order.

    Parameters
    ----------
    config : ModelConfig
        A resolved model config.

    Returns
    -------
    dict
        ``conv{k}.weight`` → (out, in, kH, kW) and ``conv{k}.bias`` → (out,), k = 1 … N.
    """
    return dict(network_class(config).shapes(config))


def build_model(config: ModelConfig | None = None, seed: int | None = None) -> nn.Module:
    """Build a freshly initialised model of ``config``'s preset.

    Parameters
    ----------
    config : ModelConfig, optional
        The architecture; default: the seed's net.
    seed : int, optional
        Makes the initial weights reproducible (for the seed preset, the same as before
        presets existed); default: drawn from torch's global generator.

    Returns
    -------
    torch.nn.Module
        The network class of the preset's registry entry, built from ``config``.
    """
    config = config or ModelConfig()
    kind = network_class(config)
    if seed is None:
        return kind(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return kind(config)
