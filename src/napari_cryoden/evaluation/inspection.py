"""Patch-by-patch inspection of one noisy/denoised/clean trio in memory (the Inspect widget's core).

:func:`analyse` scores every patch of a 2D image trio with the same
:class:`~napari_cryoden.evaluation.scoring.Scorer` as ``cryoden evaluate`` (the noisy input and
the best Gaussian filter are the baselines when the noisy image is given), runs the seed's
checklist on the whole image and returns a :class:`PatchAnalysis`; :func:`metric_map` lays one
metric out on the patch grid. Qt-free: the widget runs it in a worker for large images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .checklist import run_checklist
from .scores import Scores
from .scoring import Scorer

__all__ = ["PatchAnalysis", "analyse", "metric_map"]


@dataclass(frozen=True)
class PatchAnalysis:
    """Per-patch rows, the whole-image checklist and the images they came from."""

    patch_size: int
    shape: tuple[int, int]
    rows: list[dict[str, Any]]
    checklist: list[dict[str, Any]]
    images: tuple[np.ndarray | None, np.ndarray, np.ndarray] = field(repr=False)
    missing: list[str] = field(default_factory=list)
    scores: Scores | None = field(default=None, repr=False)

    @property
    def has_noisy(self) -> bool:
        """Whether the noisy image (and so the baselines) was given."""
        return self.images[0] is not None

    def summary_text(self) -> str:
        """Return one line: checklist verdicts, patch count and what is missing."""
        passed = sum(i["passed"] is True for i in self.checklist)
        judged = sum(i["passed"] is not None for i in self.checklist)
        text = (f"Checklist: {passed}/{judged} judged items pass, "
                f"{len(self.checklist) - judged} not judged. {len(self.rows)} patches of "
                f"{self.patch_size} px.")
        text += (" Missing: " + "; ".join(self.missing) + "." if self.missing else "")
        return text + " Click a row to go to its patch."


def analyse(noisy: np.ndarray | None, denoised: np.ndarray, clean: np.ndarray, patch_size: int,
            data_range: float = 1.0, history: Any = None,
            epoch: int | None = None) -> PatchAnalysis:
    """Score every patch of one 2D image trio and run the seed's checklist on the whole image.

    Parameters
    ----------
    noisy
        The denoiser's input, or ``None``: then the baselines, the ``noisy_rmse`` column and
        checklist item 7 are missing.
    denoised, clean
        The denoiser's output and its target, of one shape.
    patch_size
        Edge of the square patches (last row and column aligned to the far edge).
    data_range
        Peak-to-peak range for PSNR.
    history, epoch
        The model's training history and epoch (from its checkpoint), when known.

    Returns
    -------
    PatchAnalysis
        Patch rows (with ``noisy_rmse`` and ``gaussian_rmse`` when ``noisy`` is given), the
        checklist and the typed scores.
    """
    if denoised.shape != clean.shape or (noisy is not None and noisy.shape != clean.shape):
        shapes = [a.shape for a in (noisy, denoised, clean) if a is not None]
        raise ValueError(f"the images differ in shape: {shapes}")
    scorer = Scorer(patch_size, data_range)
    scorer.add(denoised, clean, noisy)
    scores = scorer.result()
    items = run_checklist(scores.checklist_input(epoch), history)
    missing = [] if history else ["training history (choose the model) for items 1–3"]
    if noisy is None:
        missing.append("the noisy image, for item 7's baselines")
    return PatchAnalysis(int(patch_size), clean.shape, [p.to_json() for p in scores.patches],
                         items, (noisy, denoised, clean), missing, scores)


def metric_map(rows: list[dict[str, float]], key: str) -> np.ndarray:
    """Lay one metric out on the ``(n_y, n_x)`` patch grid; non-finite values become NaN.

    Parameters
    ----------
    rows
        Patch rows with ``y``, ``x`` and ``key``.
    key
        The metric's key, e.g. ``"rmse"`` (a :data:`~napari_cryoden.evaluation.metrics.METRICS`
        key).

    Returns
    -------
    numpy.ndarray
        float32, one value per patch.
    """
    ys, xs = sorted({r["y"] for r in rows}), sorted({r["x"] for r in rows})
    out = np.full((len(ys), len(xs)), np.nan, np.float32)
    for r in rows:
        value = float(r[key])
        out[ys.index(r["y"]), xs.index(r["x"])] = value if math.isfinite(value) else np.nan
    return out
