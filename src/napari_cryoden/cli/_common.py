"""What the commands share: exit statuses, the progress bar, file lists, the warnings banner."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["EXIT_OK", "EXIT_ERROR", "EXIT_INTERRUPTED", "HALVES_HELP", "progress",
           "expand_folders", "halves_from_args", "print_warnings"]

EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 2, 130


def progress(total: int, desc: str, unit: str) -> Any:
    """Return a tqdm bar on stderr, hidden when stderr is not a terminal.

    Parameters
    ----------
    total
        Steps to completion.
    desc, unit
        Its label and what one step is, e.g. ``"denoise"``, ``"micrograph"``.

    Returns
    -------
    tqdm
        Call ``update(1)`` per step and ``close()`` at the end.
    """
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                disable=None, leave=False)


def expand_folders(items: Sequence[Path], suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """Return the micrographs named: files as given, folders as the images in them.

    Parameters
    ----------
    items
        Files and folders, in the order given.
    suffixes
        The files a folder gives (default: the supported image formats).

    Returns
    -------
    list of Path
        The files; a folder's images in :func:`~napari_cryoden.io.images.list_images` order.
    """
    from ..io.formats import SUPPORTED_SUFFIXES
    from ..io.images import list_images

    listed = SUPPORTED_SUFFIXES if suffixes is None else suffixes
    return [f for item in items
            for f in (list_images(item, listed) if item.is_dir() else [item])]


def print_warnings(warnings: Sequence[str]) -> None:
    """Print the scramble guards' warnings as a banner on stderr (nothing if there are none).

    Parameters
    ----------
    warnings
        One message per warning.
    """
    from ..evaluation.guards import format_warnings

    if warnings:
        print(format_warnings(warnings), file=sys.stderr)


HALVES_HELP = ("a motion-correction output folder holding the even/odd frame sums: "
               "NAME_EVN/NAME_ODD beside NAME (MotionCor2 -SplitSum 1, RELION 5), or even/ and "
               "odd/ subfolders (Warp's average/, cryoden split-frames); instead of --even/--odd")


def halves_from_args(args: Any, command: str) -> tuple[Path, Path] | None:
    """Return the even and odd folders ``--halves`` names (None without it).

    Raises
    ------
    InputError
        ``--halves`` is given with ``--even``/``--odd``, or is not a folder.
    """
    from ..data.pairs import halves_folders
    from ..errors import InputError

    folder = getattr(args, "halves", None)
    if folder is None:
        return None
    if getattr(args, "even", None) or getattr(args, "odd", None):
        raise InputError(f"{command}: give --halves or --even/--odd, not both")
    return halves_folders(folder)
