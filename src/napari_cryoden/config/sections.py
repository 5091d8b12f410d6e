"""One validated configuration: the source of CLI flags, widget forms and checkpoint metadata.

The configuration is three frozen dataclasses grouped in :class:`Config`. Each field carries its
help text in ``metadata["help"]``, read once into the :class:`~.spec.FieldSpec` records of
:data:`FIELDS`; the CLI builds its flags from them (:mod:`.flags`) and the napari Train widget its
form, so a field is documented once. :meth:`Config.from_dict` rejects unknown keys and bad values
with a one-line :class:`ConfigError`, which is how metadata read from a weight file is checked too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from . import presets
from .noise_colour import parse_noise_colour
from .spec import ConfigError, FieldSpec, check_ranges, field_specs, section_from_dict

__all__ = [
    "NORMALIZATIONS",
    "DEVICES",
    "PRECISIONS",
    "SCHEDULES",
    "MODES",
    "ConfigError",
    "ModelConfig",
    "DataConfig",
    "TrainConfig",
    "Config",
    "FieldSpec",
    "SECTIONS",
    "FIELDS",
    "field_help",
]

NORMALIZATIONS = ("none", "meanstd", "percentile")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "tf32", "fp16", "bf16")
SCHEDULES = ("constant", "cosine", "plateau")
MODES = ("n2c", "n2n", "n2v")


def _f(default: Any, help: str, **kw: Any) -> Any:  # noqa: A002 - mirrors argparse's name
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the denoiser. The defaults are the seed's 3-layer net (2,625 parameters)."""

    preset: str = _f(presets.DEFAULT, presets.field_help(), choices=presets.PRESETS)
    channels: int = _f(0, "Feature channels of the hidden layers (unet-small: of its first "
                       "level, doubled per level); 0: the preset's (16; deep: 32).", min=1,
                       zero="preset's")
    depth: int = _f(0, "Number of convolution layers (>= 2); 0: the preset's (3; deep: 6, "
                    "5-7 allowed; unet-small: fixed at 11).", min=2, zero="preset's")
    kernel_size: int = _f(0, "Convolution kernel size in pixels (odd); 0: the preset's "
                          "(3; wide5: 5, fixed; unet-small: 3, fixed).", min=1, zero="preset's")

    def __post_init__(self) -> None:
        """Fields left at 0 take the preset's values; contradictions raise ConfigError."""
        try:
            resolved = presets.resolve(self.preset, self.channels, self.depth, self.kernel_size)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        for name, value in zip(("channels", "depth", "kernel_size"), resolved, strict=True):
            object.__setattr__(self, name, value)

    def validate(self) -> None:
        """Raise :class:`ConfigError` unless the kernel size is odd."""
        if self.kernel_size % 2 == 0:
            raise ConfigError(f"model.kernel_size must be odd, got {self.kernel_size}")

    @property
    def receptive_radius(self) -> int:
        """Pixels on each side of an output pixel that influence it.

        For a pooling net such as ``unet-small`` this holds when tiles start on its pooling
        grid (see :attr:`downsampling`).
        """
        return presets.get(self.preset).radius(self.channels, self.depth, self.kernel_size)

    @property
    def downsampling(self) -> int:
        """Total pooling factor: inputs are padded, and tiles aligned, to multiples of it."""
        return presets.get(self.preset).downsampling

    @property
    def activation_channels(self) -> int:
        """Hidden channels alive per full-resolution pixel, for memory estimates.

        ``channels`` for the conv stacks; 4 · channels for unet-small (skip, upsampled and
        concatenated activations at full resolution).
        """
        return presets.get(self.preset).activation_factor * self.channels


@dataclass(frozen=True)
class DataConfig:
    """How micrographs become training patches."""

    patch_size: int = _f(1024, "Micrographs are cut into square patches of this size (px).", min=8)
    crop: int | None = _f(
        None, "Random crop (px) taken from each patch while training; default: the whole patch.",
        min=8,
    )
    normalization: str = _f(
        "meanstd",
        "Per-micrograph intensity normalisation: mean/std (meanstd: to mean 0, std 1), "
        "percentiles (percentile: 0.5-99.5 % to 0-1) or none; outputs are mapped back.",
        choices=NORMALIZATIONS,
    )
    val_fraction: float = _f(
        0.1, "Fraction of micrograph files held out for validation (split by file, seeded).",
        min=0.0, max=0.9,
    )
    shuffle_buffer: int = _f(
        16, "Patches held in the streaming shuffle buffer; bounds host memory.", min=1
    )
    reader_threads: int = _f(2, "Background threads reading patches from disk.", min=1)

    def validate(self) -> None:
        """Raise :class:`ConfigError` for an unknown normalisation or a crop over the patch size."""
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(
                f"data.normalization: {self.normalization!r} is not one of "
                f"{', '.join(NORMALIZATIONS)}"
            )
        if self.crop is not None and self.crop > self.patch_size:
            raise ConfigError(
                f"data.crop ({self.crop}) is larger than data.patch_size ({self.patch_size})"
            )


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. MSE loss and Adam, as in the seed."""

    epochs: int = _f(5, "Passes over the training patches.", min=1)
    batch_size: int = _f(
        4, "Patches per optimisation step; 0 picks the largest power of two that fits in the "
        "free GPU memory (4 on the CPU).", min=0)
    lr: float = _f(1e-3, "Adam learning rate: larger learns faster but may diverge.", min=0.0)
    seed: int = _f(0, "Random seed: file split, patch order, crops and initial weights.")
    device: str = _f("auto", "Where to train: auto (cuda > mps > cpu), cpu, cuda or mps.",
                     choices=DEVICES)
    amp: bool = _f(False, "Mixed precision on an NVIDIA GPU: faster, lighter on memory; the "
                   "same as precision fp16 (--precision fp16).")
    precision: str = _f(
        "fp32", "Arithmetic on CUDA: fp32, tf32, fp16 (autocast + gradient scaling) or bf16; "
        "fp16/bf16 also use channels_last. The CPU always trains in fp32.", choices=PRECISIONS)
    fused: bool = _f(True, "With fp16 on one CUDA GPU, train the seed net with the fused Triton "
                     "kernels when Triton is installed (about 3x the cuDNN step); off: cuDNN.")
    schedule: str = _f(
        "constant", "Learning-rate schedule: constant; cosine (annealed from lr to 0 over all "
        "steps of the run); plateau (halved after more than plateau_patience epochs without a "
        "new best validation loss).", choices=SCHEDULES)
    plateau_patience: int = _f(
        2, "plateau schedule: epochs without a new best validation loss that are tolerated; "
        "the next one halves the rate.", min=0)
    mode: str = _f(
        "n2c", "What the net learns from: noisy → clean pairs (n2c); even/odd frame sums (n2n, "
        "Noise2Noise: independent noisy halves of each exposure, input and target swapped at "
        "random per patch); single noisy micrographs (n2v, Noise2Void: a few masked pixels per "
        "patch predicted from their neighbours). See docs/self-supervised.md.",
        choices=MODES)
    n2v_fraction: float = _f(
        0.01, "n2v: fraction of each patch's pixels masked per step (one per grid cell, "
        "stratified), the only pixels the loss sees.", min=0.001, max=0.05)
    init: str = _f(
        "", "Start from this model's weights instead of random ones: a .safetensors file or a "
        "shipped model's name (general, general-fast). Its architecture is taken when no model "
        "option is given, and must match the model options otherwise. The optimizer starts "
        "fresh; with resume the run's last weights win. Empty: random weights.")
    noise_colour: str = _f(
        "", "n2c only: colour each training patch's noise (noisy - clean) with a Gaussian blur "
        "of sigma drawn per patch from LO:HI px (0: white), keeping its variance, as a "
        "motion-corrected sum's noise is correlated between pixels. Empty: off.")

    def validate(self) -> None:
        """Raise :class:`ConfigError` for an unknown choice or ``amp`` against ``precision``."""
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise ConfigError(f"train.device: {self.device!r} is not one of {', '.join(DEVICES)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"train.precision: {self.precision!r} is not one of "
                              f"{', '.join(PRECISIONS)}")
        if self.amp and self.precision not in ("fp32", "fp16"):
            raise ConfigError(f"train.amp (fp16) contradicts train.precision {self.precision!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"train.schedule: {self.schedule!r} is not one of "
                              f"{', '.join(SCHEDULES)}")
        if self.mode not in MODES:
            raise ConfigError(f"train.mode: {self.mode!r} is not one of {', '.join(MODES)}")
        if self.noise_colour_range is not None and self.mode != "n2c":
            raise ConfigError(f"train.noise_colour is for noisy → clean training (mode n2c): "
                              f"the targets of mode {self.mode} are noisy, so their noise "
                              "cannot be recoloured")

    @property
    def noise_colour_range(self) -> tuple[float, float] | None:
        """``noise_colour`` as ``(low, high)`` σ in px; None when off (empty, or ``0:0``)."""
        try:
            return parse_noise_colour(self.noise_colour)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @property
    def effective_precision(self) -> str:
        """``precision``, with the older ``amp`` flag meaning fp16."""
        return "fp16" if self.amp else self.precision


@dataclass(frozen=True)
class Config:
    """Everything a training run needs; stored in full in every checkpoint's metadata."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        """Check every section's ranges and choices; raise :class:`ConfigError` on the first."""
        for name, _ in SECTIONS:
            section = getattr(self, name)
            check_ranges(name, section, _BY_KEY)
            section.validate()

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Return the config as nested plain dicts, one per section (as :meth:`from_dict` reads)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        """Build a config from nested dicts; missing keys take defaults, unknown are refused."""
        if not isinstance(data, dict):
            raise ConfigError(f"config must be a mapping, got {type(data).__name__}")
        unknown = set(data) - {name for name, _ in SECTIONS}
        if unknown:
            raise ConfigError(f"unknown config section(s): {', '.join(sorted(unknown))}")
        sections = {name: section_from_dict(kind, data.get(name, {}), name, _BY_KEY)
                    for name, kind in SECTIONS}
        return cls(**sections)

    def replace(self, **sections: dict[str, Any]) -> Config:
        """Return a copy with some fields changed, e.g. ``replace(train={"epochs": 2})``.

        Changing ``model.preset`` resets the model fields not given with it to the new
        preset's defaults (``replace(model={"preset": "deep"})`` is the 6-layer deep net).
        """
        merged = self.to_dict()
        for name, values in sections.items():
            if name not in merged:
                raise ConfigError(f"unknown config section {name!r}")
            if name == "model" and values.get("preset", self.model.preset) != self.model.preset:
                merged[name].update(channels=0, depth=0, kernel_size=0)
            merged[name].update(values)
        return Config.from_dict(merged)


SECTIONS: tuple[tuple[str, type], ...] = (
    ("model", ModelConfig), ("data", DataConfig), ("train", TrainConfig))
"""The sections by name, in :class:`Config`'s order: the one table the CLI and the GUI use."""
FIELDS: tuple[FieldSpec, ...] = tuple(
    spec for name, kind in SECTIONS for spec in field_specs(name, kind))
"""Every field of every section, described once (field names are unique across sections)."""
_BY_KEY = {spec.key: spec for spec in FIELDS}
_SECTION_NAMES = {kind: name for name, kind in SECTIONS}


def field_help(section: type, name: str) -> str:
    """Return the help text of one field, for CLI flags and widget tooltips.

    Parameters
    ----------
    section
        The section's dataclass, e.g. :class:`DataConfig`.
    name
        The field's name; unknown names raise :class:`KeyError`.

    Returns
    -------
    str
        The field's ``help`` metadata.
    """
    key = f"{_SECTION_NAMES[section]}.{name}"
    if key not in _BY_KEY:
        raise KeyError(name)
    return _BY_KEY[key].help
