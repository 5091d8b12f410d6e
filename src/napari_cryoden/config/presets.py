"""Architecture presets: a registry of their defaults, rules and geometry, without torch.

``ModelConfig.preset`` names one entry of :data:`PRESETS`. A :class:`Preset` supplies the
defaults of ``channels``, ``depth`` and ``kernel_size`` (a field left at 0 takes the preset's
value), fixes the fields that define it (``wide5``'s 5 × 5 kernels, ``unet-small``'s layer
count and kernel), and says everything the rest of the package needs to know about its net:
its receptive radius (the tiling halo), its pooling factor, its activation memory and where its
network class lives. No code outside this module compares preset names.

=============  ===========================================================  ==================
preset         network                                                      defaults (C, D, K)
=============  ===========================================================  ==================
seed           Conv-ReLU-…-Conv, 1 → C → … → C → 1, "same" zero padding     16, 3, 3
deep           the same conv stack with 5–7 layers                          32, 6, 3
residual       the seed's stack whose output is added to the input          16, 3, 3
wide5          the seed's stack with 5 × 5 kernels                          16, 3, 5
unet-small     2-level U-Net (max-pool, bilinear upsampling, skip concat)   16, 11 fixed, 3
=============  ===========================================================  ==================

:func:`resolve` turns the fields as given into the resolved values stored in the config and in
every weight file's metadata, so the seed's metadata is the same as before presets. The network
is named by a dotted path (:attr:`Preset.builder`) and imported by
:func:`napari_cryoden.models.nets.build_model`, so this module imports no torch. A new preset is
one network module plus one :func:`register` call (docs/training.md, "Adding a preset").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DEFAULT", "PRESETS", "Preset", "UNET_CONVS", "UNET_DOWNSAMPLING", "UNET_RADIUS",
           "conv_stack_radius", "field_help", "get", "is_default", "register", "resolve"]

Radius = Callable[[int, int, int], int]
"""``(channels, depth, kernel_size) -> pixels``: a preset's receptive radius."""


def conv_stack_radius(channels: int, depth: int, kernel_size: int) -> int:
    """Return the receptive radius of ``depth`` same-size convolutions.

    Parameters
    ----------
    channels, depth, kernel_size : int
        The resolved model fields; ``channels`` does not matter.

    Returns
    -------
    int
        ``depth · (kernel_size // 2)`` pixels on each side of an output pixel.
    """
    return depth * (kernel_size // 2)


@dataclass(frozen=True)
class Preset:
    """One architecture: its defaults, the values it accepts and the geometry of its net.

    Attributes
    ----------
    name : str
        What configs, weight-file metadata, ``--preset`` and the Train widget call it.
    label : str
        A user's words for the net, shown in the help of ``--preset``.
    builder : str
        ``"module:Class"`` of its network: ``Class(config)`` is the ``nn.Module`` of a resolved
        ``ModelConfig``, ``Class.shapes(config)`` its tensor names and shapes in weight-file
        order. Imported by :func:`napari_cryoden.models.nets.build_model` only.
    channels, depth, kernel_size : int
        The defaults of the model fields left at 0.
    min_depth, max_depth : int, int or None
        The layer counts it accepts.
    fixed : tuple of str
        Fields that must keep the preset's value.
    radius : callable
        Pixels on each side of an output pixel that influence it, from the resolved
        ``(channels, depth, kernel_size)``: the halo of exact tiling.
    downsampling : int
        Total pooling factor: inputs are padded, and tiles aligned, to multiples of it.
    activation_factor : int
        Hidden activations alive per full-resolution pixel, in units of ``channels``, for
        memory estimates.
    fused : bool
        Whether the fused Triton kernels compute this net (the seed's 3-layer stack only).
    """

    name: str
    label: str
    builder: str
    channels: int
    depth: int
    kernel_size: int
    min_depth: int = 2
    max_depth: int | None = None
    fixed: tuple[str, ...] = ()
    radius: Radius = conv_stack_radius
    downsampling: int = 1
    activation_factor: int = 1
    fused: bool = False


UNET_CONVS = 11
"""Convolutions of ``unet-small``: 2 per block (encoder 1, encoder 2, bottleneck, decoder 2,
decoder 1) and the 3 × 3 output convolution, named ``conv1 … conv11`` in that order."""
UNET_DOWNSAMPLING = 4
"""``unet-small`` pools twice by 2: it pads its input to a multiple of 4 (bottom/right, zeros)."""
UNET_RADIUS = 26
"""Pixels an edge disturbs inwards through ``unet-small`` (its halo for exact tiling, when tiles
start on the pooling grid): 2 (encoder 1) → 1 after the pool → 3 (encoder 2) → 2 after the pool
→ 4 (bottleneck) → 9 after bilinear upsampling → 11 (decoder 2) → 23 after upsampling → 25
(decoder 1) → 26 (output conv). Checked by tests/config/test_presets.py."""


def _unet_radius(channels: int, depth: int, kernel_size: int) -> int:
    return UNET_RADIUS


_NETS = "napari_cryoden.models.nets"
_TABLE = (
    Preset("seed", "Conv-ReLU-Conv-ReLU-Conv", f"{_NETS}:DenoiseCNN", 16, 3, 3, fused=True),
    Preset("deep", "5-7 conv layers", f"{_NETS}:DenoiseCNN", 32, 6, 3, min_depth=5,
           max_depth=7),
    Preset("residual", "seed net + skip: y = x + net(x)", f"{_NETS}:ResidualCNN", 16, 3, 3),
    Preset("wide5", "5x5 kernels", f"{_NETS}:DenoiseCNN", 16, 3, 5, fixed=("kernel_size",)),
    Preset("unet-small", "2-level U-Net", f"{_NETS}:UNetSmall", 16, UNET_CONVS, 3,
           min_depth=UNET_CONVS, max_depth=UNET_CONVS, fixed=("depth", "kernel_size"),
           radius=_unet_radius, downsampling=UNET_DOWNSAMPLING, activation_factor=4),
)
PRESETS: dict[str, Preset] = {p.name: p for p in _TABLE}
"""Preset name → :class:`Preset`, in the order the CLI and the Train widget list them. The
``--preset`` choices and the widget's box read it when they are built, so a preset added with
:func:`register` appears there too."""
DEFAULT = "seed"
"""The preset of ``ModelConfig()``: the seed's net, which messages and titles leave unnamed."""


def register(preset: Preset) -> Preset:
    """Add an architecture to :data:`PRESETS`.

    Parameters
    ----------
    preset : Preset
        The new entry; its defaults must satisfy its own rules.

    Returns
    -------
    Preset
        ``preset``, so a module can write ``MY_NET = register(Preset(...))``.

    Raises
    ------
    ValueError
        One line: the name is taken, the builder is not ``"module:Class"``, or the defaults
        contradict the preset's layer range.
    """
    if preset.name in PRESETS:
        raise ValueError(f"model.preset: a preset called {preset.name!r} exists already")
    module, _, attribute = preset.builder.partition(":")
    if not module or not attribute:
        raise ValueError(f"preset {preset.name!r}: builder must be 'module:Class', "
                         f"got {preset.builder!r}")
    high = preset.max_depth if preset.max_depth is not None else preset.depth
    if not preset.min_depth <= preset.depth <= high:
        raise ValueError(f"preset {preset.name!r}: default depth {preset.depth} is outside "
                         f"{preset.min_depth}-{high}")
    PRESETS[preset.name] = preset
    return preset


def get(name: str) -> Preset:
    """Return the registry entry of a preset.

    Parameters
    ----------
    name : str
        A preset's name, e.g. ``ModelConfig.preset``.

    Returns
    -------
    Preset
        Its entry in :data:`PRESETS`.

    Raises
    ------
    ValueError
        One line listing the known names, if there is no such preset.
    """
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(n) for n in PRESETS)
        raise ValueError(f"model.preset: unknown preset {name!r:.40} (known: {known})") from None


def is_default(name: str) -> bool:
    """Return whether a preset is the default one, which messages and titles leave unnamed.

    Parameters
    ----------
    name : str
        A preset's name.

    Returns
    -------
    bool
        ``name`` is :data:`DEFAULT` (the seed's net, whose weight files predate presets).
    """
    return name == DEFAULT


def field_help() -> str:
    """Return the help text of ``model.preset``.

    Returns
    -------
    str
        Every registered preset's name and label, e.g. ``"Architecture: seed (...), ... or
        unet-small (2-level U-Net). It sets ..."``.
    """
    items = [f"{p.name} ({p.label})" for p in PRESETS.values()]
    listed = ", ".join(items[:-1]) + " or " + items[-1] if len(items) > 1 else items[0]
    return f"Architecture: {listed}. It sets the defaults of channels, depth and kernel size."


def resolve(name: str, channels: int, depth: int, kernel_size: int) -> tuple[int, int, int]:
    """Return ``(channels, depth, kernel_size)`` with 0 replaced by the preset's defaults.

    Parameters
    ----------
    name : str
        The preset.
    channels, depth, kernel_size : int
        The fields as given; 0 takes the preset's value.

    Returns
    -------
    tuple of int
        The resolved ``(channels, depth, kernel_size)``.

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
