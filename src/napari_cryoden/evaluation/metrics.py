"""Image-quality metrics of a denoiser, streamed so that memory stays flat over a dataset.

:data:`METRICS` is the one table of the headline metrics (MSE, RMSE, PSNR, Pearson r, ...): each
:class:`Metric` says its key, label, format, whether higher is better, how to compute it on a
patch and how to pool it over a dataset. The report JSON, ``cryoden evaluate``'s summary, the
Inspect widget's table and its metric map all read it, so a new metric is one row here.
:class:`PairAccumulator` keeps float64 sums (of pred, target, their squares, their product and
the squared residual), fixed-bin histograms and a bounded random sample of pixel pairs; any
number of micrographs can be fed to it one at a time and :meth:`PairAccumulator.result` gives
MSE, PSNR, Pearson r, brightness, the least-squares fits and the histogram overlap.
:class:`ArtifactAccumulator` looks for spatial artifacts (dark rims, tile seams) in the residual.
:func:`best_gaussian` is the baseline every model must beat. See docs/metrics.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..data.patches import patch_starts

__all__ = [
    "METRICS",
    "Metric",
    "PatchPair",
    "nanmean",
    "PairAccumulator",
    "compare",
    "psnr",
    "patch_grid",
    "patch_metrics",
    "best_gaussian",
    "gaussian_baseline",
    "DEFAULT_SIGMAS",
]

_BLOCK = 1 << 20  # pixels converted to float64 at a time: bounds the temporaries to ~8 MB each
DEFAULT_SIGMAS = (0.0, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0, 5.6, 8.0, 11.3, 16.0, 22.6, 32.0)
_SUMS = ("p", "t", "pp", "tt", "pt", "dd")


def psnr(mse: float, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio ``10·log10(data_range² / mse)`` in dB (inf when mse is 0)."""
    return math.inf if mse <= 0 else 10.0 * math.log10(data_range**2 / mse)


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
)


class PairAccumulator:
    """Streaming statistics of (prediction, target) pixel pairs.

    Parameters
    ----------
    data_range
        Peak-to-peak range of the data, for PSNR (1.0 for micrographs in [0, 1]).
    bins
        Number of histogram bins.
    hist_range
        ``(low, high)`` of the histograms; by default the span of the first update's pred and
        target, widened by 10 % on each side. Later values outside it count in the end bins.
    sample_size
        Largest number of pixel pairs kept in the uniform random sample (for scatter plots).
    seed
        Seed of the sample's random generator.
    """

    def __init__(self, data_range: float = 1.0, bins: int = 256,
                 hist_range: tuple[float, float] | None = None, sample_size: int = 100_000,
                 seed: int = 0) -> None:
        if data_range <= 0:
            raise ValueError(f"data_range must be > 0, got {data_range}")
        self.data_range, self.bins = float(data_range), int(bins)
        self.hist_range = None if hist_range is None else (float(hist_range[0]),
                                                           float(hist_range[1]))
        self.n = 0
        self._shift: tuple[float, float] | None = None  # sums are of values minus these
        self._sums = dict.fromkeys(_SUMS, 0.0)
        self._lims = [math.inf, -math.inf, math.inf, -math.inf]  # pred min/max, target min/max
        self.hist_pred = np.zeros(self.bins, np.int64)
        self.hist_target = np.zeros(self.bins, np.int64)
        self._reservoir = _Reservoir(sample_size, seed)

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        """Add the pixel pairs of two arrays of equal shape (any number of dimensions)."""
        pred, target = np.asarray(pred), np.asarray(target)
        if pred.shape != target.shape:
            raise ValueError(f"pred shape {pred.shape} differs from target shape {target.shape}")
        if not (np.isfinite(pred).all() and np.isfinite(target).all()):
            raise ValueError("pred or target contains NaN or Inf values")
        if pred.size and self.hist_range is None:
            self.hist_range = _padded_range(pred, target)
        p_all, t_all = pred.reshape(-1), target.reshape(-1)
        for start in range(0, p_all.size, _BLOCK):
            self._add_block(p_all[start:start + _BLOCK].astype(np.float64),
                            t_all[start:start + _BLOCK].astype(np.float64))

    def _add_block(self, p: np.ndarray, t: np.ndarray) -> None:
        if self._shift is None:
            self._shift = (float(p.mean()), float(t.mean()))
        dp, dt, d = p - self._shift[0], t - self._shift[1], p - t
        s = self._sums
        s["p"] += float(dp.sum())
        s["t"] += float(dt.sum())
        s["pp"] += float(dp @ dp)
        s["tt"] += float(dt @ dt)
        s["pt"] += float(dp @ dt)
        s["dd"] += float(d @ d)
        self.n += p.size
        lo_p, hi_p, lo_t, hi_t = self._lims
        self._lims = [min(lo_p, p.min()), max(hi_p, p.max()),
                      min(lo_t, t.min()), max(hi_t, t.max())]
        self.hist_pred += self._bincount(p)
        self.hist_target += self._bincount(t)
        self._reservoir.update(p, t)

    def _bincount(self, x: np.ndarray) -> np.ndarray:
        low, high = self.hist_range  # type: ignore[misc]
        idx = np.clip((x - low) * (self.bins / (high - low)), 0, self.bins - 1).astype(np.intp)
        return np.bincount(idx, minlength=self.bins)

    @property
    def bin_edges(self) -> np.ndarray:
        """The ``bins + 1`` histogram bin edges."""
        low, high = self.hist_range or (0.0, self.data_range)
        return np.linspace(low, high, self.bins + 1)

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """The random sample of pixel pairs, as ``(pred, target)`` float32 arrays."""
        return self._reservoir.pred.copy(), self._reservoir.target.copy()

    def result(self) -> dict[str, float]:
        """All metrics of the pixels seen so far (see docs/metrics.md for each key)."""
        if self.n == 0:
            raise ValueError("no pixels accumulated")
        n, s, (sp, st) = self.n, self._sums, self._shift  # type: ignore[misc]
        mdp, mdt = s["p"] / n, s["t"] / n
        var_p, var_t = max(s["pp"] / n - mdp**2, 0.0), max(s["tt"] / n - mdt**2, 0.0)
        cov = s["pt"] / n - mdp * mdt
        mean_p, mean_t, mse = sp + mdp, st + mdt, s["dd"] / n
        slope = cov / var_t if var_t > 0 else math.nan
        calib = cov / var_p if var_p > 0 else math.nan
        h_p, h_t = self.hist_pred / self.hist_pred.sum(), self.hist_target / self.hist_target.sum()
        out = {
            "mse": mse, "rmse": math.sqrt(mse), "psnr": psnr(mse, self.data_range),
            "corr": cov / math.sqrt(var_p * var_t) if var_p * var_t > 0 else math.nan,
            "mean_pred": mean_p, "mean_target": mean_t, "brightness_diff": mean_p - mean_t,
            "std_pred": math.sqrt(var_p), "std_target": math.sqrt(var_t),
            "slope": slope, "intercept": mean_p - slope * mean_t,
            "calib_slope": calib, "calib_intercept": mean_t - calib * mean_p,
            "hist_overlap": float(np.minimum(h_p, h_t).sum()),
            "min_pred": self._lims[0], "max_pred": self._lims[1],
            "min_target": self._lims[2], "max_target": self._lims[3],
        }
        return {"n_pixels": n, **{k: float(v) for k, v in out.items()}}


def _padded_range(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    low = float(min(np.min(pred), np.min(target)))
    high = float(max(np.max(pred), np.max(target)))
    pad = 0.1 * (high - low) or 0.5
    return low - pad, high + pad


class _Reservoir:
    """A uniform random sample of at most ``size`` pairs of a stream (bottom-k random keys).

    Every pixel gets a uniform random key and the ``size`` smallest keys are kept. Only the
    keys that can enter are drawn: their number is binomial, the k-th smallest of them is a
    Beta order statistic, so a block costs O(size), not O(block), random numbers.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.rng = int(size), np.random.default_rng(seed)
        self.keys = np.empty(0)
        self.pred = np.empty(0, np.float32)
        self.target = np.empty(0, np.float32)

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        n, full = pred.size, self.keys.size >= self.size
        threshold = float(self.keys.max()) if full and self.size else 1.0
        m = int(self.rng.binomial(n, threshold)) if full else n  # pixels whose key < threshold
        k = min(m, self.size)
        if k == 0:
            return
        if k < m:  # keep only the k smallest of m uniform keys on (0, threshold)
            kth = threshold * self.rng.beta(k, m - k + 1)
            keys = np.append(self.rng.uniform(0.0, kth, k - 1), kth)
        else:
            keys = self.rng.uniform(0.0, threshold, k)
        idx = self.rng.choice(n, k, replace=False)
        keys = np.concatenate([self.keys, keys])
        keep = np.argsort(keys, kind="stable")[: self.size]
        self.keys = keys[keep]
        self.pred = np.concatenate([self.pred, pred[idx].astype(np.float32)])[keep]
        self.target = np.concatenate([self.target, target[idx].astype(np.float32)])[keep]


def compare(pred: np.ndarray, target: np.ndarray, data_range: float = 1.0, *,
            hist_range: tuple[float, float] | None = None) -> dict[str, float]:
    """All :class:`PairAccumulator` metrics of one pair of arrays, in one call."""
    acc = PairAccumulator(data_range, hist_range=hist_range, sample_size=0)
    acc.update(pred, target)
    return acc.result()


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


GAUSSIAN_SEARCH_CROP = 1024  # baselines search the Gaussian sigma on a central crop this big


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` × ``size`` crop of a 2D image (the whole image when smaller)."""
    h, w = image.shape
    y, x = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return image[y:y + size, x:x + size]


def gaussian_baseline(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """``noisy`` filtered by a Gaussian of ``sigma`` px in y and x (each slice of a stack)."""
    noisy = np.asarray(noisy, dtype=np.float32)
    if sigma <= 0:
        return noisy
    sigmas = (0.0,) * (noisy.ndim - 2) + (sigma, sigma)
    return ndimage.gaussian_filter(noisy, sigmas)


def best_gaussian(noisy: np.ndarray, clean: np.ndarray, sigmas: Sequence[float] | None = None,
                  data_range: float = 1.0) -> tuple[float, dict[str, float]]:
    """The Gaussian filter width that brings ``noisy`` closest (MSE) to ``clean``.

    Parameters
    ----------
    noisy, clean
        A 2D pair (or stacks, filtered slice by slice).
    sigmas
        Candidate widths in px; 0 means no filtering. By default :data:`DEFAULT_SIGMAS`, a
        geometric grid from 0.5 to 32 px, refined by a finer grid around its best point.
    data_range
        For the PSNR of the returned metrics.

    Returns
    -------
    sigma : float
        The best width.
    metrics : dict
        :func:`compare` of the filtered image with ``clean``.
    """
    clean = np.asarray(clean, dtype=np.float32)

    def mse(sigma: float) -> float:
        d = gaussian_baseline(noisy, sigma) - clean
        return float(np.mean(d.astype(np.float64) ** 2))

    grid = sorted({float(s) for s in (DEFAULT_SIGMAS if sigmas is None else sigmas)})
    scores = [mse(s) for s in grid]
    i = int(np.argmin(scores))
    if sigmas is None:  # refine between the neighbours of the coarse optimum
        fine = np.linspace(grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)], 9)[1:-1]
        grid, scores = grid + list(fine), scores + [mse(float(s)) for s in fine]
        i = int(np.argmin(scores))
    best = grid[i]
    return best, compare(gaussian_baseline(noisy, best), clean, data_range)
