"""Layouts of raw weight buffers: the axis orders a writer may have used for each kernel.

A layout names the order of a flat buffer's axes in C order (last letter fastest), from ``o`` (out
channels), ``i`` (in channels), ``h`` (kernel rows) and ``w`` (kernel columns); the named ones
are in :data:`LAYOUTS`, and any permutation of the four letters is accepted too.
:mod:`napari_cryoden.interop.raw` (which re-exports these) describes the writers.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..errors import InputError

__all__ = ["AXES", "LAYOUTS", "all_axis_orders", "from_layout", "layout_name", "resolve_layout",
           "to_layout"]

AXES = "oihw"  # the model's own order: (out, in, kH, kW)
LAYOUTS: dict[str, str] = {"oihw": "oihw", "fortran": "whio", "hwio": "hwio",
                           "seed-legacy": "hwio"}


def all_axis_orders() -> list[str]:
    """List the 24 permutations of ``"oihw"``, the model's own order first."""
    return ["".join(p) for p in itertools.permutations(AXES)]


def resolve_layout(layout: str) -> str:
    """Return the axis string of a layout name or of a permutation of ``oihw``.

    Layout names are ``oihw``, ``fortran``, ``hwio`` and ``seed-legacy``; a permutation of
    ``oihw`` may also be given directly. ``auto`` is not a layout (see :mod:`.auto`).
    """
    axes = LAYOUTS.get(layout, layout)
    if sorted(axes) != sorted(AXES):
        known = ", ".join([*LAYOUTS, "auto"])
        raise InputError(f"unknown layout {layout!r}: use one of {known}, or a permutation of "
                         f"the letters o, i, h, w (C order, last fastest)")
    return axes


def layout_name(axes: str) -> str:
    """Name an axis string readably, e.g. ``"whio (fortran)"``, ``"hwio (seed-legacy)"``."""
    others = [name for name, value in LAYOUTS.items() if value == axes and name != axes]
    return f"{axes} ({' = '.join(others)})" if others else axes


def to_layout(weight: np.ndarray, axes: str) -> np.ndarray:
    """Flatten an (out, in, kH, kW) array as a writer of layout ``axes`` would."""
    order = [AXES.index(a) for a in resolve_layout(axes)]
    return np.ascontiguousarray(np.transpose(weight, order)).ravel()


def from_layout(buffer: np.ndarray, shape: tuple[int, ...], axes: str) -> np.ndarray:
    """Read a flat buffer of layout ``axes`` as an (out, in, kH, kW) array of ``shape``."""
    axes = resolve_layout(axes)
    size = dict(zip(AXES, shape, strict=True))
    stacked = np.asarray(buffer).reshape([size[a] for a in axes])
    return np.ascontiguousarray(np.transpose(stacked, [axes.index(a) for a in AXES]))
