"""Inspect's choices for quality without a clean image: the even/odd halves and the picks.

:func:`guess_halves` proposes the even and odd frame sums only from their names (MotionCor2's
``<stem>_EVN``/``<stem>_ODD``, the rule Train uses: :func:`~napari_cryoden._qt.train.layer_choice.
half_pairs`): the pair whose stem is the noisy layer's name, or else the only pair open.
:func:`truthless_problem` says in one line why the halves or picks cannot be measured.
:func:`points_to_pixels` turns a Points layer's (row, col) into the image's pixel x, y, minding
both layers' scale and translate; :func:`picks_of` chooses a pick file's micrograph by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from napari_cryoden._qt.train.layer_choice import half_pairs, pair_problem, shape
from napari_cryoden.data.pairs import split_half
from napari_cryoden.io.picks import Picks

__all__ = ["guess_halves", "guess_picks", "truthless_problem", "points_to_pixels",
           "pixels_to_points", "picks_of"]


def guess_halves(layers: list[Any], noisy: Any) -> tuple[Any, Any]:
    """The ``(even, odd)`` layers the names leave no doubt about; ``(None, None)`` otherwise.

    Parameters
    ----------
    layers
        The viewer's Image layers.
    noisy
        The chosen noisy layer, or ``None``: among several pairs, the one whose stem is its name.
    """
    pairs = half_pairs(layers)
    if noisy is not None and len(pairs) > 1:
        stem = (split_half(noisy.name) or (noisy.name, ""))[0].lower()
        pairs = [p for p in pairs if (split_half(p[0].name) or ("",))[0].lower() == stem]
    return pairs[0] if len(pairs) == 1 else (None, None)


def guess_picks(layers: list[Any]) -> Any:
    """The only Points layer, or ``None`` when there is none or several."""
    return layers[0] if len(layers) == 1 else None


def truthless_problem(halves: tuple[Any, Any], model: Any, picks: Any,
                      region_images: tuple[Any, Any], clean_ok: bool) -> str | None:
    """Why the halves or picks cannot be measured, in one line; ``None`` when they can.

    Parameters
    ----------
    halves
        The even and odd layers (either may be ``None``: not chosen).
    model
        The chosen model's label: it denoises each half.
    picks
        The Points layer, or ``None``.
    region_images
        The noisy and denoised layers the picks are scored on (else the halves' sums).
    clean_ok
        Whether a clean image is chosen and usable: a fidelity measure beside the picks.
    """
    even, odd = halves
    use_halves = even is not None or odd is not None
    if use_halves:
        problem = pair_problem(even, odd, "n2n")
        if problem is not None:
            return problem.replace("even and the odd layer", "even and the odd half")
        if model is None:
            return "Choose the model: it denoises the even and the odd half each on its own."
    if picks is None:
        return None
    return _picks_problem(picks, use_halves, region_images, clean_ok)


def _picks_problem(picks: Any, use_halves: bool, region_images: tuple[Any, Any],
                   clean_ok: bool) -> str | None:
    if len(picks.data) == 0:
        return f"The Points layer '{picks.name}' holds no picks."
    if not (use_halves or clean_ok):
        return ("Region-pair SNR rewards plain smoothing, so it is shown only beside a fidelity "
                "measure: choose the even and odd halves, or a clean image, too.")
    noisy, denoised = region_images
    if use_halves and (noisy is None or denoised is None):
        return None  # scored on the sums of the halves
    if noisy is None or denoised is None:
        return "The picks are scored on the noisy and the denoised image: choose both."
    if noisy is denoised:
        return f"'{noisy.name}' is chosen as both noisy and denoised: choose two images."
    if shape(noisy) != shape(denoised):
        return (f"Shapes differ: noisy '{noisy.name}' is {shape(noisy)}, denoised "
                f"'{denoised.name}' is {shape(denoised)}.")
    return None


def _transform(layer: Any) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(layer.scale[-2:], float), np.asarray(layer.translate[-2:], float)


def points_to_pixels(points: Any, image: Any) -> np.ndarray:
    """Particle centres ``(n, 2)`` as pixel x (column), y (row) of ``image``.

    napari keeps a Points layer's (row, col) in its own data coordinates: they are taken to the
    world by the Points layer's scale and translate, then to the image's pixels by the inverse
    of the image layer's (rotation and shear are not supported).
    """
    data = np.asarray(points.data, float).reshape(-1, points.ndim)[:, -2:]
    p_scale, p_shift = _transform(points)
    i_scale, i_shift = _transform(image)
    pixels = (data * p_scale + p_shift - i_shift) / i_scale
    return pixels[:, ::-1]


def pixels_to_points(xy: np.ndarray, image: Any) -> dict[str, Any]:
    """The data and transform of a Points layer that marks pixel ``xy`` of ``image``."""
    i_scale, i_shift = _transform(image)
    return {"data": np.asarray(xy, float)[:, ::-1], "scale": i_scale, "translate": i_shift}


def picks_of(found: Mapping[str, Picks], name: str) -> Picks:
    """The picks of a file meant for the micrograph ``name`` (a layer's name).

    One micrograph in the file: its picks. Several (a RELION STAR file): those whose micrograph
    is named like the layer, less any even/odd suffix; ``ValueError`` naming them otherwise.
    """
    if len(found) == 1:
        return next(iter(found.values()))
    stem = (split_half(name) or (name, ""))[0]
    if stem in found:
        return found[stem]
    source = next(iter(found.values())).source
    raise ValueError(f"{source}: picks of {len(found)} micrographs "
                     f"({', '.join(sorted(found)[:3])}, ...); none is named '{stem}'")
