"""Qt-free figures of the quality measured without ground truth (split-frame SNR per frequency).

The builders take plain mappings (the report's JSON blocks), so the CLI, the widgets and the
docs draw the same figures from a report read back from disk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["frequency_snr_figure"]


def _db(values: Sequence[float | None]) -> np.ndarray:
    array = np.array([np.nan if v is None else v for v in values], np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(array > 0, 10 * np.log10(array), np.nan)


def frequency_snr_figure(frequency: Mapping[str, Any],
                         extra: Mapping[str, Mapping[str, Any]] | None = None) -> Figure:
    """Split-frame SNR per spatial frequency (dB) and the signal transfer per frequency.

    Parameters
    ----------
    frequency
        A ``split_frame["frequency"]`` block: ``frequency`` (cycles/px), ``pixel_size``,
        ``snr_raw``, ``snr_denoised``, ``transfer`` per ring.
    extra
        More labelled blocks of the same halves denoised otherwise (e.g. Gaussian filters),
        drawn dashed.

    Returns
    -------
    Figure
        Left: SNR(k) of the raw halves and of each denoiser, where the raw halves' FRC is
        significant (the rings where ``transfer`` is not NaN). Right: ``cov(De, Ro) /
        cov(Re, Ro)``, the fraction of each frequency's signal the denoiser kept.
    """
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    snr_ax, transfer_ax = fig.subplots(1, 2)
    pixel = frequency.get("pixel_size") or None
    scale = 1 / pixel if pixel else 1.0
    k = np.asarray(frequency["frequency"], np.float64) * scale
    measured = ~np.isnan(np.asarray(frequency["transfer"], np.float64))
    raw = np.where(measured, _db(frequency["snr_raw"]), np.nan)
    snr_ax.plot(k, raw, color="#9e9e9e", label="raw half")
    curves = {"denoised": frequency, **(extra or {})}
    for i, (label, block) in enumerate(curves.items()):
        style = "-" if i == 0 else "--"
        snr_ax.plot(k, _db(block["snr_denoised"]), style, label=label)
        transfer = [np.nan if v is None else v for v in block["transfer"]]
        transfer_ax.plot(k, transfer, style, label=label)
    transfer_ax.axhline(1.0, color="#9e9e9e", lw=0.8)
    unit = "spatial frequency (1/Å)" if pixel else "spatial frequency (cycles/px)"
    snr_ax.set(xlabel=unit, ylabel="SNR (dB)")
    snr_ax.set_title("split-frame SNR", fontsize=10)
    transfer_ax.set(xlabel=unit, ylabel="cov(De, Ro) / cov(Re, Ro)", ylim=(-0.1, 1.3))
    transfer_ax.set_title("signal kept", fontsize=10)
    snr_ax.legend(fontsize=8)
    transfer_ax.legend(fontsize=8)
    return fig
