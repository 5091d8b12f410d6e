"""What the commands share: exit statuses, the progress bar, file lists, the warnings banner."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["EXIT_OK", "EXIT_ERROR", "EXIT_INTERRUPTED", "HALVES_HELP", "PROJECT_HELP", "progress",
           "add_halves_flags", "expand_folders", "half_pairs_from_args", "halves_from_args",
           "is_star", "print_warnings"]

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


HALVES_HELP = ("the even/odd frame sums from motion correction: a folder with NAME_EVN/NAME_ODD "
               "beside NAME (MotionCor2 -SplitSum 1, RELION 5) or even/ and odd/ subfolders "
               "(Warp's average/, cryoden split-frames), or a STAR file with "
               "_rlnMicrographNameEven/_rlnMicrographNameOdd columns (RELION 5); instead of "
               "--even/--odd")
PROJECT_HELP = ("with a STAR file: the folder its relative paths start from (RELION's project "
                "folder; default: the one at or above the STAR file that holds the first file)")


def add_halves_flags(p: argparse.ArgumentParser, suffix: str = "") -> None:
    """Add ``--halves`` and ``--project`` (for a STAR file as ``--halves``) to ``p``."""
    p.add_argument("--halves", type=Path, metavar="DIR|STAR", help=HALVES_HELP + suffix)
    p.add_argument("--project", type=Path, default=None, metavar="DIR", help=PROJECT_HELP)


def is_star(path: Path) -> bool:
    """Return whether ``path`` names a STAR file (rather than a folder)."""
    return path.suffix.lower() == ".star"


def halves_from_args(args: Any, command: str) -> tuple[Path, Path] | None:
    """Return the even and odd folders a folder given as ``--halves`` holds.

    None without ``--halves`` or when it is a STAR file (:func:`half_pairs_from_args` reads
    that).

    Raises
    ------
    InputError
        ``--halves`` is given with ``--even``/``--odd``, is not a folder, or ``--project`` is
        given without a STAR file.
    """
    from ..data.pairs import halves_folders
    from ..errors import InputError

    folder = getattr(args, "halves", None)
    if getattr(args, "project", None) is not None and (folder is None or not is_star(folder)):
        raise InputError(f"{command}: --project goes with a STAR file as --halves")
    if folder is None:
        return None
    if getattr(args, "even", None) or getattr(args, "odd", None):
        raise InputError(f"{command}: give --halves or --even/--odd, not both")
    if is_star(folder):
        return None
    return halves_folders(folder)


def half_pairs_from_args(args: Any, command: str) -> list[tuple[Path, Path]] | None:
    """Return the ``(even, odd)`` files ``--halves`` names, folder or STAR file (None without).

    Raises
    ------
    InputError
        As :func:`halves_from_args`, or as :func:`~napari_cryoden.io.star.read_halves_star`
        or :func:`~napari_cryoden.data.pairs.find_half_pairs`.
    """
    from ..data.pairs import find_half_pairs
    from ..io.star import read_halves_star

    folders = halves_from_args(args, command)
    if folders is not None:
        return find_half_pairs(*folders)
    halves = getattr(args, "halves", None)
    return None if halves is None else read_halves_star(halves, getattr(args, "project", None))
