"""Screenshots of the Train panel training on a micrograph with hot pixels (the user guide's Train).

Run from the repository root (the 1920×1080 window needs a screen at least that large)::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshots_train.py

It writes the simulated 2048² micrograph of ``screenshot_contrast.hot_pixel_micrograph`` (20 hot
pixels at 500, pixel size 1.06 Å), opens it with File ▸ Open's reader, opens Train as Plugins ▸
napari-cryoden ▸ Train does, picks "single noisy micrographs (Noise2Void)" (a real micrograph has
no clean twin) and a short run (:data:`SETTINGS`: the tiny ``seed`` preset, 4 epochs, about
10-20 s on 2 CPU cores), presses Start and waits for the run's end. At 1366×768 (Train alone)
it saves ``guide_train_1366.png``; at 1920×1080, with Denoise docked beside Train and the
micrograph denoised with the run's best model, ``guide_train_1920.png``. Each widget is driven
through its controls and waited on through its signals, never by sleeping.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshot_contrast import hot_pixel_micrograph, save_full_size  # noqa: E402
from screenshots import press_start, settle, show_plot, wait_for  # noqa: E402

WINDOWS = ((1366, 768), (1920, 1080))
DOCK_WIDTHS = {(1366, 768): 520, (1920, 1080): 560}
"""The Train dock's width, dragged a little wider than its minimum for the loss plot."""
SETTINGS = {"train.mode": "n2v", "data.patch_size": 128, "data.val_fraction": 0.1,
            "train.epochs": 4, "train.batch_size": 16, "train.lr": 0.002, "train.device": "cpu",
            "model.preset": "seed"}
"""A short Noise2Void run on the one micrograph: 230 training patches, 15 steps per epoch."""
TWO_DOCK_WIDTHS = (540, 470)
"""Train and Denoise side by side at 1920×1080."""
TIMEOUT_S = 120


def open_train(viewer: Any, width: int) -> tuple[Any, Any]:
    """Plugins ▸ napari-cryoden ▸ Train, the dock dragged to ``width``; waits until every row
    of the panel is shown (they are built over a few event-loop turns)."""
    from qtpy.QtCore import Qt

    dock, panel = viewer.window.add_plugin_dock_widget("napari-cryoden", "Train")
    viewer.window._qt_window.resizeDocks([dock], [width], Qt.Orientation.Horizontal)
    while not panel.rows.done:
        settle(20)
    return dock, panel


def train(panel: Any, run_dir: Path) -> float:
    """Set :data:`SETTINGS` in the form, press Start, wait for the end; the seconds it took."""
    for key, value in SETTINGS.items():
        panel.form.widget(key).value = value  # "preset" is an Advanced row: built on first use
    panel.run_folder.value = run_dir
    return press_start(panel)


def denoise_beside(viewer: Any, train_dock: Any, best: Path) -> None:
    """Dock Denoise to the right of Train and denoise the micrograph with ``best``."""
    from qtpy.QtCore import Qt

    window = viewer.window._qt_window
    dock, panel = viewer.window.add_plugin_dock_widget("napari-cryoden", "Denoise")
    window.splitDockWidget(train_dock, dock, Qt.Orientation.Horizontal)  # side by side
    settle()
    window.resizeDocks([train_dock, dock], list(TWO_DOCK_WIDTHS), Qt.Orientation.Horizontal)
    settle()
    panel.model.value = best  # the run's entry in the model list is its weight file
    panel.device.value = "cpu"
    panel.pixel_cutoff.value = 5.0  # the 20 hot pixels clipped, as --pixel-cutoff 5
    wait_for(panel.finished, panel.denoise_button.native.click, TIMEOUT_S)


def shoot(viewer: Any, path: Path) -> None:
    settle(600)
    image = viewer.screenshot(canvas_only=False, flash=False)
    how = save_full_size(image, path)
    print(f"wrote {path} {image.shape[1]}x{image.shape[0]} ({path.stat().st_size // 1024} KB, "
          f"{how})", flush=True)


def train_at(size: tuple[int, int], micrograph: Path, scratch: Path, out: Path) -> None:
    import napari

    viewer = napari.Viewer(title="napari-cryoden", show=True)
    viewer.window._qt_window.resize(*size)
    [layer] = viewer.open(micrograph, plugin="napari-cryoden")
    viewer.reset_view()
    dock, panel = open_train(viewer, DOCK_WIDTHS[size])
    run_dir = scratch / f"run-{size[0]}"
    seconds = train(panel, run_dir)
    print(f"{size[0]}x{size[1]}: trained {SETTINGS['train.epochs']} epochs in {seconds:.1f} s; "
          f"{panel.status.text()}", flush=True)
    if size[0] >= 1920:
        denoise_beside(viewer, dock, run_dir / "best.safetensors")
        viewer.layers[layer.name].visible = False  # the result shows; the input is a click away
        viewer.scene.camera.zoom = 1.0 / float(layer.scale[-1])  # 1 screen pixel per image pixel
    show_plot(panel)  # the panel scrolled down to the whole loss plot
    shoot(viewer, out / f"guide_train_{size[0]}.png")
    viewer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    begin = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        micrograph = hot_pixel_micrograph(Path(tmp) / "exposure.mrc")
        for size in WINDOWS:
            train_at(size, micrograph, Path(tmp), args.out)
    print(f"whole script: {time.perf_counter() - begin:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
