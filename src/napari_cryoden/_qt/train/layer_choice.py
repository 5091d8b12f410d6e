"""Which Image layers the Train widget may choose by itself, and which choices it refuses.

The widget guesses only from unambiguous evidence, otherwise it leaves a choice empty for the
user to make:

- even/odd (Noise2Noise): layer names that end like MotionCor2's half sums (``X_EVN``/``X_ODD``,
  ``X_even``/``X_odd``, the rule of :func:`~napari_cryoden.data.pairs.split_half`), the two
  halves of the SAME micrograph X, of one shape, and only one such micrograph open;
- noisy/clean: exactly one same-shaped pair of a layer named "noisy" and one named "clean" (or,
  among several, exactly one whose names differ only in that word);
- noisy alone (Noise2Void): the only Image layer, or the only one named "noisy".

:func:`pair_problem` says, in one line, why a chosen pair cannot train (nothing chosen, the same
layer twice, shapes that differ, halves of different micrographs); the widget shows it under the
data rows and keeps Start disabled.
"""

from __future__ import annotations

from typing import Any

from napari_cryoden.data.pairs import split_half

__all__ = ["guess_pair", "half_pairs", "halves_of", "pair_problem", "partner"]

ROLES = {"n2c": ("noisy", "clean"), "n2n": ("even", "odd"), "n2v": ("noisy", None)}
"""What the two data choices hold in each training mode (None: no second choice)."""


def shape(layer: Any) -> tuple[int, ...]:
    """The shape of a layer's data (its full resolution for a multiscale layer)."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return tuple(data.shape)


def guess_pair(layers: list[Any], mode: str) -> tuple[Any, Any]:
    """The ``(first, second)`` layers the evidence picks for ``mode``; None where it does not."""
    if mode == "n2v":
        named = [layer for layer in layers if "noisy" in layer.name.lower()]
        only = layers if len(layers) == 1 else named
        return (only[0] if len(only) == 1 else None), None
    pairs = half_pairs(layers) if mode == "n2n" else _noisy_clean_pairs(layers)
    return pairs[0] if len(pairs) == 1 else (None, None)


def partner(layer: Any, layers: list[Any], mode: str) -> Any:
    """The one layer that completes ``layer`` (the first choice) by name and shape, or None."""
    pairs = half_pairs(layers) if mode == "n2n" else _noisy_clean_pairs(layers)
    found = [second for first, second in pairs if first is layer]
    return found[0] if len(found) == 1 else None


def halves_of(layer: Any, layers: list[Any]) -> tuple[Any, Any]:
    """The ``(even, odd)`` layers named as the halves of ``layer`` (``X_EVN``/``X_ODD`` of an
    image ``X``) and of its shape; ``(None, None)`` unless the names say so unambiguously."""
    key = layer.name.lower()
    found = [(even, odd) for even, odd in half_pairs(layers)
             if _key(even.name) == key and shape(even) == shape(layer)]
    return found[0] if len(found) == 1 else (None, None)


def pair_problem(first: Any, second: Any, mode: str) -> str | None:
    """Why ``first``/``second`` cannot be trained on in ``mode``, in one line; None if they can."""
    one, two = ROLES[mode]
    if two is None:
        return None if first is not None else f"Choose the {one} layer."
    if first is None or second is None:
        return (f"Choose the {one} and the {two} layer: the layer names do not say which "
                "ones belong together.")
    if first is second:
        return (f"'{first.name}' is chosen as both the {one} and the {two} layer: choose two "
                "different layers.")
    if shape(first) != shape(second):
        return (f"'{first.name}' {shape(first)} and '{second.name}' {shape(second)} differ "
                "in shape.")
    halves = split_half(first.name), split_half(second.name)
    if mode == "n2n" and None not in halves and _key(first.name) != _key(second.name):
        return (f"'{first.name}' and '{second.name}' are halves of different micrographs: "
                "choose the even and odd sums of one micrograph.")
    return None


def _key(name: str) -> str | None:
    half = split_half(name)
    return None if half is None else half[0].lower()


def half_pairs(layers: list[Any]) -> list[tuple[Any, Any]]:
    """``(even, odd)`` of every micrograph with exactly one layer of each half, one shape.

    Inspect's even/odd choices use it too (:mod:`napari_cryoden._qt.inspect.halves`).
    """
    groups: dict[str, dict[str, list[Any]]] = {}
    for layer in layers:
        half = split_half(layer.name)
        if half is not None:
            groups.setdefault(half[0].lower(), {"even": [], "odd": []})[half[1]].append(layer)
    return [(halves["even"][0], halves["odd"][0]) for halves in groups.values()
            if len(halves["even"]) == len(halves["odd"]) == 1
            and shape(halves["even"][0]) == shape(halves["odd"][0])]


def _noisy_clean_pairs(layers: list[Any]) -> list[tuple[Any, Any]]:
    """Same-shaped (noisy, clean) pairs by name; among several, those named alike."""
    noisy = [layer for layer in layers if _word(layer.name) == "noisy"]
    clean = [layer for layer in layers if _word(layer.name) == "clean"]
    pairs = [(n, c) for n in noisy for c in clean if shape(n) == shape(c)]
    if len(pairs) <= 1:
        return pairs
    return [(n, c) for n, c in pairs
            if n.name.lower().replace("noisy", "clean") == c.name.lower()]


def _word(name: str) -> str | None:
    """"noisy" or "clean" when the name holds exactly one of the two words."""
    words = [word for word in ("noisy", "clean") if word in name.lower()]
    return words[0] if len(words) == 1 else None
