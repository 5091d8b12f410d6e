"""Architecture presets: the table of their defaults and rules, without torch.

``ModelConfig.preset`` names one of :data:`PRESETS`; the preset supplies the defaults of
``channels``, ``depth`` and ``kernel_size`` (a field left at 0 takes the preset's value) and
fixes the fields that define it (``wide5``'s 5 × 5 kernels, ``unet-small``'s layer count and
kernel). :func:`resolve` turns the fields as given into the resolved values stored in the config
and in every weight file's metadata, so the seed's metadata is the same as before presets.

=============  ===========================================================  ==================
preset         network                                                      defaults (C, D, K)
=============  ===========================================================  ==================
seed           Conv-ReLU-…-Conv, 1 → C → … → C → 1, "same" zero padding     16, 3, 3
deep           the same conv stack with 5–7 layers                          32, 6, 3
residual       the seed's stack whose output is added to the input          16, 3, 3
wide5          the seed's stack with 5 × 5 kernels                          16, 3, 5
unet-small     2-level U-Net (max-pool, bilinear upsampling, skip concat)   16, 11 fixed, 3
=============  ===========================================================  ==================

The model is built by :func:`napari_cryoden.models.nets.build_model`; docs/training.md has the
parameter counts and file sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PRESETS", "Preset", "UNET_CONVS", "UNET_DOWNSAMPLING", "UNET_RADIUS", "get",
           "resolve"]


@dataclass(frozen=True)
class Preset:
    """One architecture: its field defaults and which explicit values it accepts."""

    name: str
    summary: str
    channels: int
    depth: int
    kernel_size: int
    min_depth: int = 2
    max_depth: int | None = None
    fixed: tuple[str, ...] = ()

    @property
    def conv_stack(self) -> bool:
        """Whether the net is a plain stack of same-size convolutions (all but the U-Net)."""
        return self.name != "unet-small"


UNET_CONVS = 11
"""Convolutions of ``unet-small``: 2 per block (encoder 1, encoder 2, bottleneck, decoder 2,
decoder 1) and the 3 × 3 output convolution, named ``conv1 … conv11`` in that order."""
UNET_DOWNSAMPLING = 4
"""``unet-small`` pools twice by 2: it pads its input to a multiple of 4 (bottom/right, zeros)."""
UNET_RADIUS = 26
"""Pixels an edge disturbs inwards through ``unet-small`` (its halo for exact tiling, when tiles
start on the pooling grid): 2 (encoder 1) → 1 after the pool → 3 (encoder 2) → 2 after the pool
→ 4 (bottleneck) → 9 after bilinear upsampling → 11 (decoder 2) → 23 after upsampling → 25
(decoder 1) → 26 (output conv). Checked by tests/test_presets.py."""

_TABLE = (
    Preset("seed", "the seed's Conv-ReLU-Conv-ReLU-Conv net", 16, 3, 3),
    Preset("deep", "a deeper conv stack (5-7 layers)", 32, 6, 3, min_depth=5, max_depth=7),
    Preset("residual", "the seed's conv stack predicting a correction: y = x + net(x)",
           16, 3, 3),
    Preset("wide5", "the seed's conv stack with 5x5 kernels", 16, 3, 5, fixed=("kernel_size",)),
    Preset("unet-small", "a 2-level U-Net: max-pool down, bilinear up, skip concatenation",
           16, UNET_CONVS, 3, min_depth=UNET_CONVS, max_depth=UNET_CONVS,
           fixed=("depth", "kernel_size")),
)
PRESETS: dict[str, Preset] = {p.name: p for p in _TABLE}
"""Preset name → :class:`Preset`, in the order the CLI and the Train widget list them."""


def get(name: str) -> Preset:
    """The preset called ``name``; ``ValueError`` (one line, listing the names) if unknown."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(n) for n in PRESETS)
        raise ValueError(f"model.preset: unknown preset {name!r:.40} (known: {known})") from None


def resolve(name: str, channels: int, depth: int, kernel_size: int) -> tuple[int, int, int]:
    """``(channels, depth, kernel_size)`` with 0 replaced by the preset's defaults.

    Raises
    ------
    ValueError
        One line: an unknown preset, or an explicit value the preset does not allow, e.g.
        ``model.depth: preset 'deep' has 5-7 layers, got 3``.
    """
    preset = get(name)
    values = {"channels": channels or preset.channels, "depth": depth or preset.depth,
              "kernel_size": kernel_size or preset.kernel_size}
    for field in preset.fixed:
        if values[field] != getattr(preset, field):
            raise ValueError(f"model.{field}: preset {name!r} fixes it at "
                             f"{getattr(preset, field)}, got {values[field]}; leave it at 0")
    depth = values["depth"]
    if "depth" not in preset.fixed and preset.max_depth is not None and not (
            preset.min_depth <= depth <= preset.max_depth):
        raise ValueError(f"model.depth: preset {name!r} has {preset.min_depth}-"
                         f"{preset.max_depth} layers, got {depth}")
    return values["channels"], depth, values["kernel_size"]
