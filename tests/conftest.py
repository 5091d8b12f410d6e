"""Shared fixtures: tiny noisy/clean MRC datasets written into tmp_path, and the UI-gap meter.

One conftest.py for all tests: test modules import ``write_pairs`` from ``conftest``, so a
second conftest.py (e.g. under tests/qt/) would shadow it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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

TICK_MS = 20
MAX_GAP_S = 0.1
"""The longest the UI thread may stay blocked: a 20 ms timer must tick at least every 100 ms."""


@dataclass
class UiGaps:
    """The ticks of a 20 ms QTimer on the UI thread; the longest gap between two is the block."""

    ticks: list[float] = field(default_factory=list)

    def tick(self) -> None:
        self.ticks.append(time.perf_counter())

    @property
    def longest(self) -> float:
        """The longest time in seconds between two ticks (or since the start, or until the end)."""
        return max((b - a for a, b in zip(self.ticks, self.ticks[1:], strict=False)), default=0.0)

    def __str__(self) -> str:
        return f"longest UI-thread gap {1000 * self.longest:.0f} ms over {len(self.ticks)} ticks"


@pytest.fixture
def ui_gaps() -> Callable[[], object]:
    """``with ui_gaps() as gaps: <drive the widget>``, then ``assert gaps.longest < MAX_GAP_S``.

    The timer starts before the block's first statement and stops after its last, so a click
    handler that runs for 1 s on the UI thread shows as a 1 s gap. Wait for the action's end
    inside the block with ``qtbot.waitUntil``/``waitSignal`` (they run the event loop).
    """
    from qtpy.QtCore import QTimer

    @contextmanager
    def measure() -> Iterator[UiGaps]:
        gaps = UiGaps()
        timer = QTimer()
        timer.setInterval(TICK_MS)
        timer.timeout.connect(gaps.tick)
        gaps.tick()
        timer.start()
        try:
            yield gaps
        finally:
            timer.stop()
            gaps.tick()

    return measure


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded seed-net weight file (meanstd normalisation): any fixed weights will do.

    Test modules that need other weights define their own ``weights`` fixture, which wins.
    """
    from napari_cryoden.config.sections import Config
    from napari_cryoden.models.checkpoint import save_checkpoint
    from napari_cryoden.models.nets import build_model

    config = Config()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_checkpoint(path, build_model(config.model, seed=0), config, epoch=1)
