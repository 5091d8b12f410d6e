"""The Inspect widget's image choices: guessed only from unambiguous evidence, then checked.

:func:`guess_images` proposes (noisy, denoised, clean) layers: the denoised one only when its name
says it (a ``"<noisy> denoised"`` layer as the Denoise widget makes it, or the one layer whose name
contains "denois"), the clean one only when exactly one layer of the right shape is named like a
reference; anything else stays empty for the user to choose. :func:`choice_problem` says why a
trio cannot be analysed (missing, the same image twice, shapes that differ), or ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["choice_problem", "guess_images", "layer_array"]

_CLEAN_WORDS = ("clean", "target", "reference", "truth", "gt")
_NOISY_WORDS = ("noisy", "noise", "raw")


def _shape(layer: Any) -> tuple[int, ...]:
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return tuple(int(n) for n in data.shape)


def _only(layers: Sequence[Any], keep: Callable[[Any], bool]) -> Any:
    """The one layer of ``layers`` that ``keep`` accepts; ``None`` when none or several do."""
    found = [layer for layer in layers if keep(layer)]
    return found[0] if len(found) == 1 else None


def guess_images(layers: Sequence[Any]) -> tuple[Any, Any, Any]:
    """Return the (noisy, denoised, clean) layers the names and shapes leave no doubt about.

    Parameters
    ----------
    layers
        The viewer's image layers.

    Returns
    -------
    tuple
        Each entry a layer, or ``None`` where the evidence is missing or ambiguous.
    """
    names = {layer.name: layer for layer in layers}
    made = [layer for layer in layers
            if layer.name.endswith(" denoised") and layer.name[:-len(" denoised")] in names]
    denoised = made[0] if len(made) == 1 else None
    noisy = names[denoised.name[:-len(" denoised")]] if denoised is not None else None
    if denoised is None and not made:
        denoised = _only(layers, lambda lay: "denois" in lay.name.lower())
    if denoised is None:
        return None, None, _only(layers, lambda lay: _named(lay, _CLEAN_WORDS))
    shape = _shape(denoised)
    others = [lay for lay in layers if lay is not denoised and _shape(lay) == shape]
    clean = _only(others, lambda lay: _named(lay, _CLEAN_WORDS))
    if noisy is None:
        noisy = _only([lay for lay in others if lay is not clean],
                      lambda lay: _named(lay, _NOISY_WORDS))
    return noisy, denoised, clean


def _named(layer: Any, words: Sequence[str]) -> bool:
    """Whether a word of the layer's name is one of ``words`` (and the name is no denoised one)."""
    name = layer.name.lower()
    return "denois" not in name and any(word in words for word in re.split(r"[^a-z0-9]+", name))


def choice_problem(noisy: Any, denoised: Any, clean: Any) -> str | None:
    """Why this trio of layers cannot be analysed, in one line; ``None`` when it can.

    Parameters
    ----------
    noisy
        The noisy layer, or ``None`` (it is optional).
    denoised, clean
        The denoised and clean layers, or ``None`` when not chosen.
    """
    if denoised is None:
        return ("Choose the denoised image (the Denoise panel makes a '<noisy> denoised' "
                "layer).")
    if clean is None:
        return "Choose the clean image the denoised one is scored against."
    for other, role in ((clean, "clean"), (noisy, "noisy")):
        if other is None:
            continue
        if other is denoised:
            return f"'{denoised.name}' is chosen as both denoised and {role}: choose two images."
        if _shape(other) != _shape(denoised):
            return (f"Shapes differ: denoised '{denoised.name}' is {_shape(denoised)}, "
                    f"{role} '{other.name}' is {_shape(other)}.")
        if np.array_equal(np.asarray(other.data), np.asarray(denoised.data)):
            return (f"'{denoised.name}' and the {role} image '{other.name}' hold identical "
                    "pixels: the denoised image is not a denoiser's output.")
    return None


def layer_array(layer: Any, label: str) -> np.ndarray:
    """The 2D pixels of an image layer; ``ValueError`` naming the layer when it is not one."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    array = np.asarray(data)
    if array.ndim != 2 or getattr(layer, "rgb", False):
        raise ValueError(f"{label}: '{layer.name}' has shape {array.shape}; Inspect needs a 2D "
                         "grey-scale micrograph")
    return array
