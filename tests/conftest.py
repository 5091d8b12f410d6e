"""Shared fixtures: tiny noisy/clean MRC datasets written into tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter


def write_pairs(root: Path, n: int, size: int, seed: int = 0, sigma_noise: float = 0.15,
                pixel_size: float = 1.5) -> tuple[Path, Path]:
    """``n`` pairs of smooth blobs (clean) + Gaussian noise (noisy), values around [0, 1]."""
    rng = np.random.default_rng(seed)
    noisy_dir, clean_dir = root / "noisy", root / "clean"
    noisy_dir.mkdir(parents=True, exist_ok=True)
    clean_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        clean = gaussian_filter(rng.random((size, size)), 2.0)
        clean = (0.3 + 0.5 * (clean - clean.min()) / (np.ptp(clean) + 1e-9)).astype(np.float32)
        noisy = (clean + rng.normal(0, sigma_noise, clean.shape)).astype(np.float32)
        for folder, data in ((noisy_dir, noisy), (clean_dir, clean)):
            with mrcfile.new(folder / f"mic_{i:03d}.mrc", overwrite=True) as mrc:
                mrc.set_data(data)
                mrc.voxel_size = pixel_size
    return noisy_dir, clean_dir


@pytest.fixture
def make_pairs(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    def make(n: int = 4, size: int = 64, seed: int = 0, name: str = "data", **kw):
        return write_pairs(tmp_path / name, n, size, seed, **kw)

    return make
