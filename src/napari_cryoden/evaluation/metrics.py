"""The headline image-quality metrics of a denoiser, and the per-patch scores.

:data:`METRICS` is the one table of the headline metrics (MSE, RMSE, PSNR, Pearson r, ...): each
:class:`Metric` says its key, label, format, whether higher is better, how to compute it on a
patch and how to pool it over a dataset. The report JSON, ``cryoden evaluate``'s summary, the
Inspect widget's table and its metric map all read it, so a new metric is one row here (plus its
test). :func:`patch_metrics` scores every patch of :func:`patch_grid`. Pixel statistics pooled
over a dataset stream through :class:`~napari_cryoden.evaluation.pixels.PairAccumulator`.
See docs/metrics.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..data.patches import patch_starts

__all__ = ["METRICS", "Metric", "PatchPair", "nanmean", "psnr", "ssim", "patch_grid",
           "patch_metrics"]

SSIM_SIGMA, SSIM_K1, SSIM_K2 = 1.5, 0.01, 0.03  # Wang et al. (2004)
_SSIM_RADIUS = 5  # the Gaussian window is 11 x 11 px, as Wang et al.'s


def psnr(mse: float, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio ``10·log10(data_range² / mse)`` in dB (inf when mse is 0)."""
    return math.inf if mse <= 0 else 10.0 * math.log10(data_range**2 / mse)


def ssim(pred: np.ndarray, target: np.ndarray, data_range: float = 1.0) -> float:
    """Return the structural similarity (SSIM, Wang et al. 2004) of a 2D pair.

    Local means, variances and covariance are weighted by an 11 × 11 Gaussian window of
    sigma 1.5 px (weights summing to 1); the SSIM map ``(2 μp μt + C1)(2 σpt + C2) /
    ((μp² + μt² + C1)(σp² + σt² + C2))``, with ``C1 = (0.01 L)²`` and ``C2 = (0.03 L)²``, is
    averaged over the pixels whose window lies inside the image (all pixels when none does).

    Parameters
    ----------
    pred, target
        Two 2D arrays of one shape.
    data_range
        ``L``: the peak-to-peak range of the clean data, as PSNR uses (1.0 for [0, 1]).

    Returns
    -------
    float
        1 for identical images, smaller the less alike they are (down to -1).
    """
    p, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    _check_2d_pair(p, t)

    def mean(x: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(x, SSIM_SIGMA, mode="reflect",
                                       truncate=_SSIM_RADIUS / SSIM_SIGMA)

    mu_p, mu_t = mean(p), mean(t)
    var_p, var_t, cov = (mean(p * p) - mu_p**2, mean(t * t) - mu_t**2,
                         mean(p * t) - mu_p * mu_t)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)
                / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)))
    r = _SSIM_RADIUS
    inside = ssim_map[r:-r, r:-r] if min(ssim_map.shape) > 2 * r else ssim_map
    return float(inside.mean())


class PatchPair:
    """One (prediction, target) patch in float64, with its residual and MSE computed once."""

    def __init__(self, pred: np.ndarray, target: np.ndarray, data_range: float) -> None:
        self.pred, self.target = pred.astype(np.float64), target.astype(np.float64)
        self.data_range = float(data_range)
        self.residual = self.pred - self.target
        self.mse = float(np.mean(self.residual * self.residual))


PoolFn = Callable[[Mapping[str, float], Sequence[float]], float]


@dataclass(frozen=True)
class Metric:
    """One headline metric: how it is named and shown, computed on a patch and pooled.

    Attributes
    ----------
    key
        Its key in patch rows and in the report JSON.
    label, name
        Short label (table column, metric map) and longer name (text summaries).
    fmt
        Format of one value, e.g. ``"{:.4f}"``.
    higher_is_better
        Whether a larger value is a better denoiser.
    description
        One line for tooltips.
    on_patch
        The value on one :class:`PatchPair`.
    pooled
        The value over a dataset, from the :meth:`PairAccumulator.result` of all its pixels and
        the per-patch values.
    """

    key: str
    label: str
    name: str
    fmt: str
    higher_is_better: bool
    description: str
    on_patch: Callable[[PatchPair], float]
    pooled: PoolFn

    def format(self, value: float | None) -> str:
        """Return ``value`` formatted with :attr:`fmt` (``"-"`` for ``None``)."""
        return "-" if value is None else self.fmt.format(value)


def nanmean(values: Sequence[float]) -> float:
    """Return the mean of the values that are not NaN (NaN when none is; flat patches have no r).

    Parameters
    ----------
    values
        Per-patch values.

    Returns
    -------
    float
        Their mean, NaN skipped.
    """
    array = np.asarray(values, dtype=np.float64)
    array = array[~np.isnan(array)]
    return float(array.mean()) if array.size else math.nan


def _pixels(key: str) -> PoolFn:
    """Pooled over all pixels: the :class:`PairAccumulator` result's own ``key``."""
    return lambda pixels, _values: float(pixels[key])


def _patch_mean(_pixels: Mapping[str, float], values: Sequence[float]) -> float:
    """Pooled as the mean of the per-patch values (for metrics of local structure)."""
    return nanmean(values)


METRICS: tuple[Metric, ...] = (
    Metric("mse", "MSE", "MSE", "{:.2e}", False, "mean squared error",
           lambda pair: pair.mse, _pixels("mse")),
    Metric("rmse", "RMSE", "RMSE", "{:.4f}", False, "root mean squared error",
           lambda pair: math.sqrt(pair.mse), _pixels("rmse")),
    Metric("psnr", "PSNR", "PSNR (dB)", "{:.2f}", True,
           "peak signal-to-noise ratio (dB), 10·log10(data_range² / MSE)",
           lambda pair: psnr(pair.mse, pair.data_range), _pixels("psnr")),
    Metric("corr", "r", "Pearson r", "{:.4f}", True, "Pearson correlation",
           lambda pair: _pearson(pair.pred, pair.target), _pixels("corr")),
    Metric("ssim", "SSIM", "SSIM", "{:.4f}", True,
           "structural similarity (Wang et al. 2004; Gaussian window, sigma 1.5 px)",
           lambda pair: ssim(pair.pred, pair.target, pair.data_range), _patch_mean),
)


def patch_grid(shape: Sequence[int], patch_size: int) -> list[tuple[int, int]]:
    """Top-left ``(y, x)`` of square patches tiling the last two axes of ``shape``.

    Patches step by ``patch_size``; the last row and column are aligned to the far edge (so
    they may overlap their neighbour); an axis shorter than ``patch_size`` gives one patch.
    """
    if patch_size < 1:
        raise ValueError(f"patch_size must be >= 1, got {patch_size}")
    ys, xs = (_starts(int(n), patch_size) for n in shape[-2:])
    return [(y, x) for y in ys for x in xs]


def _starts(length: int, size: int) -> list[int]:
    return [0] if length <= size else patch_starts(length, size)


def patch_metrics(pred: np.ndarray, target: np.ndarray, patch_size: int,
                  data_range: float = 1.0) -> list[dict[str, float]]:
    """Metrics of every patch of :func:`patch_grid` for a 2D pair.

    Returns
    -------
    list of dict
        One per patch: ``y``, ``x``, every :data:`METRICS` key (``corr`` is NaN on a flat
        patch) and ``bias`` (mean of pred − target).
    """
    _check_2d_pair(pred, target)
    rows = []
    for y, x in patch_grid(pred.shape, patch_size):
        pair = PatchPair(pred[y:y + patch_size, x:x + patch_size],
                         target[y:y + patch_size, x:x + patch_size], data_range)
        rows.append({"y": y, "x": x, **{m.key: m.on_patch(pair) for m in METRICS},
                     "bias": float(pair.residual.mean())})
    return rows


def _check_2d_pair(pred: np.ndarray, target: np.ndarray) -> None:
    if pred.shape != target.shape or pred.ndim != 2:
        raise ValueError(f"need two 2D arrays of one shape, got {pred.shape} and {target.shape}")


def _pearson(p: np.ndarray, t: np.ndarray) -> float:
    dp, dt = p - p.mean(), t - t.mean()
    denom = math.sqrt(float(np.sum(dp * dp)) * float(np.sum(dt * dt)))
    return float(np.sum(dp * dt)) / denom if denom > 0 else math.nan
