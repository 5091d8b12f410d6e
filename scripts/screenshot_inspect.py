"""Screenshots of Inspect (a hot-pixel micrograph and its denoised result, analysed) and Weights.

Run from the repository root::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshot_inspect.py

It writes the simulated 2048² micrograph of ``screenshot_contrast.hot_pixel_micrograph`` (20 hot
pixels at 500, pixel size 1.06 Å) and its noise-free target (``exposure_clean.mrc``), opens both
with File ▸ Open's reader, denoises the micrograph with the shipped ``general-fast`` model on the
CPU (``pixel_cutoff=5``, as ``cryoden denoise --pixel-cutoff 5``) into the layer
``exposure denoised`` (the Denoise panel's name), then, in the Inspect panel, presses Analyse
(patch size 256), sorts by RMSE, clicks the worst patch and turns the RMSE metric map on. At
1366×768 and 1920×1080 it saves ``guide_inspect_<size>.png`` and, with the Weights panel showing
the shipped ``general`` model, ``guide_weights_<size>.png``. Each widget is driven through its
controls and waited on through its signals.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshot_contrast import save_full_size  # noqa: E402
from screenshots import settle, wait_for  # noqa: E402

WINDOWS = ((1366, 768), (1920, 1080))
DOCK_WIDTHS = {(1366, 768): {"Inspect": 520, "Weights": 470},
               (1920, 1080): {"Inspect": 660, "Weights": 600}}
"""Docks dragged wider than their minimum, as a user would for the plots."""


def micrograph_pair(folder: Path) -> tuple[Path, Path]:
    """``exposure.mrc`` (hot pixels, as hot_pixel_micrograph) and ``exposure_clean.mrc``."""
    from screenshot_contrast import hot_pixel_micrograph

    from napari_cryoden.io.images import write_mrc
    from napari_cryoden.simulation.micrographs import simulate_micrograph
    from napari_cryoden.simulation.params import HIGH_CONTRAST

    noisy = hot_pixel_micrograph(folder / "exposure.mrc")
    _, clean = simulate_micrograph(HIGH_CONTRAST, np.random.default_rng(0), 2048)
    write_mrc(folder / "exposure_clean.mrc", clean, 1.06)
    return noisy, folder / "exposure_clean.mrc"


def shoot(viewer: Any, path: Path) -> None:
    settle()
    image = viewer.screenshot(canvas_only=False, flash=False)
    how = save_full_size(image, path)
    print(f"wrote {path} {image.shape[1]}x{image.shape[0]} ({path.stat().st_size // 1024} KB, "
          f"{how})", flush=True)


def dock(viewer: Any, panel: Any, name: str, size: tuple[int, int]) -> None:
    from qtpy.QtCore import Qt

    widget = viewer.window.add_dock_widget(panel, name=name)
    viewer.window._qt_window.resizeDocks([widget], [DOCK_WIDTHS[size][name]],
                                         Qt.Orientation.Horizontal)
    settle()


def inspect_at(size: tuple[int, int], noisy: Path, clean: Path, out: Path) -> None:
    import napari
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QSplitter

    from napari_cryoden import denoise
    from napari_cryoden._qt.inspect_widget import COLUMNS, InspectWidget
    from napari_cryoden.io.intensity import contrast_limits

    viewer = napari.Viewer()
    viewer.window._qt_window.resize(*size)
    viewer.open(clean, plugin="napari-cryoden")
    [layer] = viewer.open(noisy, plugin="napari-cryoden")
    result = denoise(np.asarray(layer.data), "general-fast", device="cpu", pixel_cutoff=5)
    viewer.add_image(result, name=f"{layer.name} denoised", scale=layer.scale,
                     contrast_limits=contrast_limits(result))
    panel = InspectWidget(viewer)
    dock(viewer, panel, "Inspect", size)
    panel.patch_size.value = 256
    wait_for(panel.canvas.rendered, panel.analyse_button.native.click, timeout_s=300)
    rmse = [c[0] for c in COLUMNS].index("RMSE")
    panel.table.sortByColumn(rmse, Qt.SortOrder.DescendingOrder)  # as a header click, twice
    wait_for(panel.canvas.rendered, lambda: panel.table.selectRow(0))
    wait_for(panel.canvas.rendered, lambda: setattr(panel.show_map, "value", True))
    splitter = panel.findChild(QSplitter)
    splitter.setSizes([1, 10_000])  # the table at its 5 rows, as a user drags the handle up
    settle(800)  # the layout follows, then the plot is redrawn at its new size
    wait_for(panel.canvas.rendered, panel._show_plot)  # drawn afresh at its final size
    bar = panel.scroll_area.verticalScrollBar()
    bar.setValue(bar.maximum())  # chips, table and the whole plot with the map's colour bar
    shoot(viewer, out / f"guide_inspect_{size[0]}x{size[1]}.png")
    viewer.close()


def weights_at(size: tuple[int, int], out: Path) -> None:
    import napari

    from napari_cryoden._qt.weights_widget import WeightsWidget

    viewer = napari.Viewer()
    viewer.window._qt_window.resize(*size)
    viewer.open_sample("napari-cryoden", "synthetic")
    panel = WeightsWidget(viewer)
    dock(viewer, panel, "Weights", size)
    wait_for(panel.canvas.rendered,
             lambda: setattr(panel.model_choice, "value", "general (shipped)"))
    shoot(viewer, out / f"guide_weights_{size[0]}x{size[1]}.png")
    viewer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        noisy, clean = micrograph_pair(Path(tmp))
        for size in WINDOWS:
            inspect_at(size, noisy, clean, args.out)
            weights_at(size, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
