"""Models that ship inside the package, for denoising before (or instead of) training one.

The defaults, ``general`` and ``general-fast``, were trained by
``scripts/train_physics_models.sh`` on the physics-grade simulator (``cryoden simulate
--physics``: real atomic models, detector MTF/DQE, drift corrected with sub-pixel interpolation,
dose weighting; pixel sizes 1–2.5 Å, dose 15–60 e/Å² in 20–40 frames), noisy sum → its truth,
with the noise recoloured per patch (``--noise-colour 0:1``) so that correlated noise is not
taken for signal; each started from its ``-v1`` predecessor (``--init``). They record the
pixel-size range ``[1.0, 2.5]`` Å (:func:`shipped_pixel_range`). docs/quality.md gives their
scores against the truth, beside Topaz-Denoise and the best Gaussian filter.

- ``general``: the ``unet-small`` preset (118,113 parameters, 476 kB); the default of
  ``cryoden denoise`` and of the Denoise widget.
- ``general-fast``: the seed's 3-layer net (2,625 parameters, 13 kB), ~10x faster on a CPU.
- ``general-v1``, ``general-fast-v1``: the first shipped models (the same two architectures,
  trained by ``scripts/train_general_model.sh`` on the cartoon simulator's white noise; pixel
  sizes ``[0.6, 2.5]`` Å). They leave coloured noise in place; kept loadable by name.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import InputError

__all__ = ["DEFAULT", "SHIPPED", "is_shipped", "resolve_model", "shipped_path",
           "shipped_pixel_range"]

SHIPPED = {"general": "general.safetensors", "general-fast": "general-fast.safetensors",
           "general-v1": "general-v1.safetensors", "general-fast-v1": "general-fast-v1.safetensors"}
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
