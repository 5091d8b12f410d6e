"""Inspect's worker jobs without a clean image: split-frame SNR of the halves, region-pair SNR.

:func:`run_truthless` denoises the even and the odd half each on its own with the chosen model
(the split-frame protocol), scores them with :mod:`napari_cryoden.evaluation.split_frame` and
:mod:`~napari_cryoden.evaluation.frc` beside a Gaussian baseline, and scores the picks with
:func:`~napari_cryoden.evaluation.region_snr.region_snr_comparison` (raw, denoised, Gaussian
σ = 8 px). :func:`run_inspect` runs it with the clean-image analysis in one worker. Nothing here
touches a layer or a widget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_cryoden._qt.inspect.jobs import Analysed, AnalysisJob, run_job
from napari_cryoden.evaluation.region_snr import DEFAULT_BASELINE_SIGMA, region_snr_comparison
from napari_cryoden.evaluation.truthless import RegionReport, SplitFrameReport, SplitFrameSums
from napari_cryoden.evaluation.truthless_checks import truthless_checklist

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["TruthlessJob", "TruthlessResult", "InspectJob", "run_truthless", "run_inspect",
           "split_frame_of", "frequency_figure_of"]

_NOTES = {"needs --even/--odd": "needs the even and odd halves",
          "needs --picks": "needs picks (a Points layer)"}


@dataclass(frozen=True)
class TruthlessJob:
    """The halves to denoise and score, and/or the picks and the images they are scored on.

    ``region_images`` is ``(raw, denoised)``; ``None`` scores the picks on the sums of the
    halves and of their denoised versions. ``picks_xy`` holds pixel x, y of each particle.
    """

    halves: tuple[np.ndarray, np.ndarray] | None
    model_path: Path | None
    patch_size: int
    picks_xy: np.ndarray | None = None
    box_size: int = 64
    region_images: tuple[np.ndarray, np.ndarray] | None = None
    sigma: float = DEFAULT_BASELINE_SIGMA
    pixel_size: float | None = None


@dataclass(frozen=True)
class TruthlessResult:
    """The split-frame report and/or the region-pair SNR, and the denoised halves."""

    split: SplitFrameReport | None
    region: RegionReport | None
    denoised_halves: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def blocks(self) -> dict[str, Any]:
        """The report's ``split_frame`` and ``region_snr`` blocks (those measured)."""
        out: dict[str, Any] = {}
        if self.split is not None:
            out["split_frame"] = self.split.to_json()
        if self.region is not None:
            out["region_snr"] = self.region.to_json()
        return out

    def checklist(self) -> list[dict[str, Any]]:
        """Checklist items 11–13, with what a missing one needs in the widget's words."""
        blocks = self.blocks()
        items = truthless_checklist(blocks.get("split_frame"), blocks.get("region_snr"))
        return [{**item, "note": _NOTES.get(item["note"], item["note"])} for item in items]


def split_frame_of(even: np.ndarray, odd: np.ndarray, denoised_even: np.ndarray,
                   denoised_odd: np.ndarray, patch_size: int,
                   sigma: float = DEFAULT_BASELINE_SIGMA,
                   pixel_size: float | None = None) -> SplitFrameReport:
    """The split-frame report of one micrograph's halves, with the Gaussian baseline's."""
    sums = SplitFrameSums(patch_size, sigma)
    sums.add(even, odd, denoised_even, denoised_odd)
    return sums.report(pixel_size)


def run_truthless(job: TruthlessJob) -> TruthlessResult:
    """Denoise each half with the model, then score the halves and the picks."""
    split, denoised = None, None
    if job.halves is not None:
        from napari_cryoden.inference.load import load_denoiser

        denoiser = load_denoiser(job.model_path)
        even, odd = (np.asarray(h, np.float32) for h in job.halves)
        denoised = denoiser.denoise(even), denoiser.denoise(odd)
        split = split_frame_of(even, odd, *denoised, job.patch_size, job.sigma, job.pixel_size)
    region = None
    if job.picks_xy is not None:
        if job.region_images is not None:
            (raw, den), images = job.region_images, "the noisy and denoised images"
        else:
            assert job.halves is not None and denoised is not None  # checked by the widget
            raw, den, images = _sum(job.halves), _sum(denoised), "even + odd sums"
        pairs = region_snr_comparison(np.asarray(raw), np.asarray(den), job.picks_xy,
                                      job.box_size, sigma=job.sigma)
        region = RegionReport((pairs,), pairs, images)
    return TruthlessResult(split, region, denoised)


def _sum(halves: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return np.asarray(halves[0], np.float32) + np.asarray(halves[1], np.float32)


@dataclass(frozen=True)
class InspectJob:
    """What Analyse runs in one worker: the clean-image analysis and/or the truthless one."""

    analysis: AnalysisJob | None
    truthless: TruthlessJob | None


def run_inspect(job: InspectJob) -> tuple[Analysed | None, TruthlessResult | None]:
    """Run both parts of ``job`` (each ``None`` when not asked for)."""
    analysed = run_job(job.analysis) if job.analysis is not None else None
    truthless = run_truthless(job.truthless) if job.truthless is not None else None
    return analysed, truthless


def frequency_figure_of(result: TruthlessResult) -> Figure:
    """The split-frame SNR per spatial frequency and the signal kept per frequency."""
    from napari_cryoden.plotting.quality import frequency_snr_figure

    assert result.split is not None  # drawn only with halves
    return frequency_snr_figure(result.split.frequency.to_json())
