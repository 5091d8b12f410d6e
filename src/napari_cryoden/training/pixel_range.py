"""The pixel sizes a model is trained on, read from its training micrographs' headers.

Every checkpoint a run writes records them as ``pixel_size_range`` (:mod:`napari_cryoden.models.
header`), which is what ``cryoden denoise --working-pixel-size auto`` and the Denoise widget bin
towards. Only recorded sizes count (an MRC voxel size of 0 is unknown); a set where no file
records one gives no range, and the checkpoint then says "range unknown".
"""

from __future__ import annotations

from pathlib import Path

from ..data.packed import Packed
from ..errors import InputError
from ..io.images import read_info
from .setup import Data

__all__ = ["training_pixel_range"]


def training_pixel_range(data: Data) -> tuple[float, float] | None:
    """Return ``(low, high)`` in Å over the training micrographs that record a pixel size.

    Parameters
    ----------
    data
        ``(noisy, clean)`` file pairs (the noisy file's header is read), or a packed store's
        patches (its source files' headers, where they still exist).

    Returns
    -------
    tuple of float or None
        The smallest and largest recorded pixel size, rounded to 0.01 Å; None when no file
        records one.
    """
    if isinstance(data, Packed):
        files = {Path(s["noisy"] or s["clean"]) for s in data.store.sources}
    else:
        files = {noisy for noisy, _ in data}
    sizes = [size for size in map(_recorded, sorted(files)) if size is not None]
    if not sizes:
        return None
    return round(min(sizes), 2), round(max(sizes), 2)


def _recorded(path: Path) -> float | None:
    try:
        return read_info(path).recorded_pixel_size
    except (InputError, OSError):
        return None
