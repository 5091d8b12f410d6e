"""The patch index of a dataset, from file headers only.

The split into training and validation files is :func:`.pairs.split_pairs`.

A micrograph of ``ny`` × ``nx`` pixels is cut into square patches on a grid 0, p, 2p, …; the last
row and column of patches are moved to touch the far edges, so every pixel is covered (the last
patches may overlap their neighbours). A 4096 × 4096 micrograph with p = 1024 gives 16 patches.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError
from ..io.images import read_info

__all__ = ["PatchRef", "index_patches", "patch_starts"]


@dataclass(frozen=True)
class PatchRef:
    """Where one patch lies: pair index into the list of pairs, slice, top-left corner."""

    pair: int
    z: int
    y: int
    x: int


def patch_starts(length: int, patch_size: int) -> list[int]:
    """Patch start positions along one axis: 0, p, 2p, … and the last flush with the far edge."""
    if length < patch_size:
        raise ValueError(f"length {length} is smaller than the patch size {patch_size}")
    starts = list(range(0, length - patch_size + 1, patch_size))
    if starts[-1] + patch_size < length:
        starts.append(length - patch_size)
    return starts


def index_patches(
    pairs: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str]]], patch_size: int
) -> list[PatchRef]:
    """List every patch of every slice of every pair, reading file headers only.

    Raises
    ------
    InputError
        A file is unreadable, a noisy and a clean file differ in shape, or a micrograph is
        smaller than ``patch_size``.
    """
    refs: list[PatchRef] = []
    for index, (noisy, clean) in enumerate(pairs):
        noisy_info, clean_info = read_info(noisy), read_info(clean)
        if noisy_info.shape != clean_info.shape:
            raise InputError(
                f"{noisy_info.path} ({_shape_text(noisy_info.shape)}) and {clean_info.path} "
                f"({_shape_text(clean_info.shape)}) differ in shape"
            )
        n_slices, ny, nx = noisy_info.shape
        if ny < patch_size or nx < patch_size:
            raise InputError(
                f"{noisy_info.path}: {nx}x{ny} is smaller than the patch size {patch_size}; "
                "use a smaller --patch-size"
            )
        refs.extend(
            PatchRef(index, z, y, x)
            for z in range(n_slices)
            for y in patch_starts(ny, patch_size)
            for x in patch_starts(nx, patch_size)
        )
    return refs


def _shape_text(shape: tuple[int, int, int]) -> str:
    n_slices, ny, nx = shape
    return f"{nx}x{ny}" if n_slices == 1 else f"{n_slices} slices of {nx}x{ny}"
