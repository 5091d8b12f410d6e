"""Patch-by-patch inspection of one noisy/denoised/clean trio in memory (the Inspect widget's core).

:func:`analyse` scores every patch of a 2D image trio, runs the seed's checklist on the whole
image (with the noisy input and the best Gaussian filter as baselines when the noisy image is
given) and returns a :class:`PatchAnalysis`; :func:`metric_map` lays one metric out on the patch
grid. Qt-free: the widget runs it in a worker for large images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MAP_METRICS", "PatchAnalysis", "analyse", "metric_map"]

MAP_METRICS = {"RMSE": "rmse", "MSE": "mse", "PSNR": "psnr", "r": "corr"}


@dataclass
class PatchAnalysis:
    """Per-patch rows, the whole-image checklist and the images they came from."""

    patch_size: int
    shape: tuple[int, int]
    rows: list[dict[str, float]]
    checklist: list[dict[str, Any]]
    images: tuple[np.ndarray | None, np.ndarray, np.ndarray] = field(repr=False)
    missing: list[str] = field(default_factory=list)

    @property
    def has_noisy(self) -> bool:
        return self.images[0] is not None

    def summary_text(self) -> str:
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
    """Per-patch metrics and the seed's checklist for one 2D image trio (Qt-free: runs in a
    worker). ``history``/``epoch`` come from the model's checkpoint, when known."""
    from .artifacts import ArtifactAccumulator
    from .checklist import run_checklist
    from .metrics import compare, patch_metrics

    if denoised.shape != clean.shape or (noisy is not None and noisy.shape != clean.shape):
        shapes = [a.shape for a in (noisy, denoised, clean) if a is not None]
        raise ValueError(f"the images differ in shape: {shapes}")
    rows = patch_metrics(denoised, clean, patch_size, data_range)
    summary: dict[str, Any] = {"pooled": compare(denoised, clean, data_range),
                               "data_range": data_range, "target_kind": "clean",
                               "model": {"epoch": epoch}}
    artifacts = ArtifactAccumulator()
    artifacts.update(denoised, clean)
    summary["artifacts"] = artifacts.result()
    missing = [] if history else ["training history (choose the model) for items 1–3"]
    if noisy is not None:
        summary["baselines"] = _baselines(noisy, clean, rows, patch_size, data_range)
    else:
        nan = {"pooled": {"psnr": math.nan}}
        summary["baselines"] = {"noisy": nan, "gaussian": nan}
        missing.append("the noisy image, for item 7's baselines")
    items = run_checklist(summary, history, rows)
    if noisy is None:
        items[6].update(passed=None, value=None, note="needs the noisy image")
    return PatchAnalysis(int(patch_size), clean.shape, rows, items, (noisy, denoised, clean),
                         missing)


def _baselines(noisy: np.ndarray, clean: np.ndarray, rows: list[dict[str, float]],
               patch_size: int, data_range: float) -> dict[str, Any]:
    """The noisy input and the best Gaussian filter scored like the model; per-patch RMSEs are
    added to ``rows`` as ``noisy_rmse`` and ``gaussian_rmse``."""
    from .metrics import (
        GAUSSIAN_SEARCH_CROP,
        best_gaussian,
        centre_crop,
        compare,
        gaussian_baseline,
        patch_metrics,
    )

    search = (centre_crop(a, GAUSSIAN_SEARCH_CROP) for a in (noisy, clean))
    sigma, _ = best_gaussian(*search, data_range=data_range)
    gauss = gaussian_baseline(noisy, sigma)
    for row, rn, rg in zip(rows, patch_metrics(noisy, clean, patch_size, data_range),
                           patch_metrics(gauss, clean, patch_size, data_range), strict=True):
        row.update(noisy_rmse=rn["rmse"], gaussian_rmse=rg["rmse"])
    return {"noisy": {"pooled": compare(noisy, clean, data_range)},
            "gaussian": {"sigma": sigma, "pooled": compare(gauss, clean, data_range)}}




def metric_map(rows: list[dict[str, float]], key: str) -> np.ndarray:
    """One value per patch on the (n_y, n_x) patch grid; non-finite values become NaN."""
    ys, xs = sorted({r["y"] for r in rows}), sorted({r["x"] for r in rows})
    out = np.full((len(ys), len(xs)), np.nan, np.float32)
    for r in rows:
        value = float(r[key])
        out[ys.index(r["y"]), xs.index(r["x"])] = value if math.isfinite(value) else np.nan
    return out
