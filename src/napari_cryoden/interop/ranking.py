"""Ranking the possible layouts of a raw weight folder on data (``auto``).

``auto`` cannot know how a foreign program ordered its buffers, but it can ask the data: every
distinct axis order is applied to *all* layers at once (a writer uses one layout for the whole
file, so 24 candidates rather than 24 to the power of the depth), each candidate model denoises a
validation set, and the candidates are ranked by MSE. The best is taken only if it beats the
runner-up by more than 1 % *and* consistently over the validation tiles (paired t >= 3);
otherwise the choice is refused rather than guessed. A kernel transpose (``h`` and ``w``
swapped) is invisible on data without a preferred direction, so on such data ``auto`` ends in
that refusal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..config.sections import ModelConfig
from ..errors import CryodenError
from ..models.nets import expected_shapes
from .layouts import LAYOUTS, all_axis_orders, from_layout, layout_name
from .raw import model_from_buffers

__all__ = ["AUTO_MARGIN", "AUTO_MIN_T", "Candidate", "Images", "LayoutAmbiguousError",
           "LayoutRanking", "choose_layout", "distinct_axis_orders", "rank_layouts",
           "score_model"]

AUTO_MARGIN = 0.01  # the best layout must beat the runner-up's MSE by more than this (relative)
AUTO_MIN_T = 3.0  # ... and do so consistently: paired t of the per-tile MSE differences
TILE = 32  # px; validation tiles for that paired test
Images = Sequence[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Candidate:
    """One axis order applied to every layer, scored on the validation images."""

    axes: str
    mse: float
    corr: float

    @property
    def name(self) -> str:
        """The axis order's readable name, e.g. ``"whio (fortran)"``."""
        return layout_name(self.axes)


@dataclass(frozen=True)
class LayoutRanking:
    """Candidates best first (lowest MSE), with the noisy input's score for comparison."""

    candidates: tuple[Candidate, ...]
    noisy_mse: float
    noisy_corr: float
    tile_wins: int = 0  # validation tiles on which the best beats the runner-up
    n_tiles: int = 0
    t_stat: float = math.inf  # paired t of the per-tile MSE differences (runner-up − best)

    @property
    def best(self) -> Candidate:
        """The candidate with the lowest MSE."""
        return self.candidates[0]

    @property
    def margin(self) -> float:
        """Relative MSE gap between the best two candidates (inf when there is one)."""
        if len(self.candidates) < 2:
            return math.inf
        best, second = self.candidates[0].mse, self.candidates[1].mse
        return (second - best) / best if best > 0 else (math.inf if second > best else 0.0)

    def table(self) -> str:
        """Format the ranking as a plain-text table."""
        lines = [f"{'rank':>4}  {'layout':<22} {'val MSE':>11} {'Pearson r':>10} {'vs best':>9}"]
        for rank, c in enumerate(self.candidates, start=1):
            gap = "best" if rank == 1 else _gap(c.mse, self.best.mse)
            lines.append(f"{rank:>4}  {c.name:<22} {c.mse:>11.6g} {c.corr:>10.4f} {gap:>9}")
        lines.append(f"{'':>4}  {'noisy input (identity)':<22} {self.noisy_mse:>11.6g} "
                     f"{self.noisy_corr:>10.4f}")
        if len(self.candidates) > 1:
            lines.append(f"best vs runner-up: better on {self.tile_wins} of {self.n_tiles} "
                         f"validation tiles of {TILE} px, paired t = {self.t_stat:.3g}")
        return "\n".join(lines)


def _gap(mse: float, best: float) -> str:
    return f"+{(mse - best) / best:.1%}" if best > 0 and math.isfinite(mse) else "n/a"


class LayoutAmbiguousError(CryodenError):
    """``auto`` found no clear winner; ``ranking`` holds the scores to show the user."""

    def __init__(self, message: str, ranking: LayoutRanking) -> None:
        super().__init__(message)
        self.ranking = ranking


def distinct_axis_orders(model: ModelConfig) -> list[str]:
    """List the axis orders that give different tensors for some layer of ``model``.

    Orders that only move a size-1 axis (e.g. the ``i`` of the first layer) are duplicates of
    one another on that layer; an order is dropped only if it duplicates an earlier one on every
    layer. Named layouts come first so that duplicates keep their names.
    """
    shapes = [s for name, s in expected_shapes(model).items() if name.endswith("weight")]
    named = list(dict.fromkeys(LAYOUTS.values()))
    seen: set[tuple[bytes, ...]] = set()
    orders = []
    for axes in named + [a for a in all_axis_orders() if a not in named]:
        key = tuple(from_layout(np.arange(int(np.prod(s))), s, axes).tobytes() for s in shapes)
        if key not in seen:
            seen.add(key)
            orders.append(axes)
    return orders


def score_model(model: torch.nn.Module | None, images: Images,
                normalization: str = "none") -> tuple[float, float]:
    """Score a model by the pooled MSE and Pearson r of its output on the images.

    Parameters
    ----------
    model
        The model to score; ``None`` scores the noisy input itself (the identity).
    images
        ``(noisy, clean)`` pairs of 2-D arrays.
    normalization
        The intensity normalisation the model was trained with (``meanstd``, ``percentile``,
        ``none``).

    Returns
    -------
    tuple of float
        ``(mse, r)`` against the clean images.
    """
    outputs = _outputs(model, images, normalization)
    p = np.concatenate([o.astype(np.float64).ravel() for o in outputs])
    t = np.concatenate([c.astype(np.float64).ravel() for _, c in images])
    mse = float(np.mean((p - t) ** 2)) if np.isfinite(p).all() else math.inf
    dp, dt = p - p.mean(), t - t.mean()
    denom = math.sqrt(float(dp @ dp) * float(dt @ dt))
    return mse, (float(dp @ dt) / denom if denom > 0 and math.isfinite(denom) else math.nan)


def _outputs(model: torch.nn.Module | None, images: Images,
             normalization: str) -> list[np.ndarray]:
    from ..inference.denoiser import denoise

    return [noisy if model is None else denoise(model, noisy, normalization=normalization)
            for noisy, _ in images]


def _tile_mse(model: torch.nn.Module, images: Images, normalization: str) -> np.ndarray:
    """MSE of each non-overlapping ``TILE`` px tile of every image (remainders dropped)."""
    rows = []
    for out, (_, clean) in zip(_outputs(model, images, normalization), images, strict=True):
        err = (out.astype(np.float64) - clean) ** 2
        size = min(TILE, *err.shape)
        ny, nx = err.shape[0] // size, err.shape[1] // size
        tiles = err[:ny * size, :nx * size].reshape(ny, size, nx, size)
        rows.append(tiles.mean(axis=(1, 3)).ravel())
    return np.concatenate(rows)


def _paired_tiles(best: torch.nn.Module, second: torch.nn.Module, images: Images,
                  normalization: str) -> tuple[int, int, float]:
    """Tiles won by ``best``, tile count, and the paired t of (second − best) tile MSEs."""
    diff = _tile_mse(second, images, normalization) - _tile_mse(best, images, normalization)
    mean = float(diff.mean())
    spread = float(diff.std(ddof=1)) if diff.size > 1 else 0.0
    t_stat = mean / (spread / math.sqrt(diff.size)) if spread > 0 else (
        math.inf if mean > 0 else 0.0)
    return int((diff > 0).sum()), int(diff.size), t_stat


def rank_layouts(buffers: dict[str, np.ndarray], model: ModelConfig, images: Images,
                 normalization: str = "none") -> LayoutRanking:
    """Score every distinct axis order (the same for all layers) and rank them by MSE.

    The best two are also compared tile by tile (:func:`choose_layout` needs both tests).

    Parameters
    ----------
    buffers
        Flat float32 buffers named like the model's tensors (as
        :func:`~napari_cryoden.interop.raw.read_raw_buffers` returns them).
    model
        The architecture the buffers are for.
    images
        ``(noisy, clean)`` validation pairs the candidates are scored on.
    normalization
        The intensity normalisation the weights were trained with.

    Returns
    -------
    LayoutRanking
        The candidates best first, the noisy input's score, and the tile-by-tile comparison.
    """
    scored = []
    for axes in distinct_axis_orders(model):
        mse, corr = score_model(model_from_buffers(buffers, model, axes), images, normalization)
        scored.append(Candidate(axes, mse, corr))
    scored.sort(key=lambda c: c.mse if math.isfinite(c.mse) else math.inf)
    noisy_mse, noisy_corr = score_model(None, images)
    paired = (0, 0, math.inf)
    if len(scored) > 1:
        best, second = (model_from_buffers(buffers, model, c.axes) for c in scored[:2])
        paired = _paired_tiles(best, second, images, normalization)
    return LayoutRanking(tuple(scored), noisy_mse, noisy_corr, *paired)


def choose_layout(ranking: LayoutRanking, margin: float = AUTO_MARGIN,
                  min_t: float = AUTO_MIN_T) -> str:
    """Return the best candidate's axes if it wins clearly and consistently.

    Parameters
    ----------
    ranking
        The result of :func:`rank_layouts`.
    margin
        Smallest relative MSE gap between the best two candidates.
    min_t
        Smallest paired t of the per-tile MSE differences over the validation tiles.

    Returns
    -------
    str
        The best candidate's axis string.

    Raises
    ------
    LayoutAmbiguousError
        The best two are within ``margin`` (relative MSE) of each other, or the best does not
        win consistently over the validation tiles (paired t below ``min_t``).
    """
    if ranking.margin > margin and ranking.t_stat >= min_t:
        return ranking.best.axes
    first, second = ranking.candidates[0], ranking.candidates[1]
    if ranking.margin <= margin:
        what = f"the best two candidates score within {margin:.0%}"
    else:
        what = (f"the best beats the runner-up by {ranking.margin:.1%} but not consistently "
                f"(on {ranking.tile_wins} of {ranking.n_tiles} validation tiles, paired t = "
                f"{ranking.t_stat:.2g} < {min_t:g})")
    why = ("they differ only by swapping kH and kW (a transposed kernel), which data without a "
           "preferred direction cannot tell apart; "
           if second.axes == first.axes.translate(str.maketrans("hw", "wh")) else "")
    listed = ", ".join(f"{c.name} {c.mse:.4g}" for c in ranking.candidates[:4])
    raise LayoutAmbiguousError(
        f"layout auto: {what} (MSE {listed}, …): {why}refusing to guess; pass --layout with "
        "the writer's layout", ranking)
