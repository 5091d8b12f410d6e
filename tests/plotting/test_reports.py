"""Figure builders: pure data → Figure, no pyplot, savable as PNG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from napari_cryoden.plotting.reports import (
    histogram_figure,
    loss_figure,
    panel_figure,
    save_figure,
    scatter_figure,
    smooth,
)

EPOCHS = [{"epoch": 1, "train_loss": 0.02, "val_loss": 0.015},
          {"epoch": 2, "train_loss": 0.012, "val_loss": None},
          {"epoch": 3, "train_loss": 0.010, "val_loss": 0.011}]


def _png_ok(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_building_figures_never_imports_pyplot(tmp_path: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from napari_cryoden.plotting import reports as p\n"
        "a = np.random.default_rng(0).random((32, 32))\n"
        "figs = [p.loss_figure([1.0, 0.5], [{'epoch': 1, 'train_loss': 1.0}]),\n"
        "        p.scatter_figure(a, a), p.panel_figure(a, a, a),\n"
        "        p.histogram_figure(np.linspace(0, 1, 5), {'clean': [1, 2, 3, 4]})]\n"
        f"for i, f in enumerate(figs): p.save_figure(f, r'{tmp_path}' + f'/{{i}}.png')\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert all(_png_ok(tmp_path / f"{i}.png") for i in range(4))


def test_loss_figure_panels_and_curves() -> None:
    steps = [{"loss": 0.05 / (1 + i)} for i in range(30)]
    fig = loss_figure(steps, EPOCHS)
    step_ax, epoch_ax = fig.axes
    assert [line.get_label() for line in step_ax.lines] == ["train (per step)",
                                                            "train (smoothed)"]
    train, val = epoch_ax.lines
    assert list(train.get_xdata()) == [1, 2, 3]
    assert list(val.get_xdata()) == [1, 3]  # an epoch without validation is skipped
    assert len(loss_figure(None, EPOCHS).axes) == 1
    assert len(loss_figure([0.3, 0.2, 0.1], None).axes) == 1
    assert isinstance(loss_figure(None, None), Figure)


def test_smoothing_follows_a_constant_and_damps_noise() -> None:
    assert np.allclose(smooth([2.0] * 5), 2.0)  # bias-corrected from the first step
    noisy = 1 + 0.5 * np.random.default_rng(0).standard_normal(400)
    assert np.std(smooth(noisy)[100:]) < 0.5 * np.std(noisy)


def test_scatter_figure_has_the_45_degree_line() -> None:
    rng = np.random.default_rng(1)
    target = rng.random(2000)
    fig = scatter_figure(target + 0.05 * rng.standard_normal(2000), target)
    ax = fig.axes[0]
    diagonal = [line for line in ax.lines
                if np.allclose(line.get_xdata(), line.get_ydata())
                and np.ptp(line.get_xdata()) > 0]
    assert diagonal
    low, high = ax.get_xlim()
    assert ax.get_ylim() == (low, high) and low < 0.05 and high > 0.95
    assert "denoised" in ax.get_ylabel()


def test_histogram_figure_shows_densities() -> None:
    edges = np.linspace(0, 2, 11)
    fig = histogram_figure(edges, {"noisy": np.arange(10), "clean": np.ones(10)})
    ax = fig.axes[0]
    assert [p.get_label() for p in ax.patches] == ["noisy", "clean"]
    for stairs in ax.patches:
        values, drawn_edges, _ = stairs.get_data()
        assert np.sum(values * np.diff(drawn_edges)) == pytest.approx(1.0)


def test_panel_figure_uses_one_contrast_for_all_images() -> None:
    rng = np.random.default_rng(2)
    clean = rng.random((40, 40))
    fig = panel_figure(clean + rng.standard_normal((40, 40)), clean * 0.5, clean)
    clims = {ax.images[0].get_clim() for ax in fig.axes}
    assert len(clims) == 1
    low, high = clims.pop()
    assert low == pytest.approx(np.percentile(clean, 1), rel=1e-5)
    assert high == pytest.approx(np.percentile(clean, 99), rel=1e-5)
    assert [ax.get_title() for ax in fig.axes] == ["noisy", "denoised", "clean"]


def test_save_figure_creates_folders(tmp_path: Path) -> None:
    path = save_figure(loss_figure([0.2, 0.1], None), tmp_path / "a" / "b" / "loss.png")
    assert path.exists() and _png_ok(path)
