"""Weight files: safetensors with the config in JSON metadata. No pickle on any path.

A weight file holds the tensors ``conv{k}.weight`` (shape out, in, kH, kW — PyTorch/cuDNN order)
and ``conv{k}.bias``, plus one metadata entry ``"cryoden"``: a JSON object with the full config,
the epoch, losses, the normalisation and the package version. Loading rebuilds the model from
that config and checks every tensor's name, shape, dtype and values against it, so a permuted or
transposed layout (the seed's bug) is refused with the tensor's name rather than silently loaded.
Files are written atomically: a crash mid-write leaves the previous file intact.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .. import __version__
from ..config import presets
from ..config.sections import Config, ConfigError, ModelConfig
from ..errors import WeightFileError
from ..io.atomic import atomic_write_bytes
from .header import (
    FORMAT,
    META_KEY,
    PIXEL_RANGE_KEY,
    check_metadata,
    looks_pickled,
    parse_metadata,
    pixel_size_range,
    unreadable,
)
from .nets import build_model, expected_shapes

__all__ = ["FORMAT", "Checkpoint", "save_checkpoint", "load_checkpoint", "atomic_write_bytes"]

FORMAT_VERSION = 1
EXTRA_PREFIX = "optim."  # non-model tensors (optimizer state) live under this prefix
_EXTRA_NAME = re.compile(r"optim\.\d{1,6}\.[A-Za-z_][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True)
class Checkpoint:
    """What a weight file says about its model besides the tensors."""

    path: Path
    config: Config
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def epoch(self) -> int | None:
        """The training epoch recorded with the weights; None if the metadata has none."""
        return self.metadata.get("epoch")

    @property
    def normalization(self) -> str:
        """The per-micrograph normalisation the model was trained with (metadata, else config)."""
        return str(self.metadata.get("normalization", self.config.data.normalization))

    @property
    def pixel_size_range(self) -> tuple[float, float] | None:
        """The pixel sizes in Å the model was trained on; None: range unknown (older files)."""
        return pixel_size_range(self.metadata)


def save_checkpoint(
    path: str | os.PathLike[str],
    model: torch.nn.Module,
    config: Config,
    extra_tensors: dict[str, torch.Tensor] | None = None,
    **metadata: Any,
) -> Path:
    """Save ``model`` and its ``config`` (plus JSON-able ``metadata``) atomically to ``path``.

    Parameters
    ----------
    path
        Destination ``.safetensors`` file; its folder must exist.
    model
        A :class:`~napari_cryoden.models.nets.DenoiseCNN` (any module whose state dict uses the
        ``conv{k}.weight``/``conv{k}.bias`` names).
    config
        The full run configuration, stored so the file alone rebuilds the model.
    extra_tensors
        Further tensors (e.g. optimizer state) stored under their own names; ignored by
        :func:`load_checkpoint`'s model check.
    **metadata
        Epoch, losses, normalisation and the like; must be JSON-serialisable.
        ``pixel_size_range=(low, high)`` records the pixel sizes in Å the model was trained on
        (:data:`~.header.PIXEL_RANGE_KEY`); None or absent: unknown.

    Raises
    ------
    SaveError
        The file cannot be written, e.g. ``best.safetensors: cannot write: disk full while
        saving …``; the previous file at ``path`` is then intact (an ``OSError`` too).
    """
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous()
               for k, v in model.state_dict().items()}
    _check_tensors(tensors, config.model, Path(path))
    for name, tensor in (extra_tensors or {}).items():
        if not name.startswith(EXTRA_PREFIX):
            raise ValueError(f"extra tensor names must start with {EXTRA_PREFIX!r}: {name}")
        tensors[name] = tensor.detach().to("cpu").contiguous()
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "config": config.to_dict(),
        "normalization": config.data.normalization,
        **metadata,
    }
    if meta.get(PIXEL_RANGE_KEY) is None:
        meta.pop(PIXEL_RANGE_KEY, None)
    else:
        meta[PIXEL_RANGE_KEY] = [float(v) for v in meta[PIXEL_RANGE_KEY]]
    check_metadata(meta, Path(path))
    payload = st_save(tensors, metadata={META_KEY: json.dumps(meta)})
    atomic_write_bytes(path, payload)
    return Path(path)


def load_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, Checkpoint]:
    """Load a weight file into a fresh model on ``device``, checking every tensor.

    The model is built from the metadata's config, so any preset loads as its own architecture.

    Raises
    ------
    WeightFileError
        The file is missing, unreadable, not safetensors (a pickle renamed ``.safetensors`` is
        refused without being unpickled), has no or corrupt metadata, or a tensor's name,
        shape, dtype or values do not fit the model; the message names the file and tensor.
    """
    path = Path(path)
    tensors, raw_meta = _read_safetensors(path)
    config = _config_from_metadata(raw_meta, path)
    extra = {k: v for k, v in tensors.items() if k.startswith(EXTRA_PREFIX)}
    weights = {k: v for k, v in tensors.items() if k not in extra}
    _check_tensors(weights, config.model, path)
    model = build_model(config.model)
    model.load_state_dict({k: v.to(torch.float32) for k, v in weights.items()})
    model.to(device)
    metadata = {k: v for k, v in raw_meta.items() if k != "config"}
    metadata["extra_tensors"] = sorted(extra)
    return model, Checkpoint(path=path, config=config, metadata=metadata)


def load_extra_tensors(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load the non-model tensors of a weight file (optimizer state), for resuming training.

    Raises
    ------
    WeightFileError
        As :func:`load_checkpoint`, or an extra tensor's name is not ``optim.<index>.<key>``.
    """
    path = Path(path)
    tensors, _ = _read_safetensors(path)
    extra = {k: v for k, v in tensors.items() if k.startswith(EXTRA_PREFIX)}
    for name in extra:
        if not _EXTRA_NAME.fullmatch(name):
            raise WeightFileError(f"{path}: optimizer tensor name {name[:80]!r} is not "
                                  "optim.<index>.<key>")
    return extra


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise unreadable(path, exc) from None
    try:
        tensors = st_load(payload)  # parses; never unpickles
        header_len = int.from_bytes(payload[:8], "little")
        header = json.loads(payload[8 : 8 + header_len])
    except (SafetensorError, ValueError, UnicodeDecodeError, OverflowError,
            RecursionError) as exc:
        hint = " (it looks like a pickle/torch .pt file)" if _looks_pickled(payload) else ""
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightFileError(f"{path}: not a safetensors weight file{hint}: {reason}") from None
    meta = parse_metadata(header, path)
    return tensors, meta


def _looks_pickled(payload: bytes) -> bool:
    """Tell a pickle or torch zip: such an opener, read as a header length, exceeds the file."""
    return looks_pickled(payload) and int.from_bytes(payload[:8], "little") > len(payload)


def _config_from_metadata(meta: dict[str, Any], path: Path) -> Config:
    try:
        return Config.from_dict(meta.get("config", {}))
    except (ConfigError, TypeError, ValueError) as exc:
        raise WeightFileError(f"{path}: bad config in metadata: {exc}") from None


def _check_tensors(tensors: dict[str, torch.Tensor], model: ModelConfig, path: Path) -> None:
    n_layers = sum(1 for name in tensors if name.endswith(".weight"))
    if model.depth > n_layers:  # checked first: a corrupt depth must not make a long loop
        preset = "" if presets.is_default(model.preset) else f" (preset {model.preset!r})"
        raise WeightFileError(f"{path}: the metadata's model has {model.depth} layers but the "
                              f"file holds {n_layers} weight tensors{preset}")
    expected = expected_shapes(model)
    missing = [k for k in expected if k not in tensors]
    unexpected = sorted(k for k in tensors if k not in expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_first_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {_first_few(unexpected)}")
        preset = "" if presets.is_default(model.preset) else f" (preset {model.preset!r})"
        raise WeightFileError(f"{path}: tensor names do not fit the model{preset}: "
                              f"{'; '.join(parts)}")
    for name, shape in expected.items():
        tensor = tensors[name]
        if tuple(tensor.shape) != shape:
            layout = " (out, in, kH, kW)" if name.endswith("weight") else ""
            preset = "" if presets.is_default(model.preset) else f" for preset {model.preset!r}"
            raise WeightFileError(f"{path}: {name} has shape {tuple(tensor.shape)}, "
                                  f"expected {shape}{layout}{preset}")
        if not tensor.dtype.is_floating_point:
            raise WeightFileError(f"{path}: {name} has dtype {tensor.dtype}, expected a float type")
        if not torch.isfinite(tensor.to(torch.float32)).all():  # float64 may overflow float32
            raise WeightFileError(f"{path}: {name} contains NaN or Inf values (as float32)")


def _first_few(names: list[str], n: int = 4) -> str:
    text = ", ".join(name[:60] for name in names[:n])
    return text + (f" (+{len(names) - n} more)" if len(names) > n else "")
