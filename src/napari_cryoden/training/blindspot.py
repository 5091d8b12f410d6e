"""Noise2Void blind spots: mask a few pixels of each patch and hide them behind a neighbour.

Noise2Void (Krull, Buchholz & Jug, CVPR 2019) trains a denoiser on noisy images alone. Per patch
a few pixels are chosen, stratified (one at a random place in each cell of a regular grid), and
each one's input value is replaced by the value of a random *other* pixel of its neighbourhood;
the loss compares the prediction at the chosen pixels with their original, noisy values. A net
that cannot see a pixel's own noise can only predict it from its surroundings, i.e. predict the
signal, provided the noise is independent from pixel to pixel.

``replacement="median"`` is N2V2's (Höck et al., ECCV workshops 2022): the masked pixel takes the
median of its neighbourhood *without* itself, which removes the checkerboard artefacts that
copying one random neighbour teaches the net.

Everything runs on the batch's device with a seeded :class:`torch.Generator`.
"""

from __future__ import annotations

import math

import torch

__all__ = ["RADIUS", "REPLACEMENTS", "blind_spots", "masked_mse"]

RADIUS = 2
"""Neighbours are drawn from the (2·RADIUS + 1)² square around a masked pixel (less itself)."""

REPLACEMENTS = ("random", "median")
"""What a masked pixel shows: a random neighbour (Noise2Void) or their median (N2V2)."""


def blind_spots(x: torch.Tensor, fraction: float, generator: torch.Generator, *,
                radius: int = RADIUS,
                replacement: str = "random") -> tuple[torch.Tensor, torch.Tensor]:
    """Mask about ``fraction`` of the pixels of each ``(B, 1, H, W)`` patch.

    Parameters
    ----------
    x
        The noisy batch; it is not modified.
    fraction
        Pixels masked per patch: one in each cell of a grid of ``round(fraction**-0.5)``-px
        cells (the last row and column of cells may be smaller), at a random place in the cell.
    generator
        Random source on ``x``'s device: the same state gives the same masks.
    radius
        Replacement values come from a random pixel at most ``radius`` px away in y and x,
        never the masked pixel itself (mirrored at the patch edges).
    replacement
        ``"random"``: one random neighbour (Noise2Void); ``"median"``: the median of all
        neighbours in that square, the centre excluded (N2V2).

    Returns
    -------
    masked, mask
        ``masked`` is ``x`` with the masked pixels replaced; ``mask`` is a bool tensor of ``x``'s
        shape, True at the masked pixels.
    """
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"blind_spots needs a (B, 1, H, W) batch, got {tuple(x.shape)}")
    if not 0.0 < fraction <= 1.0 or radius < 1:
        raise ValueError(f"fraction must be in (0, 1] and radius >= 1, got {fraction}, {radius}")
    if replacement not in REPLACEMENTS:
        raise ValueError(f"replacement must be one of {REPLACEMENTS}, got {replacement!r}")
    b, _, h, w = x.shape
    ys = _stratified(b, h, w, fraction, generator, x.device, axis=0)
    xs = _stratified(b, h, w, fraction, generator, x.device, axis=1)
    dy, dx = _offsets(ys.shape, radius, generator, x.device)
    rows = torch.arange(b, device=x.device).view(b, 1, 1).expand_as(ys)
    if replacement == "median":
        neighbours = _neighbourhood_median(x, rows, ys, xs, radius)
    else:
        neighbours = x[:, 0][rows, _mirror(ys + dy, h), _mirror(xs + dx, w)]
    masked = x.clone()
    masked[:, 0][rows, ys, xs] = neighbours
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[:, 0][rows, ys, xs] = True
    return masked, mask


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the pixels where ``mask`` is True (0 when none is)."""
    weight = mask.to(pred.dtype)
    return ((pred - target) ** 2 * weight).sum() / weight.sum().clamp(min=1)


def _stratified(b: int, h: int, w: int, fraction: float, generator: torch.Generator,
                device: torch.device, *, axis: int) -> torch.Tensor:
    """One coordinate (``axis`` 0: y, 1: x) per grid cell, ``(b, cells_y, cells_x)`` long."""
    cell = max(1, round(fraction ** -0.5))
    cells = (math.ceil(h / cell), math.ceil(w / cell))
    length = (h, w)[axis]
    starts = torch.arange(cells[axis], device=device) * cell
    sizes = (length - starts).clamp(max=cell)  # the last cell may be cut by the edge
    shape = (1, cells[0], 1) if axis == 0 else (1, 1, cells[1])
    draw = torch.rand((b, *cells), generator=generator, device=device)
    within = (draw * sizes.view(shape)).long().minimum(sizes.view(shape) - 1)
    return starts.view(shape) + within


def _offsets(shape: torch.Size, radius: int, generator: torch.Generator,
             device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (dy, dx) in the square of ``radius``, never (0, 0)."""
    side = 2 * radius + 1
    k = torch.randint(0, side * side - 1, tuple(shape), generator=generator, device=device)
    k = k + (k >= side * side // 2).long()  # skip the centre
    return k // side - radius, k % side - radius


def _neighbourhood_median(x: torch.Tensor, rows: torch.Tensor, ys: torch.Tensor,
                          xs: torch.Tensor, radius: int) -> torch.Tensor:
    """Median of the (2·radius + 1)² square around each (ys, xs), the centre left out."""
    h, w = x.shape[-2:]
    span = torch.arange(-radius, radius + 1, device=x.device)
    dy, dx = (v.reshape(-1) for v in torch.meshgrid(span, span, indexing="ij"))
    keep = (dy != 0) | (dx != 0)
    dy, dx = dy[keep], dx[keep]
    near_y, near_x = _mirror(ys[..., None] + dy, h), _mirror(xs[..., None] + dx, w)
    values = x[:, 0][rows[..., None], near_y, near_x]
    return values.median(dim=-1).values


def _mirror(index: torch.Tensor, length: int) -> torch.Tensor:
    """Reflect indices off the edges (-1 → 1, length → length - 2), clamped for tiny sizes."""
    index = torch.where(index < 0, -index, index)
    index = torch.where(index >= length, 2 * (length - 1) - index, index)
    return index.clamp(0, length - 1)
