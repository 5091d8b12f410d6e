"""Denoising a box of a micrograph so that its pixels equal the same crop of a whole-image run.

A convolutional net's output pixel depends only on input pixels within its receptive radius, so a
box read with a margin of that radius, normalised with the statistics of the *whole* image and
zero-padded only where the image itself ends, gives exactly the pixels of a whole-image pass. The
Denoise widget uses it for a Shapes rectangle or the field of view; nothing here knows of Qt or
napari, and torch is imported only when a region is denoised (:class:`Box` is light).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.normalize import Normalizer, fit_normalizer

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["Box", "denoise_region"]


@dataclass(frozen=True)
class Box:
    """Pixels ``[y0, y1) × [x0, x1)`` of an image, in its data coordinates."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def shape(self) -> tuple[int, int]:
        """The box's (height, width) in pixels."""
        return (self.y1 - self.y0, self.x1 - self.x0)

    @property
    def slices(self) -> tuple[slice, slice]:
        """The box as ``(rows, columns)`` slices of the image."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def grown(self, margin: int, shape: tuple[int, ...]) -> Box:
        """Return the box with ``margin`` pixels more on each side, clipped to an image.

        ``shape`` is the image's (its last two axes are the box's).
        """
        ny, nx = shape[-2:]
        return Box(max(self.y0 - margin, 0), min(self.y1 + margin, ny),
                   max(self.x0 - margin, 0), min(self.x1 + margin, nx))

    def within(self, outer: Box) -> tuple[slice, slice]:
        """Return where the box's pixels lie in an array of ``outer``'s (a box around it)."""
        return (slice(self.y0 - outer.y0, self.y1 - outer.y0),
                slice(self.x0 - outer.x0, self.x1 - outer.x0))


def denoise_region(model: nn.Module, image: Any, box: Box, *, normalization: str,
                   device: str | torch.device = "cpu",
                   progress: Callable[[int, int], None] | None = None,
                   name: str | None = None,
                   normalizer: Normalizer | None = None) -> np.ndarray:
    """Denoise the pixels ``box`` of a 2D ``image`` exactly as a whole-image run would.

    The normaliser is fitted on the whole image; the box is read with a margin of the model's
    receptive radius (the image border, where there is no margin, is zero-padded as in the
    whole-image pass).

    Parameters
    ----------
    model
        The denoiser (as for :func:`~napari_cryoden.inference.denoiser.denoise`).
    image
        A 2D micrograph (any real dtype, e.g. a memory-mapped MRC or a napari layer's data).
    box
        The pixels to denoise, inside ``image``.
    normalization
        ``none``, ``meanstd`` or ``percentile``: fitted on the whole ``image``.
    device
        Where the model runs; a ``torch.device`` is used as given.
    progress
        Called as ``progress(done_tiles, total_tiles)`` after each batch of tiles.
    name
        The micrograph's name, for error messages.
    normalizer
        ``fit_normalizer(image, normalization)``, fitted once by a caller that denoises several
        boxes of the same image; None: fitted here.

    Returns
    -------
    numpy.ndarray
        float32 array of ``box.shape``: the same pixels as ``denoise(model, image)[box]``.
    """
    from .denoiser import denoise, receptive_radius  # torch: only when a region is denoised

    if normalizer is None:
        normalizer = fit_normalizer(np.asarray(image), normalization, name)
    outer = box.grown(receptive_radius(model), np.shape(image))
    crop = normalizer.apply(np.asarray(image[outer.slices], dtype=np.float32))
    out = denoise(model, crop, normalization="none", device=device, progress=progress, name=name)
    inner = out[box.within(outer)]
    return np.asarray(normalizer.invert(inner), dtype=np.float32)
