"""Systematic-artifact detection for the checklist: dark/bright rims and tile seams.

A denoiser with zero padding can leave a rim at the micrograph edge, and a tiled one a seam along
a tile boundary; both show as residual energy concentrated in a band or along single lines.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .metrics import _check_2d_pair
from .pixels import _BLOCK

__all__ = ["ArtifactAccumulator"]


class ArtifactAccumulator:
    """Residual energy at the image borders and along single rows/columns (tile seams).

    Parameters
    ----------
    border
        Width (px) of the band along the edges compared with the interior.
    window
        Half-width (lines) of the neighbourhood a row or column is compared with.
    """

    def __init__(self, border: int = 8, window: int = 8) -> None:
        self.border, self.window = int(border), int(window)
        self._band = [0.0, 0, 0.0, 0]  # border sum, border count, interior sum, interior count
        self._lines: dict[tuple[int, int], list[Any]] = {}  # shape -> [row sums, col sums, n]

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        """Add the residual ``pred − target`` of one 2D micrograph."""
        _check_2d_pair(pred, target)
        h, w = pred.shape
        lines = self._lines.setdefault((h, w), [np.zeros(h), np.zeros(w), 0])
        b, step = self.border, max(1, _BLOCK // w)
        for y0 in range(0, h, step):
            r2 = (pred[y0:y0 + step].astype(np.float64) - target[y0:y0 + step]) ** 2
            lines[0][y0:y0 + step] += r2.sum(axis=1)
            lines[1] += r2.sum(axis=0)
            inner = r2[max(b - y0, 0):max(h - b - y0, 0), b:w - b]
            self._band[0] += float(r2.sum() - inner.sum())
            self._band[1] += r2.size - inner.size
            self._band[2] += float(inner.sum())
            self._band[3] += inner.size
        lines[2] += 1

    def result(self) -> dict[str, Any]:
        """``border_rmse``, ``interior_rmse``, their ratio, and the worst line's seam scores.

        ``seam_ratio`` is the largest ratio of a row's (column's) mean squared residual to the
        median of its neighbours; ``seam_z`` is how many robust standard deviations (1.4826 ×
        MAD of all lines' ratios) that line stands out; ``seam_line`` names it.
        """
        bs, bn, ins, inn = self._band
        out: dict[str, Any] = {"border_px": self.border, "border_rmse": None,
                               "interior_rmse": None, "border_ratio": None, "seam_ratio": None,
                               "seam_z": None, "seam_line": None}
        if bn and inn:
            out.update(border_rmse=math.sqrt(bs / bn), interior_rmse=math.sqrt(ins / inn))
            out["border_ratio"] = (out["border_rmse"] / out["interior_rmse"]
                                   if ins > 0 else (1.0 if bs == 0 else math.inf))
        for (h, w), (rows, cols, n) in self._lines.items():
            for axis, sums, length in (("row", rows, w), ("column", cols, h)):
                found = self._worst_line(sums / (length * n))
                if found and (out["seam_z"] is None or found[1] > out["seam_z"]):
                    out.update(seam_ratio=found[0], seam_z=found[1],
                               seam_line=f"{axis} {found[2]} of {h}x{w}")
        return out

    def _worst_line(self, energy: np.ndarray) -> tuple[float, float, int] | None:
        k, lo = self.window, max(self.border, self.window)
        if energy.size - 2 * lo < 4:
            return None
        win = np.lib.stride_tricks.sliding_window_view(energy, 2 * k + 1)
        neighbours = np.median(np.delete(win, k, axis=1), axis=1)  # line i is win[i - k]
        centre = energy[k:energy.size - k]
        ratio = np.divide(centre, neighbours, out=np.ones_like(centre), where=neighbours > 0)
        ratio = ratio[lo - k:ratio.size - (lo - k)]
        spread = 1.4826 * float(np.median(np.abs(ratio - np.median(ratio))))
        i = int(np.argmax(ratio))
        z = (ratio[i] - np.median(ratio)) / spread if spread > 0 else (
            0.0 if ratio[i] <= np.median(ratio) else math.inf)
        return float(ratio[i]), float(z), i + lo
