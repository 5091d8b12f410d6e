"""Screenshots of Compare side by side on a micrograph-like file with hot pixels (issue 14).

Run from the repository root (``xvfb-run`` gives a display-less machine a screen)::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshot_compare.py

It simulates a 2048² micrograph (seeded), sets 20 pixels to 500 (counting-mode outliers), writes
it and its noise-free truth as MRC files, opens both with the plugin's reader in a napari window
of 1366×768 and then of 1920×1080, denoises with the shipped ``general-fast`` model through the
Denoise panel, clicks *Compare side by side* (at 1920×1080 then zooms in on a particle) and
saves ``docs/images/guide_compare_<width>.png``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from screenshots import PLUGIN, save_png, settle, wait_for  # noqa: E402

SHOTS = (((1366, 768), None), ((1920, 1080), (1024.0, 1275.0)))
"""Window size, and where to zoom in after Compare (None: the view Compare opens with)."""
ZOOM = 3.0
"""Screen pixels per micrograph pixel when zoomed in (noise at 1:1 does not fit 300 KB)."""
HOT_PIXELS, HOT_VALUE = 20, 500.0


def write_micrograph(folder: Path, size: int = 2048) -> tuple[Path, Path]:
    """``hotpix.mrc`` (noisy, 20 hot pixels) and ``hotpix_clean.mrc`` (its noise-free truth)."""
    import mrcfile

    from napari_cryoden.simulation.micrographs import simulate_exposure
    from napari_cryoden.simulation.params import SimulationParams

    shot = simulate_exposure(SimulationParams(), np.random.default_rng(3), size)
    noisy, rng = shot.noisy.copy(), np.random.default_rng(1)
    noisy[rng.integers(0, size, HOT_PIXELS), rng.integers(0, size, HOT_PIXELS)] = HOT_VALUE
    paths = folder / "hotpix.mrc", folder / "hotpix_clean.mrc"
    for path, data in zip(paths, (noisy, shot.truth), strict=True):
        with mrcfile.new(path, overwrite=True) as mrc:
            mrc.set_data(data.astype(np.float32))
            mrc.voxel_size = 1.0
    return paths


def shoot(paths: tuple[Path, Path], size: tuple[int, int], out: Path,
          zoom_on: tuple[float, float] | None = None) -> None:
    """Open, denoise with general-fast, Compare (and zoom on ``zoom_on``); save as ``out``."""
    import napari

    viewer = napari.Viewer()
    viewer.window._qt_window.resize(*size)
    noisy, clean = viewer.open([str(p) for p in paths], plugin=PLUGIN)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Denoise")
    settle()
    widget.image.value, widget.model.value = noisy, "general-fast (shipped)"
    wait_for(widget.finished, widget.denoise_button.native.click, 300)
    widget.clean.value = clean
    widget.compare_button.native.click()
    settle(800)
    if zoom_on is not None:  # as a user zooms in on a particle: all panels follow
        viewer.scene.camera.center, viewer.scene.camera.zoom = zoom_on, ZOOM
        settle()
    print(f"{out}: {save_png(viewer.screenshot(canvas_only=False, flash=False), out)}")
    viewer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        paths = write_micrograph(Path(scratch))
        for (width, height), zoom_on in SHOTS:
            shoot(paths, (width, height), args.out / f"guide_compare_{width}.png", zoom_on)


if __name__ == "__main__":
    main()
