"""The Inspect widget's worker jobs: the analysis and the figures, all off the UI thread.

Nothing here touches a layer or a widget: the jobs take arrays and return results (a
:class:`~napari_cryoden.evaluation.inspection.PatchAnalysis` and its guard warnings, or a
matplotlib figure), which slots of the widget then show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_cryoden.evaluation.inspection import PatchAnalysis, analyse
from napari_cryoden.evaluation.metrics import METRICS, Metric

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["AnalysisJob", "Analysed", "MapLegend", "patch_figure_of", "pooled_figure_of",
           "legend_of", "run_job", "with_legend"]


@dataclass(frozen=True)
class AnalysisJob:
    """What the user chose: the images (arrays), the patch size, the range and the model."""

    noisy: np.ndarray | None
    denoised: np.ndarray
    clean: np.ndarray
    patch_size: int
    data_range: float
    model_path: Path | None


@dataclass(frozen=True)
class Analysed:
    """An analysis and its guard warnings (signs of scrambled weights)."""

    analysis: PatchAnalysis
    warnings: list[str]


def run_job(job: AnalysisJob) -> Analysed:
    """Load the model's history (if any), analyse the trio and run the scramble guards."""
    from napari_cryoden.evaluation.guards import image_warnings

    history, epoch = _history(job.model_path)
    analysis = analyse(job.noisy, job.denoised, job.clean, job.patch_size, job.data_range,
                       history, epoch)
    return Analysed(analysis, list(image_warnings(job.denoised, job.clean, job.noisy)))


def _history(path: Path | None) -> tuple[Any, int | None]:
    if path is None:
        return None, None
    from napari_cryoden.models.checkpoint import load_checkpoint

    _, checkpoint = load_checkpoint(path, "cpu")
    return checkpoint.metadata.get("epochs"), checkpoint.epoch


def patch_figure_of(analysis: PatchAnalysis, index: int) -> Figure:
    """The scatter and histograms of patch ``index``, titled with its metrics."""
    from napari_cryoden.plotting.weights import patch_figure

    row, size = analysis.rows[index], analysis.patch_size
    y, x = int(row["y"]), int(row["x"])
    window = np.s_[y:y + size, x:x + size]
    noisy, denoised, clean = analysis.images
    title = f"patch {index} (y {y}, x {x})\n" + ", ".join(
        f"{m.label} {m.format(row[m.key])}" for m in METRICS)
    return patch_figure(None if noisy is None else noisy[window], denoised[window],
                        clean[window], title=title)


def pooled_figure_of(analysis: PatchAnalysis) -> Figure:
    """The scatter and histograms of the whole image (every patch pooled)."""
    from napari_cryoden.plotting.weights import patch_figure

    noisy, denoised, clean = analysis.images
    title = f"whole image, {len(analysis.rows)} patches pooled\nclick a row for one patch"
    return patch_figure(noisy, denoised, clean, title=title)


@dataclass(frozen=True)
class MapLegend:
    """The metric map's colour scale, drawn as a labelled colour bar under the plot."""

    label: str
    limits: tuple[float, float]
    colormap: str


def legend_of(metric: Metric, limits: Sequence[float]) -> MapLegend:
    """The legend of a metric map of ``metric`` shown between ``limits``."""
    better = "higher" if metric.higher_is_better else "lower"
    return MapLegend(f"{metric.label} per patch: the metric map ({better} is better)",
                     (float(limits[0]), float(limits[1])), "viridis")


def with_legend(figure: Figure, legend: MapLegend | None) -> Figure:
    """Add ``legend``'s colour bar under the scatter and histograms (nothing when ``None``).

    napari's own colour bar of an image layer (``layer.colorbar``) has no label, so the bar
    that says which metric the map shows lives here, next to the plots of the same patches.
    """
    if legend is None:
        return figure
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.ticker import MaxNLocator

    mappable = ScalarMappable(Normalize(*legend.limits), legend.colormap)
    bar = figure.colorbar(mappable, ax=figure.axes[:2], location="bottom", shrink=0.6,
                          aspect=40, pad=0.02)
    bar.set_label(legend.label)
    bar.ax.xaxis.set_major_locator(MaxNLocator(4))  # readable tick labels in a narrow dock
    return figure
