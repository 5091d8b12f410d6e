"""Qt-free figures of a model's weights and of one patch's intensities.

:func:`weights_figure` shows every convolution kernel of the seed net (conv1's 16, conv2's
16 × 16, conv3's 16) as small images on ONE shared, signed, symmetric colour scale, plus the
biases as bars: the picture that would have shown the seed's scrambled weights at a glance.
Larger nets (the ``deep`` and ``unet-small`` presets) show their first and last convolutions.
:func:`patch_figure` shows one patch's denoised-vs-clean scatter with the 45° line and the
intensity histograms of noisy, denoised and clean. Like :mod:`napari_cryoden.plotting.reports`,
pyplot is never imported: the napari widgets draw these figures and the CLI could save the same
ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

__all__ = ["KernelPanel", "kernel_panels", "kernel_mosaic", "weights_figure", "patch_figure",
           "MAX_HIDDEN_KERNELS", "ROW_KERNELS", "KERNEL_CMAP", "MAX_PLOT_PIXELS"]

MAX_HIDDEN_KERNELS = 256
"""Hidden layers are drawn while they hold at most this many kernels in all (the seed's 256)."""
ROW_KERNELS = 16
"""A layer with one input or output channel is drawn in rows of this many kernels."""
KERNEL_CMAP = "RdBu_r"
MAX_PLOT_PIXELS = 1 << 18
""":func:`patch_figure` plots at most this many pixels of each image (every n-th one)."""
_LAYER_KEY = re.compile(r"^conv(\d+)\.(weight|bias)$")
_COLORS = {"noisy": "#9e9e9e", "denoised": "#1f77b4", "clean": "#d62728"}  # as plotting.py


@dataclass(frozen=True)
class KernelPanel:
    """One convolution layer: ``weight`` (out, in, kH, kW) and ``bias`` (out,) as float arrays."""

    name: str
    weight: np.ndarray
    bias: np.ndarray

    @property
    def n_kernels(self) -> int:
        """Number of 2D kernels, ``out × in``."""
        return int(self.weight.shape[0] * self.weight.shape[1])

    @property
    def title(self) -> str:
        """Panel title, e.g. ``conv1 (1→48): 48 kernels 3×3``."""
        out, inp, kh, kw = self.weight.shape
        return f"{self.name} ({inp}→{out}): {self.n_kernels} kernels {kh}×{kw}"


def kernel_panels(state: Any) -> list[KernelPanel]:
    """Collect the convolution layers of a model or state dict, in order ``conv1 … convN``.

    Parameters
    ----------
    state
        A model (anything with ``state_dict()``) or a mapping of ``conv{k}.weight`` /
        ``conv{k}.bias`` to tensors or arrays; other keys (e.g. optimizer state) are ignored.
    """
    if hasattr(state, "state_dict"):
        state = state.state_dict()
    if not isinstance(state, Mapping):
        raise TypeError(f"need a model or a state dict, got {type(state).__name__}")
    layers: dict[int, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        match = _LAYER_KEY.match(key)
        if match:
            layers.setdefault(int(match[1]), {})[match[2]] = _to_numpy(value)
    panels = []
    for k in sorted(layers):
        weight = layers[k].get("weight")
        if weight is None or weight.ndim != 4:
            raise ValueError(f"conv{k}.weight must have shape (out, in, kH, kW)")
        bias = layers[k].get("bias", np.zeros(weight.shape[0], np.float32))
        panels.append(KernelPanel(f"conv{k}", weight, bias))
    if not panels:
        raise ValueError("no conv{k}.weight tensors in the state dict")
    return panels


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor; torch itself is never imported here
        value = value.detach().to("cpu").float().numpy()
    return np.asarray(value, dtype=np.float32)


def kernel_mosaic(weight: np.ndarray) -> np.ndarray:
    """Kernels tiled into one image, NaN (transparent) one pixel between neighbours.

    A layer with one input or one output channel gives rows of up to :data:`ROW_KERNELS`
    kernels (conv1's 1 × 16 in one row, a 32-channel layer's in two); otherwise rows are output
    channels and columns input channels (conv2's 16 × 16 grid).
    """
    out, inp, kh, kw = weight.shape
    grid = weight
    if 1 in (out, inp):
        n = out * inp
        cols = min(n, ROW_KERNELS)
        flat = np.full((-(-n // cols) * cols, kh, kw), np.nan, np.float32)
        flat[:n] = weight.reshape(n, kh, kw)
        grid = flat.reshape(-1, cols, kh, kw)
    rows, cols = grid.shape[:2]
    mosaic = np.full((rows * (kh + 1) - 1, cols * (kw + 1) - 1), np.nan, np.float32)
    for r in range(rows):
        for c in range(cols):
            mosaic[r * (kh + 1):r * (kh + 1) + kh, c * (kw + 1):c * (kw + 1) + kw] = grid[r, c]
    return mosaic


def _shown(panels: list[KernelPanel], max_hidden: int) -> tuple[list[KernelPanel], str | None]:
    hidden = panels[1:-1]
    if sum(p.n_kernels for p in hidden) <= max_hidden:
        return panels, None
    names = f"{hidden[0].name}–{hidden[-1].name}" if len(hidden) > 1 else hidden[0].name
    note = (f"{len(panels)} conv layers: showing the first and last, {panels[0].name} and "
            f"{panels[-1].name}\n({names}, {sum(p.n_kernels for p in hidden):,} kernels, "
            "not shown)")
    return [panels[0], panels[-1]], note


def weights_figure(state: Any, *, title: str | None = None,
                   max_hidden_kernels: int = MAX_HIDDEN_KERNELS) -> Figure:
    """Every kernel on one signed, symmetric colour scale, and the biases as bars.

    Parameters
    ----------
    state
        A model or its state dict (see :func:`kernel_panels`).
    title
        Shown above the figure, e.g. the model's name and epoch.
    max_hidden_kernels
        Deeper or wider nets whose hidden layers hold more kernels than this show only their
        first and last layers, and say so in the figure.

    Returns
    -------
    Figure
        One image per shown layer (a mosaic of its kernels, all with the same ``clim``
        ``(-vmax, vmax)``, vmax = the largest ``|weight|`` shown) and one bar axes per layer.
    """
    panels, note = _shown(kernel_panels(state), max_hidden_kernels)
    vmax = max(float(np.abs(p.weight).max()) for p in panels) or 1.0
    norm = Normalize(-vmax, vmax)
    mosaics = [kernel_mosaic(p.weight) for p in panels]
    width = 5.4  # inches of the kernel images
    heights = [max(width * m.shape[0] / m.shape[1] + 0.55, 0.95) for m in mosaics] + [2.1]
    fig = Figure(figsize=(7, sum(heights) + 0.4), layout="constrained")
    grid = fig.add_gridspec(len(panels) + 1, 1, height_ratios=heights)
    kernel_axes, images = [], []
    for row, (panel, mosaic) in enumerate(zip(panels, mosaics, strict=True)):
        ax = fig.add_subplot(grid[row])
        images.append(ax.imshow(mosaic, cmap=KERNEL_CMAP, norm=norm, interpolation="nearest"))
        ax.set_title(panel.title, fontsize="medium")
        _kernel_axes(ax, panel)
        kernel_axes.append(ax)
    fig.colorbar(images[0], ax=kernel_axes, location="right", shrink=0.45, pad=0.02,
                 label=f"weight (one scale, ±{vmax:.3g})")
    bias_grid = grid[-1].subgridspec(1, len(panels),
                                     width_ratios=[max(p.bias.size, 9) for p in panels])
    for col, panel in enumerate(panels):
        _bias_axes(fig.add_subplot(bias_grid[col]), panel)
    heading = "\n".join(t for t in (title, note) if t)
    if heading:
        fig.suptitle(heading, fontsize="medium")
    return fig


def _kernel_axes(ax: Any, panel: KernelPanel) -> None:
    out, inp, kh, kw = panel.weight.shape
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if 1 not in (out, inp):
        ax.set_yticks(*_channel_ticks(out, kh))
        ax.set_xticks(*_channel_ticks(inp, kw))
        ax.set_ylabel("output channel")
        ax.set_xlabel("input channel")
    else:
        n = out * inp
        ax.set_xticks(*_channel_ticks(min(n, ROW_KERNELS), kw))
        if n > ROW_KERNELS:  # wrapped rows: label each row's first channel
            starts = list(range(0, n, ROW_KERNELS))
            ax.set_yticks([r * (kh + 1) + (kh - 1) / 2 for r in range(len(starts))],
                          [f"+{c}" for c in starts])
        ax.set_xlabel("output channel" if inp == 1 else "input channel")
    ax.tick_params(labelsize="small", length=0)


def _channel_ticks(n: int, k: int) -> tuple[list[float], list[str]]:
    """Tick positions at the centres of every few kernels of a mosaic row or column."""
    step = max(n // 8, 1)
    channels = list(range(0, n, step))
    return [c * (k + 1) + (k - 1) / 2 for c in channels], [str(c) for c in channels]


def _bias_axes(ax: Any, panel: KernelPanel) -> None:
    bias = panel.bias
    colors = ["#d62728" if b >= 0 else "#1f77b4" for b in bias]
    ax.bar(np.arange(bias.size), bias, color=colors, width=0.8)
    ax.axhline(0.0, color="#888888", lw=0.8)
    ax.set_title(f"{panel.name} bias", fontsize="small")
    ax.set_xticks(range(0, bias.size, max(bias.size // 4, 1)))
    ax.tick_params(labelsize="x-small")
    if bias.size == 1:  # one bar: say its value, with room for the label
        reach = 2.5 * abs(float(bias[0])) or 1.0
        ax.set(xlim=(-2, 2), ylim=(-reach, reach), xticks=[])
        ax.text(0, bias[0], f"{bias[0]:.3g}", ha="center", fontsize="small", color=colors[0],
                va="bottom" if bias[0] >= 0 else "top")


def _sample(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """Return the pixels of ``image`` as float64, every n-th one past ``max_pixels``."""
    flat = np.asarray(image).ravel()
    step = -(-flat.size // max_pixels)
    return flat[::step].astype(np.float64)


def patch_figure(noisy: np.ndarray | None, denoised: np.ndarray, clean: np.ndarray, *,
                 title: str | None = None, bins: int = 64,
                 max_pixels: int = MAX_PLOT_PIXELS) -> Figure:
    """One patch: denoised vs clean intensities with the 45° line, and intensity histograms.

    Parameters
    ----------
    noisy
        The noisy patch, or ``None`` when there is no noisy image (its histogram is left out).
    denoised, clean
        The denoised and clean patches (same shape).
    title
        Shown above both plots, e.g. the patch's number, position and RMSE.
    bins
        Bins of the 2D histogram (per axis) and of the intensity histograms.
    max_pixels
        Larger images are plotted from every n-th pixel, at most this many: the same
        distributions (a whole 1024² micrograph has 4 times as many), drawn in a fraction of
        the time (each numpy call holds the GIL, so a long one freezes napari's window).
    """
    images = {"noisy": noisy, "denoised": denoised, "clean": clean}
    values = {k: _sample(v, max_pixels) for k, v in images.items() if v is not None}
    pred, target = values["denoised"], values["clean"]
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax_scatter, ax_hist = fig.subplots(1, 2, width_ratios=[1, 1.3])
    low, high = np.percentile(np.concatenate([pred, target]), [0.1, 99.9])
    high = high if high > low else low + 1.0
    *_, image = ax_scatter.hist2d(target, pred, bins=bins, range=[[low, high], [low, high]],
                                  norm=LogNorm(), cmap="viridis", cmin=1)
    ax_scatter.plot([low, high], [low, high], color="#d62728", lw=1.4, ls="--", label="45°")
    ax_scatter.set(xlabel="clean intensity", ylabel="denoised intensity", aspect="equal",
                   xlim=(low, high), ylim=(low, high))
    ax_scatter.legend(loc="upper left", frameon=False, fontsize="small")
    fig.colorbar(image, ax=ax_scatter, shrink=0.8).ax.set_title("pixels", fontsize="small")
    all_values = np.concatenate(list(values.values()))
    h_low, h_high = np.percentile(all_values, [0.5, 99.5])
    h_range = (h_low, h_high if h_high > h_low else h_low + 1.0)
    for name, v in values.items():  # equal bins given as a count and range: numpy's fast path
        density, edges = np.histogram(v, bins, range=h_range, density=True)
        ax_hist.stairs(density, edges, label=name, color=_COLORS[name], lw=1.5)
    ax_hist.set(xlabel="intensity", ylabel="density")
    ax_hist.grid(alpha=0.3)
    ax_hist.legend(frameon=False, fontsize="small")
    if title:
        fig.suptitle(title, fontsize="medium")
    return fig
