"""The files of a packed store (see :mod:`.packed`): checking them, and writing them atomically.

This module holds the store's format constants, checks ``index.json``, the data file sizes and
the noise parameters, and writes a store folder atomically (:func:`staging`).

Every problem is a one-line :class:`InputError` naming the file: a store that opens has every key
with the right type, patch lists of ``count`` entries pointing at existing sources, and data files
of exactly ``count · P · P · 2`` bytes (``count · 8`` for ``affine.f32``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..config.sections import NORMALIZATIONS
from ..errors import InputError
from ..io.atomic import fsync_folder

FORMAT, VERSION = "cryoden-pack", 1
PATCH_DTYPE = np.dtype("<f2")  # the patches' dtype on disk

_TYPES: dict[str, tuple[type, ...]] = {
    "format": (str,), "version": (int,), "patch_size": (int,), "count": (int,), "dtype": (str,),
    "arrays": (list,), "normalization": (str,), "sources": (list,), "patches": (dict,),
    "noise": (dict, type(None)), "created_by": (str,),
}
_SOURCE_TYPES: dict[str, tuple[type, ...]] = {
    "noisy": (str, type(None)), "clean": (str,), "z": (int,), "pixel_size": (int, float),
}
_ARRAYS = (["noisy", "clean"], ["clean"])
_NOISE_KEYS = ("dose", "pixel_size", "read_noise")


def read_index(folder: Path, fmt: str, version: int) -> dict[str, Any]:
    """Read and check ``folder/index.json`` and the sizes of the data files it describes."""
    path = folder / "index.json"
    if not folder.is_dir():
        raise InputError(f"{folder}: {'not a folder' if folder.exists() else 'folder not found'}")
    if not path.is_file():
        raise InputError(f"{folder}: not a packed store (no index.json)")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not valid JSON ({str(exc).splitlines()[0]})") from None
    _check(isinstance(index, dict), path, "not a JSON object")
    for key, types in _TYPES.items():
        _check(key in index, path, f"missing key {key!r}")
        _check(_is(index[key], types), path, f"{key!r} has the wrong type")
    _check(index["format"] == fmt, path, f"format is {index['format']!r}, not {fmt!r}")
    _check(index["version"] == version, path,
           f"version {index['version']} is not supported (this napari-cryoden reads {version})")
    _check(index["dtype"] == "float16", path, f"dtype {index['dtype']!r} is not 'float16'")
    _check(index["patch_size"] >= 1 and index["count"] >= 0, path,
           "patch_size must be >= 1 and count >= 0")
    _check(index["arrays"] in _ARRAYS, path, f"arrays {index['arrays']} are not {_ARRAYS}")
    _check(index["normalization"] in NORMALIZATIONS, path,
           f"unknown normalization {index['normalization']!r}")
    clean_only = index["arrays"] == ["clean"]
    _check_sources(path, index["sources"], clean_only)
    _check_patches(path, index["patches"], index["count"], len(index["sources"]))
    _check_noise(path, index["noise"], clean_only)
    _check_sizes(folder, index)
    return index


def _check_sources(path: Path, sources: list[Any], clean_only: bool) -> None:
    for i, source in enumerate(sources):
        _check(isinstance(source, dict), path, f"sources[{i}] is not an object")
        for key, types in _SOURCE_TYPES.items():
            _check(key in source and _is(source[key], types), path,
                   f"sources[{i}] lacks {key!r} or it has the wrong type")
        _check((source["noisy"] is None) == clean_only, path,
               f"sources[{i}]: 'noisy' must be {'null' if clean_only else 'a path'}")


def _check_patches(path: Path, patches: dict[str, Any], count: int, n_sources: int) -> None:
    for key in ("source", "y", "x"):
        values: Any = patches.get(key)
        _check(isinstance(values, list) and len(values) == count, path,
               f"patches[{key!r}] must be a list of count={count} integers")
        _check(all(type(v) is int and v >= 0 for v in values), path,
               f"patches[{key!r}] holds a value that is not an integer >= 0")
    _check(all(v < n_sources for v in patches["source"]), path,
           f"patches['source'] points past the {n_sources} sources")


def _check_noise(path: Path, noise: dict[str, Any] | None, clean_only: bool) -> None:
    if not clean_only:
        _check(noise is None, path, "'noise' must be null for a pair store")
        return
    _check(noise is not None, path, "a clean-only store needs 'noise'")
    assert noise is not None
    for key in _NOISE_KEYS:
        value: Any = noise.get(key)
        _check(_is(value, (int, float)) and math.isfinite(value) and value >= 0, path,
               f"noise[{key!r}] must be a finite number >= 0")
    _check(noise["dose"] > 0 and noise["pixel_size"] > 0, path,
           "noise 'dose' and 'pixel_size' must be > 0")


def _check_sizes(folder: Path, index: dict[str, Any]) -> None:
    count, p = index["count"], index["patch_size"]
    expected = {f"{name}.f16": count * p * p * 2 for name in index["arrays"]}
    if "noisy" in index["arrays"]:
        expected["affine.f32"] = count * 8
    for name, size in expected.items():
        file = folder / name
        _check(file.is_file(), file, "missing")
        found = file.stat().st_size
        _check(found == size, file, f"{found} bytes, index.json says {size} ({count} patches of "
                                    f"{p}x{p}): truncated or corrupt store")


def _is(value: Any, types: tuple[type, ...]) -> bool:
    """Isinstance that does not take a bool for an int."""
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def _check(ok: bool, path: Path, problem: str) -> None:
    if not ok:
        raise InputError(f"{path}: {problem}")


def check_target(out: Path, overwrite: bool) -> None:
    if not out.exists():
        if not out.parent.is_dir():
            raise InputError(f"{out.parent}: folder not found")
        return
    if not overwrite:
        raise InputError(f"{out}: already exists; use --overwrite to replace it")
    if not (out.is_dir() and ((out / "index.json").is_file() or not any(out.iterdir()))):
        raise InputError(f"{out}: exists and is not a packed store; refusing to replace it")


@contextlib.contextmanager
def staging(out: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary sibling folder, renamed onto ``out`` on a clean exit, removed otherwise.

    ``out`` is checked (:func:`check_target`) only once the folder is complete, so an existing
    store is replaced only with ``overwrite`` and only by a finished one.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
        fsync_folder(tmp)
        check_target(out, overwrite)
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:
            if old is not None:
                os.replace(old, out)
            raise
        fsync_folder(out.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def noise_params(noise: dict[str, float] | None, pixel_sizes: list[float],
                 files: list[tuple[Path | None, Path]]) -> dict[str, float]:
    """Check the noise parameters of a clean-only store, filling in the defaults.

    Parameters
    ----------
    noise
        ``dose`` (required), ``read_noise`` (default 0) and ``pixel_size`` (default: the
        files' pixel size, which must then be the same for all).
    pixel_sizes
        The pixel size of each file (Å).
    files
        The ``(noisy, clean)`` files, named in errors.

    Returns
    -------
    dict
        ``{"dose", "pixel_size", "read_noise"}`` as floats.

    Raises
    ------
    InputError
        Missing, unknown or out-of-range parameters, or files of different pixel sizes
        without ``pixel_size``.
    """
    if noise is None:
        raise InputError("a clean-only store needs noise parameters (--dose)")
    unknown = set(noise) - {"dose", "read_noise", "pixel_size"}
    if unknown or "dose" not in noise:
        raise InputError(f"noise parameters need 'dose' and take only 'read_noise' and "
                         f"'pixel_size' (got {', '.join(sorted(noise))})")
    pixel_size = noise.get("pixel_size")
    if pixel_size is None:
        if len(set(pixel_sizes)) > 1:
            i = next(i for i, p in enumerate(pixel_sizes) if p != pixel_sizes[0])
            raise InputError(f"{files[i][1]}: pixel size {pixel_sizes[i]} Å differs from "
                             f"{files[0][1]}'s {pixel_sizes[0]} Å; give --pixel-size")
        pixel_size = pixel_sizes[0]
    params = {"dose": float(noise["dose"]), "pixel_size": float(pixel_size),
              "read_noise": float(noise.get("read_noise", 0.0))}
    if not (params["dose"] > 0 and params["pixel_size"] > 0 and params["read_noise"] >= 0
            and all(math.isfinite(v) for v in params.values())):
        raise InputError(f"noise parameters must be finite, dose and pixel size > 0 and read "
                         f"noise >= 0 (got {params})")
    return params
