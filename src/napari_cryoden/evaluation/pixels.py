"""Streaming statistics of (prediction, target) pixel pairs over a whole dataset.

:class:`PairAccumulator` keeps float64 sums (of pred, target, their squares, their product and
the squared residual), fixed-bin histograms and a bounded random sample of pixel pairs; any
number of micrographs can be fed to it one at a time and :meth:`PairAccumulator.result` gives
MSE, PSNR, Pearson r, brightness, the least-squares fits and the histogram overlap, so memory
stays flat. :func:`compare` does the same for one pair of arrays. See docs/metrics.md.
"""

from __future__ import annotations

import math

import numpy as np

from .metrics import psnr

__all__ = ["PairAccumulator", "compare"]

_BLOCK = 1 << 20  # pixels converted to float64 at a time: bounds the temporaries to ~8 MB each
_SUMS = ("p", "t", "pp", "tt", "pt", "dd")


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
        """Return the random sample of pixel pairs, as ``(pred, target)`` float32 arrays."""
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
