"""File > Open of a user's micrograph: robust contrast and the pixel size, in a real viewer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from napari_cryoden.io.images import write_mrc
from napari_cryoden.simulation.micrographs import simulate_micrograph
from napari_cryoden.simulation.params import HIGH_CONTRAST


def test_a_micrograph_with_hot_pixels_opens_with_contrast_on_the_micrograph(
        make_napari_viewer: Any, tmp_path: Path) -> None:
    noisy, _ = simulate_micrograph(HIGH_CONTRAST, np.random.default_rng(0), 2048)
    hot = noisy.copy()
    rng = np.random.default_rng(1)
    hot[rng.integers(0, 2048, 20), rng.integers(0, 2048, 20)] = 500.0  # counting outliers
    path = tmp_path / "hot_pixels.mrc"
    write_mrc(path, hot, 1.06)
    viewer = make_napari_viewer()
    [layer] = viewer.open(path, plugin="napari-cryoden")
    low, high = layer.contrast_limits
    assert high < 2.0, f"contrast {low}..{high} is stretched to the hot pixels: a black image"
    assert np.mean((noisy >= low) & (noisy <= high)) > 0.98
    assert list(layer.scale) == pytest.approx([1.06, 1.06], abs=1e-3)


def test_the_sample_opens_with_the_noisy_micrograph_on_top(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-cryoden", "synthetic")
    assert [layer.name for layer in viewer.layers] == ["clean (simulated)", "noisy (simulated)"]
    assert viewer.layers.selection.active.name == "noisy (simulated)"
