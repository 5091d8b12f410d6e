"""A packed patch store: every training patch as float16, one contiguous read per patch.

A store is a folder: ``index.json`` (what the patches are and where they came from),
``clean.f16`` and, for pair stores, ``noisy.f16`` — raw little-endian float16 ``(N, P, P)`` in C
order, patch ``i`` at byte ``i·P·P·2`` — and, for pair stores, ``affine.f32``, float32 ``(N, 2)``
offset and scale of each patch's micrograph normaliser (``raw = x · scale + offset``). Pair stores
hold values normalised per micrograph slice as :class:`~.stream.PatchStream` does; clean-only
stores hold raw clean values and the noise parameters with which the loader makes noisy inputs on
the device. See docs/packed-store.md.

:func:`pack` streams micrograph by micrograph (memory-mapped) into a temporary sibling folder,
fsyncs it and renames it onto the target, so a store is either complete or absent.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config.sections import NORMALIZATIONS
from ..errors import InputError
from ..io.images import MicrographCache, list_images, read_info
from ._packed_files import FORMAT, PATCH_DTYPE, VERSION, check_target, noise_params, read_index
from ._packed_writer import StoreWriter
from .pairs import find_pairs, split_pairs
from .patches import index_patches

# StoreWriter lives in ._packed_writer and FORMAT/VERSION in ._packed_files; this is their
# public home.
__all__ = ["FORMAT", "VERSION", "Packed", "PackedStore", "StoreWriter", "pack"]


class PackedStore:
    """A packed store opened read-only; patches are memory-mapped, nothing is loaded.

    Use :meth:`open`; the attributes mirror ``index.json`` (see docs/packed-store.md).

    Attributes
    ----------
    path : Path
        The store folder.
    patch_size, count : int
        Side of the patches (px) and their number.
    arrays : tuple of str
        ``("noisy", "clean")`` for a pair store, ``("clean",)`` for a clean-only store.
    normalization : str
        How the pair store's values were normalised (``"none"`` for clean-only stores).
    noise : dict or None
        ``{"dose", "pixel_size", "read_noise"}`` of a clean-only store; None for pair stores.
    sources : list of dict
        ``{"noisy", "clean", "z", "pixel_size"}`` per micrograph slice.
    patch_source : numpy.ndarray
        int64 ``(count,)``: the source of each patch; ``patch_yx`` int64 ``(count, 2)``: its corner.
    """

    def __init__(self, path: Path, index: dict[str, Any]) -> None:
        self.path = path
        self.patch_size: int = index["patch_size"]
        self.count: int = index["count"]
        self.arrays: tuple[str, ...] = tuple(index["arrays"])
        self.normalization: str = index["normalization"]
        self.noise: dict[str, float] | None = index["noise"]
        self.sources: list[dict[str, Any]] = index["sources"]
        self.created_by: str = index["created_by"]
        patches = index["patches"]
        self.patch_source = np.asarray(patches["source"], dtype=np.int64)
        self.patch_yx = np.stack([np.asarray(patches["y"], dtype=np.int64),
                                  np.asarray(patches["x"], dtype=np.int64)], axis=1)
        self._maps: dict[str, np.ndarray] = {}

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> PackedStore:
        """Open and validate a store; a one-line :class:`InputError` naming the file otherwise."""
        path = Path(path)
        return cls(path, read_index(path, FORMAT, VERSION))

    def file(self, array: str) -> Path:
        """Return the file of ``array`` (``"noisy"``, ``"clean"`` or ``"affine"``)."""
        return self.path / (f"{array}.f32" if array == "affine" else f"{array}.f16")

    @property
    def patch_bytes(self) -> int:
        """Bytes of one patch of one array: ``P · P · 2``."""
        return self.patch_size * self.patch_size * 2

    @property
    def nbytes(self) -> int:
        """Size of the store's data files together."""
        total = len(self.arrays) * self.count * self.patch_bytes
        return total + (self.count * 8 if "noisy" in self.arrays else 0)

    def array(self, array: str) -> np.ndarray:
        """Return the whole ``(count, P, P)`` float16 array, memory-mapped read-only.

        Raises
        ------
        KeyError
            The store has no such array (a clean-only store has no ``"noisy"``).
        """
        if array not in self.arrays:
            raise KeyError(f"{self.path}: no array {array!r} (has {', '.join(self.arrays)})")
        if array not in self._maps:
            shape = (self.count, self.patch_size, self.patch_size)
            self._maps[array] = _memmap(self.file(array), PATCH_DTYPE, shape)
        return self._maps[array]

    def patch(self, i: int, array: str = "clean") -> np.ndarray:
        """Patch ``i`` of ``array`` as a read-only float16 ``(P, P)`` view of the file."""
        return self.array(array)[i]

    @property
    def affine(self) -> np.ndarray | None:
        """float32 ``(count, 2)``: offset and scale per patch (pair stores; None if clean-only)."""
        if "noisy" not in self.arrays:
            return None
        if "affine" not in self._maps:
            self._maps["affine"] = _memmap(self.file("affine"), np.dtype("<f4"), (self.count, 2))
        return self._maps["affine"]

    def split(self, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Patch indices ``(train, val)``, holding out whole micrograph files.

        The files held out are those :func:`~.pairs.split_pairs` holds out for the same seed
        and fraction (it draws on the noisy file name, or the clean one for clean-only stores),
        so a packed run validates on the same micrographs as an unpacked one. The slices of a
        stack stay together. ``val_fraction == 0`` gives an empty validation set.
        """
        files = [(Path(s["noisy"] or s["clean"]), Path(s["clean"])) for s in self.sources]
        unique = list(dict.fromkeys(files))
        try:
            _, val = split_pairs(unique, val_fraction, seed)
        except InputError:
            raise InputError(f"{self.path}: only one micrograph file: cannot hold out a "
                             "validation file; give a separate validation store") from None
        val_files = set(val)
        val_sources = np.array([f in val_files for f in files], dtype=bool)
        is_val = val_sources[self.patch_source] if self.count else np.zeros(0, bool)
        return np.flatnonzero(~is_val), np.flatnonzero(is_val)


@dataclass(frozen=True)
class Packed:
    """Patches of a packed store (``cryoden pack``) as a training or validation set.

    ``indices`` selects patches (e.g. one side of :meth:`PackedStore.split`); None: all of them.
    """

    store: PackedStore
    indices: np.ndarray | None = None

    def __len__(self) -> int:
        return self.store.count if self.indices is None else len(self.indices)


def pack(
    noisy_dir: str | os.PathLike[str] | None,
    clean_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    patch_size: int,
    normalization: str = "meanstd",
    noise: dict[str, float] | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> PackedStore:
    """Pack every patch of a dataset into a store at ``out``; returns the opened store.

    Parameters
    ----------
    noisy_dir, clean_dir : path
        Folders paired by file stem (:func:`~.pairs.find_pairs`). ``noisy_dir=None`` makes a
        clean-only store of raw clean values, whose noise the loader synthesises.
    out : path
        The store folder to create (its parent must exist).
    patch_size : int
        Side of the patches, cut as :func:`~.patches.index_patches` does.
    normalization : str
        Pair stores: ``"none"``, ``"meanstd"`` or ``"percentile"``, fitted on each noisy slice
        and applied to both arrays. Ignored for clean-only stores (recorded as ``"none"``).
    noise : dict, optional
        Clean-only stores (required there): ``dose`` (e⁻/Å²), ``read_noise`` (default 0) and
        ``pixel_size`` (Å; default: the files' headers, which must then agree).
    overwrite : bool
        Replace an existing store at ``out`` (only once the new one is complete).
    progress : callable, optional
        ``progress(done, total)`` after each micrograph file.

    Raises
    ------
    InputError
        No pairs, unreadable or mismatched files, values outside float16 after normalisation,
        bad noise parameters, or ``out`` exists (without ``overwrite``, or is not a store).
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}")
    out = Path(out)
    if patch_size < 1:
        raise InputError(f"{out}: the patch size must be >= 1, got {patch_size}")
    check_target(out, overwrite)
    if noisy_dir is None:
        files: list[tuple[Path | None, Path]] = [(None, c) for c in list_images(clean_dir)]
    else:
        if noise is not None:
            raise InputError("noise parameters are only for clean-only stores (no noisy folder)")
        files = list(find_pairs(noisy_dir, clean_dir))
    refs = index_patches([(n or c, c) for n, c in files], patch_size)  # checks shapes and sizes
    pixel_sizes = [read_info(c).pixel_size for _, c in files]
    if noisy_dir is None:
        noise = noise_params(noise, pixel_sizes, files)
    with StoreWriter(out, patch_size, normalization=normalization, noise=noise,
                     overwrite=overwrite) as writer, MicrographCache(max_open=2) as cache:
        for pair, group in itertools.groupby(refs, key=lambda r: r.pair):
            noisy, clean = files[pair]
            for z in sorted({ref.z for ref in group}):
                with cache.view(clean) as clean_stack, (
                        cache.view(noisy) if noisy is not None
                        else contextlib.nullcontext(None)) as noisy_stack:
                    writer.add(None if noisy_stack is None else noisy_stack[z], clean_stack[z],
                               noisy=noisy, clean=clean, z=z, pixel_size=pixel_sizes[pair])
            if progress is not None:
                progress(pair + 1, len(files))
    return PackedStore.open(out)


def _memmap(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """``path`` memory-mapped read-only as ``shape`` (an empty array for no patches)."""
    if shape[0] == 0:
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=shape)
