"""Writing a packed store (see :mod:`.packed`) micrograph by micrograph, complete or absent."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import IO, Any

import numpy as np

from .. import __version__
from ..errors import InputError
from ._packed_files import FORMAT, PATCH_DTYPE, VERSION, check_target, staging
from .normalize import Normalizer, fit_normalizer
from .patches import patch_starts

__all__ = ["StoreWriter"]


class StoreWriter:
    """Write a store micrograph by micrograph, so that it is complete or absent.

    On a clean exit of its ``with`` block the store is fsynced and renamed onto ``out``; on an
    error it is discarded.

    Parameters
    ----------
    out : path
        The store folder to create (its parent must exist).
    patch_size : int
        Side of the patches, cut on the grid of :func:`~.patches.patch_starts`.
    normalization : str
        Pair stores: fitted on each noisy micrograph and applied to both. Clean-only stores
        (``noise`` given) hold raw values and record ``"none"``.
    noise : dict, optional
        Makes a clean-only store: ``{"dose", "pixel_size", "read_noise"}`` as in :func:`pack`.
    overwrite : bool
        Replace an existing store at ``out`` once the new one is complete.
    """

    def __init__(self, out: str | os.PathLike[str], patch_size: int, *,
                 normalization: str = "meanstd", noise: dict[str, float] | None = None,
                 overwrite: bool = False) -> None:
        self.out, self.patch_size = Path(out), patch_size
        self.noise = noise
        self.normalization = "none" if noise is not None else normalization
        self.arrays = ["clean"] if noise is not None else ["noisy", "clean"]
        check_target(self.out, overwrite)
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(staging(self.out, overwrite))
        names = [*self.arrays, *([] if noise is not None else ["affine"])]
        self._handles: dict[str, IO[bytes]] = {
            name: self._stack.enter_context(open(self._tmp / f"{name}.{_EXT[name]}", "wb"))
            for name in names}
        self._sources: list[dict[str, Any]] = []
        self._patches: dict[str, list[int]] = {"source": [], "y": [], "x": []}

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: Any) -> None:
        if kind is None:
            self._finish()
        self._stack.__exit__(kind, *rest)

    def add(self, noisy_image: np.ndarray | None, clean_image: np.ndarray, *,
            noisy: str | os.PathLike[str] | None, clean: str | os.PathLike[str], z: int = 0,
            pixel_size: float = 1.0) -> int:
        """Append every patch of one micrograph (slice); returns how many.

        ``noisy_image`` is None for clean-only stores. The images may be memory-mapped: they are
        read patch by patch. ``noisy``/``clean``/``z``/``pixel_size`` describe the source in
        ``index.json`` and name it in errors.
        """
        if (noisy_image is None) != (self.noise is not None):
            raise ValueError("a clean-only store takes clean images alone; a pair store pairs")
        if noisy_image is not None and np.shape(noisy_image) != np.shape(clean_image):
            raise InputError(f"{noisy}: shape {np.shape(noisy_image)} differs from {clean}'s "
                             f"{np.shape(clean_image)}")
        ny, nx = np.shape(clean_image)
        if min(ny, nx) < self.patch_size:
            raise InputError(f"{noisy or clean}: {nx}x{ny} is smaller than the patch size "
                             f"{self.patch_size}; use a smaller --patch-size")
        normalizer = Normalizer()
        if noisy_image is not None:
            name = str(noisy) if z == 0 else f"{noisy} slice {z}"
            normalizer = fit_normalizer(noisy_image, self.normalization, name=name)
        source = len(self._sources)
        self._sources.append({"noisy": None if noisy is None else os.path.abspath(noisy),
                              "clean": os.path.abspath(clean), "z": z,
                              "pixel_size": float(pixel_size)})
        p, count = self.patch_size, 0
        for y in patch_starts(ny, p):
            for x in patch_starts(nx, p):
                for array, image, path in (("noisy", noisy_image, noisy),
                                           ("clean", clean_image, clean)):
                    if image is not None:
                        self._write(array, normalizer.apply(np.asarray(image[y:y + p, x:x + p],
                                                                       np.float32)), path, z, y, x)
                if noisy_image is not None:
                    affine = np.array([normalizer.offset, normalizer.scale], dtype="<f4")
                    self._handles["affine"].write(affine.tobytes())
                for key, value in (("source", source), ("y", y), ("x", x)):
                    self._patches[key].append(value)
                count += 1
        return count

    def _write(self, array: str, values: np.ndarray, path: Any, z: int, y: int, x: int) -> None:
        with np.errstate(over="ignore", invalid="ignore"):
            half = values.astype(PATCH_DTYPE)
        if not np.isfinite(half).all():
            what = (f"after normalization {self.normalization!r}: use --normalization meanstd"
                    if self.noise is None else "(raw values of a clean-only store)")
            raise InputError(f"{path}: slice {z} patch at y={y} x={x} is NaN or outside "
                             f"float16's range {what}")
        self._handles[array].write(np.ascontiguousarray(half).data)

    def _finish(self) -> None:
        index = {"format": FORMAT, "version": VERSION, "patch_size": self.patch_size,
                 "count": len(self._patches["source"]), "dtype": "float16",
                 "arrays": self.arrays, "normalization": self.normalization,
                 "sources": self._sources, "patches": self._patches, "noise": self.noise,
                 "created_by": f"napari-cryoden {__version__}"}
        for handle in self._handles.values():
            handle.flush()
            os.fsync(handle.fileno())
        (self._tmp / "index.json").write_text(json.dumps(index, separators=(",", ":")) + "\n")
        with open(self._tmp / "index.json", "rb") as fh:
            os.fsync(fh.fileno())


_EXT = {"noisy": "f16", "clean": "f16", "affine": "f32"}
