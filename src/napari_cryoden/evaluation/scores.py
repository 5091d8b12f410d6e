"""The typed results of :class:`~napari_cryoden.evaluation.scoring.Scorer`.

Frozen dataclasses: :class:`Scores` holds the model's and the baselines'
:class:`PredictionScore`, one :class:`PatchScore` per patch and one row per micrograph, and
:class:`GaussianFit` says where the fitted Gaussian's width came from; each ``to_json()`` gives
the JSON of
``cryoden evaluate``'s report (docs/metrics.md). :class:`ChecklistInput` is what the checklist
judges, read from scores (:meth:`Scores.checklist_input`) or from a report
(:meth:`ChecklistInput.from_report`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .baselines import GAUSSIAN_SEARCH_CROP

__all__ = ["TARGET_NOTES", "HEADLINE_NOTE", "ORACLE_NOTE", "ChecklistInput", "GaussianFit",
           "PatchScore", "PredictionScore", "Scores"]

TARGET_NOTES = {
    "clean": "The target is noise-free ground truth: the metrics measure the denoiser's error.",
    "noisy": "The target is itself a noisy micrograph: PSNR is then capped by the target's noise "
             "(and correlation likewise), so the values understate the denoiser's quality.",
}


HEADLINE_NOTE = ("per micrograph: each metric on each micrograph's whole image, then averaged "
                 "over micrographs (independent of the patch size; per_patch holds the means "
                 "over patches)")
ORACLE_NOTE = (f"upper bound, not a baseline: the sigma best on each micrograph's own clean "
               f"target (0.5 to 32 px at four steps an octave, central crop of at most "
               f"{GAUSSIAN_SEARCH_CROP} px), which no user can choose")


@dataclass(frozen=True)
class GaussianFit:
    """The fitted Gaussian baseline's width and where it was chosen (never the scored pixels)."""

    sigma: float
    """The width (px); the mean when each micrograph had its own."""
    fitted_on: str
    """Where it was chosen, in words (the model's validation set, the other micrographs, …)."""
    sigmas: tuple[float, ...] = ()
    """Per micrograph, when each had its own."""


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
    """One prediction (the model or a baseline): per micrograph, per patch and pooled metrics."""

    means: Mapping[str, float]
    """Means over patches."""
    pooled: Mapping[str, float]
    """Over all pixels of all micrographs."""
    per_micrograph: Mapping[str, float]
    """Means over micrographs of each micrograph's whole-image value: the headline."""

    def to_json(self) -> dict[str, Any]:
        """Return the per-micrograph means, ``per_patch`` means and ``pooled`` metrics.

        Returns
        -------
        dict
            ``{**per_micrograph, "per_patch": means, "pooled": pooled}``.
        """
        return {**self.per_micrograph, "per_patch": dict(self.means), "pooled": dict(self.pooled)}


@dataclass(frozen=True)
class ChecklistInput:
    """What the checklist judges: pooled metrics of the model and baselines, artifacts, patches.

    ``noisy_pooled`` and ``gaussian_pooled`` are ``None`` when the noisy input is unknown (then
    item 7 is not judged); ``gaussian_pooled`` is the fitted Gaussian's, or the oracle's when
    there is no fitted one (``gaussian_kind`` says which); ``epoch`` is the evaluated
    checkpoint's, when known.
    """

    pooled: Mapping[str, float]
    noisy_pooled: Mapping[str, float] | None = None
    gaussian_pooled: Mapping[str, float] | None = None
    gaussian_sigma: float | None = None
    gaussian_kind: str = "fitted"
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
        kind = "fitted"
        if not gaussian and baselines.get("gaussian_oracle"):
            gaussian, kind = baselines["gaussian_oracle"], "oracle"
        return cls(pooled=report["pooled"], noisy_pooled=noisy["pooled"] if noisy else None,
                   gaussian_pooled=gaussian.get("pooled"),
                   gaussian_sigma=gaussian.get("sigma"), gaussian_kind=kind,
                   artifacts=report.get("artifacts"),
                   patches=tuple(report.get("patches", []) if patches is None else patches),
                   target_kind=report.get("target_kind", "clean"),
                   data_range=float(report.get("data_range", 1.0)),
                   epoch=(report.get("model") or {}).get("epoch"))


@dataclass(frozen=True)
class Scores:
    """The model and (when the noisy input was given) the baselines scored on a dataset."""

    patch_size: int
    data_range: float
    target_kind: str
    n_micrographs: int
    model: PredictionScore
    artifacts: Mapping[str, Any]
    patches: tuple[PatchScore, ...]
    noisy: PredictionScore | None = None
    gaussian: PredictionScore | None = None
    """The fitted Gaussian (its width chosen on other data), when a width was given."""
    fit: GaussianFit | None = None
    oracle: PredictionScore | None = None
    """The oracle Gaussian (each micrograph's own best width): an upper bound."""
    oracle_sigmas: tuple[float, ...] = ()
    micrographs: tuple[Mapping[str, Any], ...] = ()

    @property
    def sigma(self) -> float | None:
        """The fitted Gaussian's width (mean over micrographs), else None."""
        return None if self.fit is None else self.fit.sigma

    @property
    def oracle_sigma(self) -> float | None:
        """The oracle Gaussian's width, the mean over micrographs, else None."""
        return sum(self.oracle_sigmas) / len(self.oracle_sigmas) if self.oracle_sigmas else None

    def to_json(self) -> dict[str, Any]:
        """Return the report's scores as JSON-ready values (docs/metrics.md lists the keys).

        Returns
        -------
        dict
            The model's per-micrograph means at the top level (the headline), then
            ``headline``, ``per_patch``, ``data_range``, ``target_kind``, ``target_note``,
            ``n_micrographs``, ``n_patches``, ``patch_size``, ``pooled``, ``baselines``,
            ``artifacts``, ``best_patch``, ``worst_patch``, ``micrographs`` and ``patches``.
        """
        rows = [patch.to_json() for patch in self.patches]
        by_rmse = sorted(rows, key=lambda row: row["rmse"])
        return {**self.model.per_micrograph, "headline": HEADLINE_NOTE,
                "per_patch": dict(self.model.means), "data_range": self.data_range,
                "target_kind": self.target_kind, "target_note": TARGET_NOTES[self.target_kind],
                "n_micrographs": self.n_micrographs, "n_patches": len(rows),
                "patch_size": self.patch_size, "pooled": dict(self.model.pooled),
                "baselines": self._baselines_json(), "artifacts": dict(self.artifacts),
                "best_patch": by_rmse[0], "worst_patch": by_rmse[-1],
                "micrographs": [dict(m) for m in self.micrographs], "patches": rows}

    def _baselines_json(self) -> dict[str, Any]:
        if self.noisy is None:
            return {}
        out: dict[str, Any] = {"noisy": self.noisy.to_json()}
        if self.gaussian is not None and self.fit is not None:
            note = f"sigma chosen on {self.fit.fitted_on}, never on the scored micrograph"
            out["gaussian"] = {"sigma": self.fit.sigma, "sigmas": list(self.fit.sigmas),
                               "fitted_on": self.fit.fitted_on, "note": note,
                               **self.gaussian.to_json()}
        if self.oracle is not None:
            out["gaussian_oracle"] = {"sigma": self.oracle_sigma,
                                      "sigmas": list(self.oracle_sigmas), "note": ORACLE_NOTE,
                                      **self.oracle.to_json()}
        return out

    def checklist_input(self, epoch: int | None = None) -> ChecklistInput:
        """Return what the checklist judges of these scores.

        Parameters
        ----------
        epoch
            The evaluated checkpoint's epoch, when known (items 2 and 3 use its record).

        Returns
        -------
        ChecklistInput
            Pooled metrics, baselines (the fitted Gaussian, else the oracle), artifacts and
            patch rows.
        """
        fitted = self.gaussian is not None
        gaussian = self.gaussian if fitted else self.oracle
        return ChecklistInput(
            pooled=self.model.pooled,
            noisy_pooled=None if self.noisy is None else self.noisy.pooled,
            gaussian_pooled=None if gaussian is None else gaussian.pooled,
            gaussian_sigma=self.sigma if fitted else self.oracle_sigma,
            gaussian_kind="fitted" if fitted else "oracle",
            artifacts=self.artifacts, patches=tuple(p.to_json() for p in self.patches),
            target_kind=self.target_kind, data_range=self.data_range, epoch=epoch)
