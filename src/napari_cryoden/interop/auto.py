"""Importing raw weight folders, and ranking their possible layouts on data (``auto``).

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
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config.sections import Config, ConfigError, ModelConfig
from ..errors import CryodenError, InputError, WeightFileError
from ..evaluation.guards import output_warnings
from ..models.nets import expected_shapes
from .raw import (
    LAYOUTS,
    RawNames,
    all_axis_orders,
    from_layout,
    layout_name,
    model_from_buffers,
    read_raw_buffers,
    read_sidecar,
    resolve_layout,
)

__all__ = ["AUTO_MARGIN", "Candidate", "LayoutRanking", "LayoutAmbiguousError", "ImportResult",
           "AUTO_MIN_T", "distinct_axis_orders", "load_validation", "score_model", "rank_layouts",
           "choose_layout", "import_config", "import_raw", "import_raw_folder"]

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
        return self.candidates[0]

    @property
    def margin(self) -> float:
        """Relative MSE gap between the best two candidates (inf when there is one)."""
        if len(self.candidates) < 2:
            return math.inf
        best, second = self.candidates[0].mse, self.candidates[1].mse
        return (second - best) / best if best > 0 else (math.inf if second > best else 0.0)

    def table(self) -> str:
        """The ranking as a plain-text table."""
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
    """The axis orders that give different tensors for some layer of ``model``.

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


def load_validation(noisy_dir: str | os.PathLike[str], clean_dir: str | os.PathLike[str],
                    max_images: int = 4, crop: int = 512) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to ``max_images`` (noisy, clean) pairs, first slice, central ``crop`` px square."""
    from ..data.pairs import find_pairs
    from ..io.images import read_image

    images = []
    for noisy_path, clean_path in find_pairs(noisy_dir, clean_dir)[:max_images]:
        noisy, clean = (_central(read_image(p)[0], crop) for p in (noisy_path, clean_path))
        if noisy.shape != clean.shape:
            raise InputError(f"{noisy_path}: shape {noisy.shape} differs from {clean_path}")
        images.append((noisy, clean))
    return images


def _central(image: np.ndarray, size: int) -> np.ndarray:
    image = image[0] if image.ndim == 3 else image
    y, x = (max((n - size) // 2, 0) for n in image.shape)
    return np.array(image[y:y + size, x:x + size], np.float32)


def score_model(model: torch.nn.Module | None, images: Images,
                normalization: str = "none") -> tuple[float, float]:
    """Pooled MSE and Pearson r of the model's output on the images; ``None`` scores the
    noisy input itself (the identity)."""
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
    """Score every distinct axis order (the same for all layers) and rank them by MSE; the
    best two are also compared tile by tile (:func:`choose_layout` needs both tests)."""
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
    """The best candidate's axes, or :class:`LayoutAmbiguousError` when the best two are
    within ``margin`` (relative MSE) of each other, or the best does not win consistently
    over the validation tiles (paired t below ``min_t``)."""
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


@dataclass
class ImportResult:
    """What ``import_raw`` did: the file written, the layout used and the validation scores."""

    path: Path
    axes: str
    ranking: LayoutRanking | None = None
    mse: float | None = None
    corr: float | None = None
    noisy_mse: float | None = None
    noisy_corr: float | None = None
    warnings: list[str] = field(default_factory=list)


def import_raw(folder: str | os.PathLike[str], out: str | os.PathLike[str], *,
               layout: str | None = None, model: ModelConfig | None = None,
               normalization: str | None = None, names: RawNames | None = None,
               validation: tuple[Any, Any] | None = None, max_images: int = 4,
               crop: int = 512) -> ImportResult:
    """Read a folder of raw files into a ``.safetensors`` weight file.

    Parameters
    ----------
    folder, out
        The raw folder and the weight file to write.
    layout
        A layout name, an axis string, or ``"auto"`` (needs ``validation``). Default: the
        folder's ``cryoden_raw.json``, else ``oihw``.
    model, normalization, names
        Architecture, intensity normalisation the weights were trained with, and file name
        patterns. Defaults: the folder's ``cryoden_raw.json``, else the seed's net, ``"none"``
        (the Fortran trainer used raw values) and ``conv{k}_weights.bin``/``conv{k}_bias.bin``.
        validation ``(noisy_dir, clean_dir)``: scores the result (and ranks candidates for
        ``auto``) on up
        to ``max_images`` pairs, central ``crop`` px; scramble warnings are returned.

    Raises
    ------
    WeightFileError, InputError, LayoutAmbiguousError
    """
    from ..models.checkpoint import save_checkpoint

    sidecar = read_sidecar(folder) or {}
    config = import_config(folder, sidecar, model, normalization)
    names = names or _sidecar_names(sidecar)
    layout = layout or sidecar.get("layout") or "oihw"
    buffers = read_raw_buffers(folder, config.model, names)
    images = load_validation(*validation, max_images, crop) if validation else None
    norm = config.data.normalization
    if layout == "auto":
        if images is None:
            raise InputError("layout auto needs a validation pair (--validate-noisy DIR "
                             "--validate-clean DIR): it ranks the axis orders by how well each "
                             "denoises them, and without data any choice would be a guess")
        ranking = rank_layouts(buffers, config.model, images, norm)
        result = ImportResult(Path(out), choose_layout(ranking), ranking)
    else:
        result = ImportResult(Path(out), resolve_layout(layout))
    net = model_from_buffers(buffers, config.model, result.axes)
    if images is not None:
        result.mse, result.corr = score_model(net, images, norm)
        result.noisy_mse, result.noisy_corr = score_model(None, images)
        result.warnings = output_warnings(result.corr, result.mse, result.noisy_mse,
                                          result.noisy_corr)
    source = {"raw_dir": str(folder), "layout": layout, "axes": result.axes,
              "validation": None if images is None else {
                  "mse": result.mse, "corr": result.corr, "noisy_mse": result.noisy_mse,
                  "noisy_corr": result.noisy_corr, "n_images": len(images),
                  "warnings": result.warnings}}
    save_checkpoint(out, net, config, source=source)
    return result


def import_raw_folder(folder: str | os.PathLike[str], layout: str, out: str | os.PathLike[str],
                      pair: tuple[np.ndarray, np.ndarray] | None = None) -> str:
    """Write a folder of raw weight files as the weight file ``out``; return the axes used.

    What *Open raw weight folder…* of the Denoise widget runs (in a worker).

    Parameters
    ----------
    folder, out
        The raw folder and the weight file to write.
    layout
        A layout name, an axis string, or ``"auto"``: rank the axis orders on ``pair``.
    pair
        A (noisy, clean) pair of 2D images, needed for ``"auto"``.

    Returns
    -------
    str
        The axis string the folder was read in.

    Raises
    ------
    InputError
        ``"auto"`` without a pair.
    LayoutAmbiguousError
        ``"auto"`` found no clear winner.
    """
    if layout == "auto":
        if pair is None:
            raise InputError("layout auto needs a noisy/clean pair to rank the layouts")
        sidecar = read_sidecar(folder) or {}
        config = import_config(folder, sidecar)
        buffers = read_raw_buffers(folder, config.model, _sidecar_names(sidecar))
        images = [(np.asarray(pair[0], np.float32), np.asarray(pair[1], np.float32))]
        layout = choose_layout(rank_layouts(buffers, config.model, images,
                                            config.data.normalization))
    return import_raw(folder, out, layout=layout).axes


def import_config(folder: str | os.PathLike[str], sidecar: dict[str, Any],
                  model: ModelConfig | None = None, normalization: str | None = None) -> Config:
    """The config a raw folder's weights are imported with.

    Parameters
    ----------
    folder
        The raw folder (named in errors).
    sidecar
        Its ``cryoden_raw.json`` (:func:`~napari_cryoden.interop.raw.read_sidecar`), or ``{}``.
    model, normalization
        Given explicitly (flags); default: the sidecar's, else the seed's net and ``"none"``.

    Returns
    -------
    Config
        The architecture and the intensity normalisation of the weights.

    Raises
    ------
    WeightFileError
        The sidecar's model does not make a valid config.
    """
    try:
        model_dict = dict(sidecar.get("model", {})) if model is None else asdict(model)
        norm = normalization or sidecar.get("normalization") or "none"
        return Config.from_dict({"model": model_dict, "data": {"normalization": norm}})
    except ConfigError as exc:
        raise WeightFileError(f"{folder}: {exc}") from None


def _sidecar_names(sidecar: dict[str, Any]) -> RawNames:
    """The file name patterns of a sidecar, else the Fortran trainer's."""
    return RawNames(sidecar.get("weights_pattern", RawNames.weights),
                    sidecar.get("bias_pattern", RawNames.bias))
