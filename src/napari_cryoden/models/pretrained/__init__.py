"""Models that ship inside the package, for denoising before (or instead of) training one.

Both were trained by ``scripts/train_general_model.sh`` on simulated micrographs spanning doses
of 10–60 e/Å², pixel sizes of 0.6–2.5 Å, defocus of 0.5–3 µm, particle contrast ×1–×20 and the
simulator's three particle kinds; docs/quality.md gives the recipe and their scores on held-out
micrographs. Both record that pixel-size range, ``[0.6, 2.5]`` Å, in their metadata
(:func:`shipped_pixel_range`; written by ``scripts/record_pixel_range.py``, weights unchanged).

- ``general``: the ``unet-small`` preset (118,113 parameters, 475 kB); the default of
  ``cryoden denoise`` and of the Denoise widget.
- ``general-fast``: the seed's 3-layer net (2,625 parameters, 17 kB), ~10x faster on a CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import InputError

__all__ = ["DEFAULT", "SHIPPED", "is_shipped", "resolve_model", "shipped_path",
           "shipped_pixel_range"]

SHIPPED = {"general": "general.safetensors", "general-fast": "general-fast.safetensors"}
"""Name → file in this folder."""
DEFAULT = "general"


def shipped_path(name: str = DEFAULT) -> Path:
    """Return the weight file of a shipped model.

    Raises
    ------
    InputError
        No shipped model has that name.
    """
    if name not in SHIPPED:
        raise InputError(f"no shipped model named {name!r} (known: {', '.join(SHIPPED)})")
    return Path(__file__).with_name(SHIPPED[name])


def is_shipped(spec: str | os.PathLike[str]) -> bool:
    """Whether ``spec`` names a shipped model (and not a file of that name here)."""
    return str(spec) in SHIPPED and not Path(spec).exists()


def resolve_model(spec: str | os.PathLike[str] | None) -> Path:
    """Return the weight file that ``spec`` names.

    Parameters
    ----------
    spec
        A weight file path, a shipped model's name (unless a file of that name exists here),
        or None for the default model.
    """
    if spec is None:
        return shipped_path(DEFAULT)
    return shipped_path(str(spec)) if is_shipped(spec) else Path(spec)


def shipped_pixel_range(name: str = DEFAULT) -> tuple[float, float] | None:
    """Return the pixel sizes in Å a shipped model was trained on (from its file's header).

    Raises
    ------
    InputError
        No shipped model has that name.
    """
    from ..header import read_weight_info

    return read_weight_info(shipped_path(name)).pixel_size_range
