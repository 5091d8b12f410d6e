"""The typed results of :class:`~napari_cryoden.evaluation.scoring.Scorer`.

Frozen dataclasses: :class:`Scores` holds the model's and the baselines'
:class:`PredictionScore` and one :class:`PatchScore` per patch; each ``to_json()`` gives the JSON of
``cryoden evaluate``'s report (docs/metrics.md). :class:`ChecklistInput` is what the checklist
judges, read from scores (:meth:`Scores.checklist_input`) or from a report
(:meth:`ChecklistInput.from_report`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .baselines import GAUSSIAN_SEARCH_CROP

__all__ = ["TARGET_NOTES", "PatchScore", "PredictionScore", "Scores", "ChecklistInput"]

TARGET_NOTES = {
    "clean": "The target is noise-free ground truth: the metrics measure the denoiser's error.",
    "noisy": "The target is itself a noisy micrograph: PSNR is then capped by the target's noise "
             "(and correlation likewise), so the values understate the denoiser's quality.",
}


@dataclass(frozen=True)
class PatchScore:
    """The model's metrics on one patch, and the baselines' RMSE on the same patch."""

    y: int
    x: int
    values: Mapping[str, float]
    file: str | None = None
    z: int = 0
    noisy_rmse: float | None = None
    gaussian_rmse: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the patch row of the report: ``file``, ``z``, ``y``, ``x``, metrics, baselines.

        Returns
        -------
        dict
            ``file`` and ``z`` only when the patch came from a file, the baselines' RMSE only
            when they were scored.
        """
        head = {} if self.file is None else {"file": self.file, "z": self.z}
        tail = ({} if self.noisy_rmse is None else
                {"noisy_rmse": self.noisy_rmse, "gaussian_rmse": self.gaussian_rmse})
        return {**head, "y": self.y, "x": self.x, **self.values, **tail}


@dataclass(frozen=True)
class PredictionScore:
    """One prediction (the model or a baseline): means over patches and pooled metrics."""

    means: Mapping[str, float]
    pooled: Mapping[str, float]

    def to_json(self) -> dict[str, Any]:
        """Return the means over patches and, under ``pooled``, the metrics over all pixels.

        Returns
        -------
        dict
            ``{**means, "pooled": pooled}``.
        """
        return {**self.means, "pooled": dict(self.pooled)}


@dataclass(frozen=True)
class ChecklistInput:
    """What the checklist judges: pooled metrics of the model and baselines, artifacts, patches.

    ``noisy_pooled`` and ``gaussian_pooled`` are ``None`` when the noisy input is unknown (then
    item 7 is not judged); ``epoch`` is the evaluated checkpoint's, when known.
    """

    pooled: Mapping[str, float]
    noisy_pooled: Mapping[str, float] | None = None
    gaussian_pooled: Mapping[str, float] | None = None
    gaussian_sigma: float | None = None
    artifacts: Mapping[str, Any] | None = None
    patches: Sequence[Mapping[str, Any]] = ()
    target_kind: str = "clean"
    data_range: float = 1.0
    epoch: int | None = None

    @classmethod
    def from_report(cls, report: Mapping[str, Any],
                    patches: Sequence[Mapping[str, Any]] | None = None) -> ChecklistInput:
        """Read the checklist's input from an evaluation report (or a mapping with its keys).

        Parameters
        ----------
        report
            A mapping with ``pooled`` and ``baselines`` and optionally ``artifacts``,
            ``patches``, ``target_kind``, ``data_range`` and ``model`` (with its ``epoch``).
        patches
            Per-patch rows; ``report["patches"]`` by default.

        Returns
        -------
        ChecklistInput
            The same numbers, typed.
        """
        baselines = report.get("baselines") or {}
        noisy, gaussian = baselines.get("noisy"), baselines.get("gaussian") or {}
        return cls(pooled=report["pooled"], noisy_pooled=noisy["pooled"] if noisy else None,
                   gaussian_pooled=gaussian.get("pooled"), gaussian_sigma=gaussian.get("sigma"),
                   artifacts=report.get("artifacts"),
                   patches=tuple(report.get("patches", []) if patches is None else patches),
                   target_kind=report.get("target_kind", "clean"),
                   data_range=float(report.get("data_range", 1.0)),
                   epoch=(report.get("model") or {}).get("epoch"))


@dataclass(frozen=True)
class Scores:
    """The model and (when the noisy input was given) both baselines scored on a dataset."""

    patch_size: int
    data_range: float
    target_kind: str
    n_micrographs: int
    model: PredictionScore
    artifacts: Mapping[str, Any]
    patches: tuple[PatchScore, ...]
    noisy: PredictionScore | None = None
    gaussian: PredictionScore | None = None
    sigma: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the report's scores as JSON-ready values (docs/metrics.md lists the keys).

        Returns
        -------
        dict
            The model's means over patches at the top level, then ``data_range``,
            ``target_kind``, ``target_note``, ``n_micrographs``, ``n_patches``,
            ``patch_size``, ``pooled``, ``baselines``, ``artifacts``, ``best_patch``,
            ``worst_patch`` and ``patches``.
        """
        rows = [patch.to_json() for patch in self.patches]
        by_rmse = sorted(rows, key=lambda row: row["rmse"])
        return {**self.model.means, "data_range": self.data_range,
                "target_kind": self.target_kind, "target_note": TARGET_NOTES[self.target_kind],
                "n_micrographs": self.n_micrographs, "n_patches": len(rows),
                "patch_size": self.patch_size, "pooled": dict(self.model.pooled),
                "baselines": self._baselines_json(), "artifacts": dict(self.artifacts),
                "best_patch": by_rmse[0], "worst_patch": by_rmse[-1], "patches": rows}

    def _baselines_json(self) -> dict[str, Any]:
        if self.noisy is None or self.gaussian is None:
            return {}
        note = (f"sigma = {self.sigma:.3g} px, searched on the first micrograph (central crop "
                f"of at most {GAUSSIAN_SEARCH_CROP} px), then applied to all micrographs")
        return {"noisy": self.noisy.to_json(),
                "gaussian": {"sigma": self.sigma, "note": note, **self.gaussian.to_json()}}

    def checklist_input(self, epoch: int | None = None) -> ChecklistInput:
        """Return what the checklist judges of these scores.

        Parameters
        ----------
        epoch
            The evaluated checkpoint's epoch, when known (items 2 and 3 use its record).

        Returns
        -------
        ChecklistInput
            Pooled metrics, baselines, artifacts and patch rows.
        """
        return ChecklistInput(
            pooled=self.model.pooled,
            noisy_pooled=None if self.noisy is None else self.noisy.pooled,
            gaussian_pooled=None if self.gaussian is None else self.gaussian.pooled,
            gaussian_sigma=self.sigma,
            artifacts=self.artifacts, patches=tuple(p.to_json() for p in self.patches),
            target_kind=self.target_kind, data_range=self.data_range, epoch=epoch)
