"""What a weight file says about itself, read from its safetensors header without torch.

A safetensors file starts with 8 bytes (little-endian header length) and a JSON header that
names every tensor (dtype, shape, byte offsets) and holds the ``"cryoden"`` metadata entry.
:func:`read_weight_info` reads only those bytes, so a GUI can check a file the moment it is
opened (milliseconds, torch not imported) and describe it: preset, training mode, epoch, losses.
Random bytes, a text file or a pickle renamed ``.safetensors`` are refused with a one-line
:class:`~napari_cryoden.errors.WeightFileError` naming the file. The full check of every tensor
against the model is :func:`napari_cryoden.models.checkpoint.load_checkpoint`'s.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.sections import NORMALIZATIONS, Config, ConfigError
from ..errors import WeightFileError

__all__ = ["FORMAT", "META_KEY", "PIXEL_RANGE_KEY", "WeightFileInfo", "check_metadata",
           "parse_metadata", "pixel_size_range", "read_weight_info", "unreadable"]

FORMAT = "napari-cryoden-weights"
META_KEY = "cryoden"
MAX_HEADER = 100_000_000  # the safetensors library's own limit on the JSON header
PIXEL_RANGE_KEY = "pixel_size_range"
"""Metadata key of ``[low, high]``: the pixel sizes in Å the model was trained on."""


@dataclass(frozen=True)
class WeightFileInfo:
    """A weight file's config and metadata, as its header states them (tensors not read)."""

    path: Path
    config: Config
    metadata: dict[str, Any] = field(default_factory=dict)
    n_tensors: int = 0

    @property
    def epoch(self) -> int | None:
        """The epoch the weights were saved at, if the file says."""
        return self.metadata.get("epoch")

    @property
    def val_loss(self) -> float | None:
        """The validation loss at that epoch, if the file says."""
        value = self.metadata.get("val_loss")
        return None if value is None else float(value)

    @property
    def pixel_size_range(self) -> tuple[float, float] | None:
        """The pixel sizes in Å the model was trained on; None when the file does not say."""
        return pixel_size_range(self.metadata)


def pixel_size_range(metadata: dict[str, Any]) -> tuple[float, float] | None:
    """Read ``(low, high)`` in Å from checked metadata; None (range unknown) when absent.

    Files written before the field existed, or trained on micrographs without a recorded
    pixel size, have none.
    """
    value = metadata.get(PIXEL_RANGE_KEY)
    return None if value is None else (float(value[0]), float(value[1]))


def read_weight_info(path: str | os.PathLike[str]) -> WeightFileInfo:
    """Read and check the header and metadata of a weight file, without loading its tensors.

    Parameters
    ----------
    path
        A ``.safetensors`` file written by cryoden.

    Returns
    -------
    WeightFileInfo
        The file's config, metadata (without the config) and number of tensors.

    Raises
    ------
    WeightFileError
        The file is missing or unreadable, is not safetensors (a header length larger than the
        file, a header that is not JSON, tensors outside the file), or has no, corrupt or
        mistyped cryoden metadata; one line that names the file.
    """
    path = Path(path)
    header = _read_header(path)
    meta = parse_metadata(header, path)
    try:
        config = Config.from_dict(meta.get("config", {}))
    except (ConfigError, TypeError, ValueError) as exc:
        raise WeightFileError(f"{path}: bad config in metadata: {exc}") from None
    tensors = [k for k in header if k != "__metadata__"]
    metadata = {k: v for k, v in meta.items() if k != "config"}
    return WeightFileInfo(path=path, config=config, metadata=metadata, n_tensors=len(tensors))


def unreadable(path: Path, exc: OSError) -> WeightFileError:
    """Give the one-line error for a weight file the system cannot read (missing, a folder…)."""
    if isinstance(exc, FileNotFoundError):
        return WeightFileError(f"{path}: no such weight file")
    if isinstance(exc, IsADirectoryError):
        return WeightFileError(f"{path}: is a folder, not a weight file")
    return WeightFileError(f"{path}: cannot read weight file ({exc.strerror})")


def _read_header(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            opener = file.read(8)
            length = int.from_bytes(opener, "little")
            if len(opener) < 8 or length > min(size - 8, MAX_HEADER):
                raise WeightFileError(
                    f"{path}: not a safetensors weight file{_kind(opener)}: its first 8 bytes "
                    f"give no header length that fits in its {size:,} bytes")
            text = file.read(length)
    except OSError as exc:
        raise unreadable(path, exc) from None
    try:
        header = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        header = None
    if not isinstance(header, dict):
        raise WeightFileError(f"{path}: not a safetensors weight file: its header is not JSON")
    _check_offsets(header, size - 8 - length, path)
    return header


def _check_offsets(header: dict[str, Any], data_size: int, path: Path) -> None:
    """Every tensor's byte range lies in the file (a truncated copy is caught here)."""
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_size):
            raise WeightFileError(f"{path}: tensor {name[:60]!r} lies outside the file "
                                  "(truncated or not a safetensors weight file)")


def _kind(opener: bytes) -> str:
    if looks_pickled(opener):
        return " (it looks like a pickle/torch .pt file)"
    if opener and all(32 <= c < 127 or c in b"\t\r\n" for c in opener):
        return " (it looks like a text file)"
    return ""


def looks_pickled(payload: bytes) -> bool:
    r"""Tell whether ``payload`` opens like a pickle (``\x80\x0N``) or a torch zip (``PK``)."""
    return payload[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05") or (
        payload[:4] == b"PK\x03\x04")


def parse_metadata(header: dict[str, Any], path: Path) -> dict[str, Any]:
    """Return the checked cryoden metadata of a parsed safetensors header (config a dict).

    Raises
    ------
    WeightFileError
        No cryoden entry, corrupt JSON, another format, or fields of the wrong type.
    """
    meta_text = (header.get("__metadata__") or {}).get(META_KEY)
    if meta_text is None:
        raise WeightFileError(f"{path}: no napari-cryoden metadata (not written by cryoden?)")
    try:
        meta = json.loads(meta_text)
    except json.JSONDecodeError as exc:
        raise WeightFileError(f"{path}: corrupt metadata JSON ({exc.msg})") from None
    except RecursionError:
        raise WeightFileError(f"{path}: corrupt metadata JSON (nested too deeply)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise WeightFileError(f"{path}: metadata is not of format {FORMAT!r}")
    check_metadata(meta, path)
    return meta


def check_metadata(meta: dict[str, Any], path: Path) -> None:
    """Check that the fields other code reads have their types (metadata is data, not code).

    Raises
    ------
    WeightFileError
        The epoch, normalisation or a loss has the wrong type or value.
    """
    problems = []
    epoch = meta.get("epoch")
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, int)
                              or epoch < 0):
        problems.append(f"epoch {epoch!r:.40} is not a whole number >= 0")
    norm = meta.get("normalization", "none")
    if not isinstance(norm, str) or norm not in NORMALIZATIONS:
        problems.append(f"normalization {norm!r:.40} is not one of {', '.join(NORMALIZATIONS)}")
    for key in ("train_loss", "val_loss", "val_mse", "best_val_loss"):
        value = meta.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            problems.append(f"{key} {value!r:.40} is not a number")
    problems += _range_problems(meta.get(PIXEL_RANGE_KEY))
    if problems:
        raise WeightFileError(f"{path}: bad metadata: {'; '.join(problems)}")


def _range_problems(value: Any) -> list[str]:
    """``pixel_size_range`` is absent or ``[low, high]`` with ``0 < low <= high`` (Å)."""
    if value is None:
        return []
    numbers = isinstance(value, list) and len(value) == 2 and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    if numbers and math.isfinite(value[0]) and math.isfinite(value[1]) and (
            0 < value[0] <= value[1]):
        return []
    return [f"{PIXEL_RANGE_KEY} {value!r:.40} is not [low, high] in Å with 0 < low <= high"]
