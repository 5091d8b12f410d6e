"""One scorer for a denoiser's output: the model, the noisy input and the best Gaussian filter.

:class:`Scorer` is fed one micrograph (or stack) at a time and scores, on exactly the same pixels,
the model's output and, when the noisy input is given, two baselines: the noisy input itself and
the best Gaussian filter, whose width is searched on the first micrograph and then applied to all.
Each is scored per patch and pooled over all pixels (streaming accumulators, so memory stays
flat). :meth:`Scorer.result` returns :class:`~napari_cryoden.evaluation.scores.Scores`, frozen
dataclasses whose ``to_json()`` is the JSON of ``cryoden evaluate``'s report.
Both ``cryoden evaluate`` (:mod:`.report`) and the Inspect widget (:mod:`.inspection`) use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import InputError
from .artifacts import ArtifactAccumulator
from .baselines import GAUSSIAN_SEARCH_CROP, best_gaussian, centre_crop, gaussian_baseline
from .metrics import METRICS, nanmean, patch_metrics
from .pixels import PairAccumulator
from .scores import TARGET_NOTES, ChecklistInput, PatchScore, PredictionScore, Scores

__all__ = ["Scorer", "Scores", "PredictionScore", "PatchScore", "ChecklistInput", "TARGET_NOTES"]

_HIST_CROP = 2048  # the histogram range is fixed on the first micrograph's central crop this big


class Scorer:
    """Streaming scores of a denoiser and its baselines, fed one micrograph at a time.

    Parameters
    ----------
    patch_size
        Edge of the square patches of the per-patch metrics (last patch aligned to the edge).
    data_range
        Peak-to-peak range of the data, for PSNR (1.0 for micrographs in [0, 1]).
    """

    def __init__(self, patch_size: int, data_range: float = 1.0) -> None:
        self.patch_size, self.data_range = int(patch_size), float(data_range)
        self.accumulators: dict[str, PairAccumulator] = {}
        self.artifacts = ArtifactAccumulator()
        self.sigma: float | None = None
        self.n_micrographs = 0
        self._rows: dict[str, list[dict[str, float]]] = {}
        self._where: list[tuple[str | None, int]] = []

    def add(self, denoised: np.ndarray, clean: np.ndarray, noisy: np.ndarray | None = None, *,
            file: str | None = None) -> None:
        """Score one micrograph, or each slice of a ``(z, y, x)`` stack.

        Parameters
        ----------
        denoised, clean
            The model's output and its target, of one shape.
        noisy
            The model's input: adds the noisy and Gaussian baselines. Give it for every
            micrograph or for none.
        file
            The micrograph's file name, kept in its patch rows.
        """
        self.n_micrographs += 1
        denoised, clean = _stack(denoised), _stack(clean)
        noisy = None if noisy is None else _stack(noisy)
        for z in range(denoised.shape[0]):
            self._add_slice(denoised[z], clean[z], None if noisy is None else noisy[z], file, z)

    def _add_slice(self, denoised: np.ndarray, clean: np.ndarray, noisy: np.ndarray | None,
                   file: str | None, z: int) -> None:
        if not self.accumulators:
            self._start(clean, noisy)
        if (noisy is not None) != ("noisy" in self.accumulators):
            raise ValueError("give the noisy image for every micrograph or for none")
        predictions = {"model": denoised}
        if noisy is not None:
            predictions.update(noisy=noisy, gaussian=gaussian_baseline(noisy, self.sigma or 0.0))
        for name, pred in predictions.items():
            self.accumulators[name].update(pred, clean)
            self._rows[name] += patch_metrics(pred, clean, self.patch_size, self.data_range)
        self.artifacts.update(denoised, clean)
        self._where += [(file, z)] * (len(self._rows["model"]) - len(self._where))

    def _start(self, clean: np.ndarray, noisy: np.ndarray | None) -> None:
        """First slice: fix the histogram range and search the Gaussian filter's sigma."""
        crops = [centre_crop(a, _HIST_CROP).ravel() for a in (noisy, clean) if a is not None]
        low, high = np.percentile(np.concatenate(crops), [0.1, 99.9])
        pad = 0.1 * (high - low) or 0.5
        names = ("model",) if noisy is None else ("model", "noisy", "gaussian")
        self.accumulators = {name: PairAccumulator(self.data_range,
                                                   hist_range=(float(low - pad), float(high + pad)))
                             for name in names}
        self._rows = {name: [] for name in names}
        if noisy is not None:
            self.sigma, _ = best_gaussian(centre_crop(noisy, GAUSSIAN_SEARCH_CROP),
                                          centre_crop(clean, GAUSSIAN_SEARCH_CROP),
                                          data_range=self.data_range)

    def result(self, target_kind: str = "clean") -> Scores:
        """Return the scores of everything added so far.

        Parameters
        ----------
        target_kind
            ``"clean"`` (noise-free ground truth) or ``"noisy"`` (the target is itself noisy).

        Returns
        -------
        Scores
            The model's and baselines' scores, the artifacts and the patch rows.
        """
        if not self._rows.get("model"):
            raise InputError("no pixels were evaluated")
        scored = {name: _prediction(acc, self._rows[name])
                  for name, acc in self.accumulators.items()}
        return Scores(self.patch_size, self.data_range, target_kind, self.n_micrographs,
                      scored["model"], self.artifacts.result(),
                      tuple(self._patch(i) for i in range(len(self._where))),
                      scored.get("noisy"), scored.get("gaussian"), self.sigma)

    def _patch(self, i: int) -> PatchScore:
        row, (file, z) = self._rows["model"][i], self._where[i]
        values = {key: value for key, value in row.items() if key not in ("y", "x")}
        baselines = {f"{name}_rmse": self._rows[name][i]["rmse"]
                     for name in ("noisy", "gaussian") if name in self._rows}
        return PatchScore(int(row["y"]), int(row["x"]), values, file, z, **baselines)


def _stack(image: np.ndarray) -> np.ndarray:
    """Return a micrograph as a stack of one slice; a stack as it is."""
    return image if image.ndim == 3 else image[np.newaxis]


def _prediction(acc: PairAccumulator, rows: Sequence[Mapping[str, float]]) -> PredictionScore:
    """Means over patches and pooled values of every metric of :data:`METRICS`."""
    pixels = acc.result()
    values = {m.key: [row[m.key] for row in rows] for m in METRICS}
    return PredictionScore({key: nanmean(v) for key, v in values.items()},
                           {**pixels, **{m.key: m.pooled(pixels, values[m.key]) for m in METRICS}})
