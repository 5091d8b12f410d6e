"""Report figures as Qt-free :class:`matplotlib.figure.Figure` objects.

Every builder is a pure function of data → Figure: pyplot is never imported, so no GUI backend
is touched. The CLI saves the figures as PNG (:func:`save_figure`); the napari widgets draw the
same figures on their own canvases.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

__all__ = [
    "loss_figure",
    "scatter_figure",
    "histogram_figure",
    "panel_figure",
    "save_figure",
    "smooth",
]

_COLORS = {"noisy": "#9e9e9e", "denoised": "#1f77b4", "clean": "#d62728", "target": "#d62728",
           "train": "#1f77b4", "val": "#ff7f0e"}


def smooth(values: Sequence[float], alpha: float = 0.1) -> np.ndarray:
    """Exponential moving average with bias correction (TensorBoard-style smoothing)."""
    data = np.asarray(values, dtype=np.float64)
    out, avg = np.empty_like(data), 0.0
    for i, v in enumerate(data):
        avg = (1 - alpha) * avg + alpha * v
        out[i] = avg / (1 - (1 - alpha) ** (i + 1))
    return out


def loss_figure(history_steps: Sequence[Any] | None,
                history_epochs: Sequence[Mapping[str, Any]] | None) -> Figure:
    """Training curves: per-step loss (raw and smoothed) and per-epoch train and val loss.

    Parameters
    ----------
    history_steps
        Per-step training losses, as floats or as history.json records with a ``loss`` key;
        ``None`` or empty to show epochs only.
    history_epochs
        Records with ``epoch``, ``train_loss`` and (optionally) ``val_loss``.
    """
    steps = [float(s["loss"]) if isinstance(s, Mapping) else float(s)
             for s in (history_steps or [])]
    epochs = list(history_epochs or [])
    panels = int(bool(steps)) + int(bool(epochs)) or 1
    fig = Figure(figsize=(5 * panels, 3.6), layout="constrained")
    axes = list(np.atleast_1d(fig.subplots(1, panels)))
    if steps:
        ax = axes.pop(0)
        ax.plot(np.arange(1, len(steps) + 1), steps, color=_COLORS["train"], alpha=0.25, lw=0.8,
                label="train (per step)")
        ax.plot(np.arange(1, len(steps) + 1), smooth(steps), color=_COLORS["train"],
                label="train (smoothed)")
        _loss_axes(ax, "step", steps)
    if epochs:
        ax = axes.pop(0)
        for key, label in (("train_loss", "train"), ("val_loss", "val")):
            pts = [(e["epoch"], e[key]) for e in epochs if e.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", color=_COLORS[label], label=label)
        values = [e[k] for e in epochs for k in ("train_loss", "val_loss") if e.get(k)]
        _loss_axes(ax, "epoch", values)
    if not steps and not epochs:
        axes[0].text(0.5, 0.5, "no training history", ha="center", va="center")
        axes[0].set_axis_off()
    return fig


def _loss_axes(ax: Any, xlabel: str, values: Sequence[float]) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel("MSE loss")
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 20:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)


def scatter_figure(pred_sample: np.ndarray, target_sample: np.ndarray, *,
                   target_label: str = "clean target", bins: int = 200) -> Figure:
    """Denoised vs target intensities as a 2D histogram (log counts) with the 45° line."""
    pred = np.asarray(pred_sample, dtype=np.float64).ravel()
    target = np.asarray(target_sample, dtype=np.float64).ravel()
    fig = Figure(figsize=(5, 4.6), layout="constrained")
    ax = fig.subplots()
    if pred.size == 0:
        ax.text(0.5, 0.5, "no pixels", ha="center", va="center")
        return fig
    low, high = np.percentile(np.concatenate([pred, target]), [0.1, 99.9])
    high = high if high > low else low + 1.0
    *_, image = ax.hist2d(target, pred, bins=bins, range=[[low, high], [low, high]],
                          norm=LogNorm(), cmap="viridis", cmin=1)
    ax.plot([low, high], [low, high], color="white", lw=2.5)
    ax.plot([low, high], [low, high], color="#d62728", lw=1.2, ls="--", label="45° (perfect)")
    ax.set(xlabel=f"{target_label} intensity", ylabel="denoised intensity", aspect="equal",
           xlim=(low, high), ylim=(low, high))
    ax.set_title(f"{pred.size:,} sampled pixels", fontsize="medium")
    ax.legend(loc="upper left", frameon=False)
    fig.colorbar(image, ax=ax, label="pixels per bin")
    return fig


def histogram_figure(bin_edges: np.ndarray, hists: Mapping[str, np.ndarray]) -> Figure:
    """Intensity distributions, normalised to densities, e.g. ``{"noisy", "denoised", "clean"}``."""
    edges = np.asarray(bin_edges, dtype=np.float64)
    width = np.diff(edges)
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.subplots()
    for name, counts in hists.items():
        counts = np.asarray(counts, dtype=np.float64)
        density = counts / (counts.sum() * width) if counts.sum() else counts
        ax.stairs(density, edges, label=name, color=_COLORS.get(name), lw=1.5)
    ax.set(xlabel="intensity", ylabel="density")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return fig


def panel_figure(noisy: np.ndarray, denoised: np.ndarray, clean: np.ndarray, *,
                 titles: Sequence[str] = ("noisy", "denoised", "clean")) -> Figure:
    """Three images side by side with the same contrast limits (1–99 % of the clean image)."""
    images = [np.asarray(a, dtype=np.float32) for a in (noisy, denoised, clean)]
    vmin, vmax = (float(v) for v in np.percentile(images[2], [1, 99]))
    if vmax <= vmin:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    fig = Figure(figsize=(12, 4.3), layout="constrained")
    for ax, image, title in zip(fig.subplots(1, 3), images, titles, strict=True):
        ax.imshow(image, cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(title)
        ax.set_axis_off()
    fig.suptitle(f"same contrast limits: [{vmin:.3g}, {vmax:.3g}]", fontsize="small")
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Save ``fig`` as an image (format from the suffix, PNG usually); parent folders are made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
