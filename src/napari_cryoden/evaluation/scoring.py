"""One scorer for a denoiser's output: the model, the noisy input and two Gaussian filters.

:class:`Scorer` is fed one micrograph (or stack) at a time and scores, on exactly the same pixels,
the model's output and, when the noisy input is given, the baselines: the noisy input itself,
the **fitted Gaussian** (a width chosen on other data than the scored micrograph: given by the
caller, per micrograph or once) and the **oracle Gaussian** (the width best on each micrograph's
own clean target: an upper bound no user can reach, labelled as such). Each is scored per
micrograph (the headline: every metric on the whole micrograph, then averaged over
micrographs, so it does not depend on a patch size), per patch, and pooled over all pixels
(streaming accumulators, so memory stays flat). :meth:`Scorer.result` returns
:class:`~napari_cryoden.evaluation.scores.Scores`, frozen dataclasses whose ``to_json()`` is
the JSON of ``cryoden evaluate``'s report. Both ``cryoden evaluate`` (:mod:`.report`) and the
Inspect widget (:mod:`.inspection`) use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import InputError
from .artifacts import ArtifactAccumulator
from .baselines import centre_crop, gaussian_baseline, gaussian_curve, width_best_on
from .metrics import METRICS, nanmean, patch_metrics, psnr
from .pixels import PairAccumulator
from .scores import TARGET_NOTES, ChecklistInput, GaussianFit, PatchScore, PredictionScore, Scores

__all__ = ["Scorer", "Scores", "PredictionScore", "PatchScore", "ChecklistInput", "GaussianFit",
           "TARGET_NOTES"]

_HIST_CROP = 2048  # the histogram range is fixed on the first micrograph's central crop this big


class Scorer:
    """Streaming scores of a denoiser and its baselines, fed one micrograph at a time.

    Parameters
    ----------
    patch_size
        Edge of the square patches of the per-patch metrics (last patch aligned to the edge).
    data_range
        Peak-to-peak range of the data, for PSNR (1.0 for micrographs in [0, 1]).
    gaussian
        Where the fitted Gaussian's width comes from, and the width when it is one for all
        micrographs; ``None``: no fitted Gaussian unless :meth:`add` is given a width.
    """

    def __init__(self, patch_size: int, data_range: float = 1.0,
                 gaussian: GaussianFit | None = None) -> None:
        self.patch_size, self.data_range = int(patch_size), float(data_range)
        self.gaussian = gaussian
        self.accumulators: dict[str, PairAccumulator] = {}
        self.artifacts = ArtifactAccumulator()
        self.fitted_sigmas: list[float] = []
        self.oracle_sigmas: list[float] = []
        self.n_micrographs = 0
        self._rows: dict[str, list[dict[str, float]]] = {}
        self._images: dict[str, list[dict[str, float]]] = {}
        self._where: list[tuple[str | None, int]] = []
        self._image_where: list[tuple[str | None, int]] = []

    def add(self, denoised: np.ndarray, clean: np.ndarray, noisy: np.ndarray | None = None, *,
            file: str | None = None, sigma: float | None = None,
            curve: np.ndarray | None = None) -> None:
        """Score one micrograph, or each slice of a ``(z, y, x)`` stack.

        Parameters
        ----------
        denoised, clean
            The model's output and its target, of one shape.
        noisy
            The model's input: adds the noisy and Gaussian baselines. Give it for every
            micrograph or for none.
        file
            The micrograph's file name, kept in its patch and micrograph rows.
        sigma
            The fitted Gaussian's width for this micrograph (chosen on other data, e.g. the
            other micrographs); default: the ``gaussian`` given to the scorer, if any.
        curve
            This micrograph's :func:`~.baselines.gaussian_curve` when the caller has it (a 2D
            micrograph): the oracle's width is read from it instead of measured again.
        """
        self.n_micrographs += 1
        denoised, clean = _stack(denoised), _stack(clean)
        noisy = None if noisy is None else _stack(noisy)
        if sigma is None and self.gaussian is not None:
            sigma = self.gaussian.sigma
        single = denoised.shape[0] == 1
        for z in range(denoised.shape[0]):
            self._add_slice(denoised[z], clean[z], None if noisy is None else noisy[z], file, z,
                            sigma, curve if single else None)

    def _add_slice(self, denoised: np.ndarray, clean: np.ndarray, noisy: np.ndarray | None,
                   file: str | None, z: int, sigma: float | None,
                   curve: np.ndarray | None) -> None:
        predictions = {"model": denoised}
        if noisy is not None:
            oracle = width_best_on([gaussian_curve(noisy, clean) if curve is None else curve])
            self.oracle_sigmas.append(oracle)
            predictions.update(noisy=noisy, gaussian_oracle=gaussian_baseline(noisy, oracle))
            if sigma is not None:
                self.fitted_sigmas.append(float(sigma))
                predictions["gaussian"] = gaussian_baseline(noisy, sigma)
        if not self.accumulators:
            self._start(clean, noisy, tuple(predictions))
        if set(predictions) != set(self.accumulators):
            raise ValueError("give the noisy image (and a fitted Gaussian width) for every "
                             "micrograph or for none")
        for name, pred in predictions.items():
            self.accumulators[name].update(pred, clean)
            rows = patch_metrics(pred, clean, self.patch_size, self.data_range)
            self._rows[name] += rows
            self._images[name].append(_whole(pred, clean, rows, self.data_range))
        self.artifacts.update(denoised, clean)
        self._where += [(file, z)] * (len(self._rows["model"]) - len(self._where))
        self._image_where.append((file, z))

    def _start(self, clean: np.ndarray, noisy: np.ndarray | None, names: tuple[str, ...]) -> None:
        """First slice: fix the histogram range of every prediction's accumulator."""
        crops = [centre_crop(a, _HIST_CROP).ravel() for a in (noisy, clean) if a is not None]
        low, high = np.percentile(np.concatenate(crops), [0.1, 99.9])
        pad = 0.1 * (high - low) or 0.5
        self.accumulators = {name: PairAccumulator(self.data_range,
                                                   hist_range=(float(low - pad), float(high + pad)))
                             for name in names}
        self._rows = {name: [] for name in names}
        self._images = {name: [] for name in names}

    def result(self, target_kind: str = "clean") -> Scores:
        """Return the scores of everything added so far.

        Parameters
        ----------
        target_kind
            ``"clean"`` (noise-free ground truth) or ``"noisy"`` (the target is itself noisy).

        Returns
        -------
        Scores
            The model's and baselines' scores, the artifacts, the patch and micrograph rows.
        """
        if not self._rows.get("model"):
            raise InputError("no pixels were evaluated")
        scored = {name: _prediction(acc, self._rows[name], self._images[name])
                  for name, acc in self.accumulators.items()}
        fit = None
        if "gaussian" in scored:
            where = self.gaussian.fitted_on if self.gaussian is not None else "given per call"
            fit = GaussianFit(float(np.mean(self.fitted_sigmas)), where,
                              tuple(self.fitted_sigmas))
        return Scores(self.patch_size, self.data_range, target_kind, self.n_micrographs,
                      scored["model"], self.artifacts.result(),
                      tuple(self._patch(i) for i in range(len(self._where))),
                      scored.get("noisy"), scored.get("gaussian"), fit,
                      scored.get("gaussian_oracle"), tuple(self.oracle_sigmas),
                      tuple(self._micrograph(i) for i in range(len(self._images["model"]))))

    def _patch(self, i: int) -> PatchScore:
        row, (file, z) = self._rows["model"][i], self._where[i]
        values = {key: value for key, value in row.items() if key not in ("y", "x")}
        gaussian = "gaussian" if "gaussian" in self._rows else "gaussian_oracle"
        baselines = ({} if "noisy" not in self._rows else
                     {"noisy_rmse": self._rows["noisy"][i]["rmse"],
                      "gaussian_rmse": self._rows[gaussian][i]["rmse"]})
        return PatchScore(int(row["y"]), int(row["x"]), values, file, z, **baselines)

    def _micrograph(self, i: int) -> dict[str, object]:
        """One micrograph's row: the model's whole-image metrics, the baselines' PSNR and r."""
        file, z = self._image_where[i]
        row: dict[str, object] = {**({} if file is None else {"file": file, "z": z}),
                                  **self._images["model"][i]}
        for name in ("noisy", "gaussian", "gaussian_oracle"):
            if name in self._images:
                row[f"{name}_psnr"] = self._images[name][i]["psnr"]
                row[f"{name}_corr"] = self._images[name][i]["corr"]
        if self.oracle_sigmas:
            row["gaussian_oracle_sigma"] = self.oracle_sigmas[i]
        if self.fitted_sigmas:
            row["gaussian_sigma"] = self.fitted_sigmas[i]
        return row


def _whole(pred: np.ndarray, clean: np.ndarray, rows: Sequence[Mapping[str, float]],
           data_range: float) -> dict[str, float]:
    """Every :data:`METRICS` value on one whole micrograph.

    MSE, RMSE, PSNR and Pearson r over all its pixels (float64 sums by dot products, which
    release the GIL, so the Inspect widget's worker leaves the UI thread free); SSIM (a local
    measure) as the mean of its patches' values.
    """
    p_all, t_all = np.asarray(pred).ravel(), np.asarray(clean).ravel()
    mean_p, mean_t = float(p_all.mean(dtype=np.float64)), float(t_all.mean(dtype=np.float64))
    sums = np.zeros(4)  # squared residual, pp, tt, pt (centred), in float64 blocks of 1 M px
    for start in range(0, p_all.size, 1 << 20):
        p = p_all[start:start + (1 << 20)].astype(np.float64) - mean_p
        t = t_all[start:start + (1 << 20)].astype(np.float64) - mean_t
        d = p - t
        sums += (d @ d, p @ p, t @ t, p @ t)
    n = p_all.size
    mse = float(sums[0]) / n + (mean_p - mean_t) ** 2
    denom = math.sqrt(float(sums[1]) * float(sums[2]))
    corr = float(sums[3]) / denom if denom > 0 else math.nan
    return {"mse": mse, "rmse": math.sqrt(mse), "psnr": psnr(mse, data_range), "corr": corr,
            "ssim": nanmean([r["ssim"] for r in rows])}


def _stack(image: np.ndarray) -> np.ndarray:
    """Return a micrograph as a stack of one slice; a stack as it is."""
    return image if image.ndim == 3 else image[np.newaxis]


def _prediction(acc: PairAccumulator, rows: Sequence[Mapping[str, float]],
                images: Sequence[Mapping[str, float]]) -> PredictionScore:
    """Means over micrographs and over patches, and pooled values, of every metric."""
    pixels = acc.result()
    values = {m.key: [row[m.key] for row in rows] for m in METRICS}
    return PredictionScore({key: nanmean(v) for key, v in values.items()},
                           {**pixels, **{m.key: m.pooled(pixels, values[m.key]) for m in METRICS}},
                           {m.key: nanmean([image[m.key] for image in images]) for m in METRICS})
