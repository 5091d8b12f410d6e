"""Screenshots of the Denoise panel at work on a micrograph with hot pixels, for the user guide.

Run from the repository root (the window needs a screen at least 1920×1080)::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshots_denoise.py

It writes the simulated 2048² micrograph with 20 hot pixels of
``screenshot_contrast.hot_pixel_micrograph`` as MRC, opens it with File ▸ Open's reader
(``viewer.open(path, plugin="napari-cryoden")``, so its contrast ignores the hot pixels), and
denoises it with the model the panel starts with (the shipped ``general``) on the CPU, hot pixels
clipped at 5 σ (under *Advanced*, opened). It saves ``guide_denoise_1366.png`` (the Denoise panel
alone in a 1366×768 window, its default rows: Smoothing 16 px on the background) and
``guide_denoise_1920.png`` (1920×1080, Train docked below it, Smoothing 0: the model's output as
it is), each after the ``"<name> denoised"`` layer has appeared, and prints the time of each run.

Then a physics-grade sum (``cryoden simulate --physics``, one 1024² micrograph at 1.5 Å/px, 40
e/Å² in 30 frames, seed 407) is denoised twice in a 1366×768 window, zoomed 2× on its centre:
``guide_denoise_flat_1366.png`` with the default rows (Smoothing 16 on the background: the
ice flattened, the particles kept) and ``guide_denoise_flat_off_1366.png`` with Smoothing 0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshot_contrast import hot_pixel_micrograph  # noqa: E402
from screenshots import MAX_BYTES, settle, wait_for  # noqa: E402

SHOTS = {(1366, 768): ("guide_denoise_1366.png", (16.0, "background", 0.0)),
         (1920, 1080): ("guide_denoise_1920.png", (0.0, "background", 0.0))}
"""file, (Smoothing σ px, Smooth where, Detail kept)"""
PHYSICS_SHOTS = {"guide_denoise_flat_1366.png": (16.0, "background", 0.0),
                 "guide_denoise_flat_off_1366.png": (0.0, "background", 0.0)}
PHYSICS = ["--physics", "--n", "1", "--size", "1024", "--seed", "407", "--pixel-size", "1.5:1.5",
           "--dose", "40:40", "--frames", "30:30"]
"""The ``cryoden simulate`` flags of the physics-grade micrograph."""
CUTOFF = 5.0  # σ: Topaz's --pixel-cutoff for counting data


def save_small(image: np.ndarray, path: Path) -> str:
    """Save as PNG under ``MAX_BYTES``: fewer grey levels first, then a smaller size."""
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(image[..., :3]))
    for scale in (1.0, 0.9, 0.8, 0.75, 0.7, 0.6, 0.5):
        size = (round(picture.width * scale), round(picture.height * scale))
        shown = picture if scale == 1.0 else picture.resize(size, Image.Resampling.LANCZOS)
        for colours in (256, 128, 64, 32):
            shown.quantize(colours, dither=Image.Dither.NONE).save(path, optimize=True)
            if path.stat().st_size <= MAX_BYTES:
                return f"{colours} colours, scale {scale:.2f}"
    return "over the size limit"


def shoot(micrograph: Path, size: tuple[int, int], out: Path,
          smooth: tuple[float, str, float], zoom: float = 1.0) -> str:
    """Open ``micrograph``, denoise it in a ``size`` window, save ``out``; return the status."""
    import napari

    from napari_cryoden._qt.denoise.widget import DenoiseWidget

    viewer = napari.Viewer()
    viewer.window._qt_window.resize(*size)
    [layer] = viewer.open(micrograph, plugin="napari-cryoden")
    panel = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(panel, name="Denoise")
    panel.advanced_section.expand(animate=False)
    settle(200)
    if size[1] >= 1080:  # room for a second panel
        from napari_cryoden._qt.train.widget import TrainWidget

        viewer.window.add_dock_widget(TrainWidget(viewer), name="Train")
    panel.device.value = "cpu"
    panel.pixel_cutoff.value = CUTOFF
    panel.smooth.value, panel.smooth_where.value, panel.keep_detail.value = smooth
    settle(2000)  # the panel's warm-up import of torch ends
    wait_for(panel.finished, panel.denoise_button.native.click, timeout_s=600)
    viewer.reset_view()
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari 0.9
    camera.zoom *= zoom
    settle(800)
    image = viewer.screenshot(canvas_only=False, flash=False)
    how = save_small(image, out)
    model, status = panel.model.native.currentText(), str(panel.status.value)
    print(f"wrote {out} {image.shape[1]}x{image.shape[0]} ({out.stat().st_size // 1024} KB, "
          f"{how}); {layer.name} with {model}: {status}", flush=True)
    viewer.close()
    return status


def main(argv: list[str] | None = None) -> int:
    """Write the micrograph, then take the screenshot at each window size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        micrograph = hot_pixel_micrograph(Path(scratch) / "micrograph_with_hot_pixels.mrc")
        for size, (name, smooth) in SHOTS.items():
            shoot(micrograph, size, args.out / name, smooth)
        from napari_cryoden.cli.main import main as cryoden

        assert cryoden(["simulate", str(Path(scratch) / "physics"), *PHYSICS]) == 0
        physics = Path(scratch) / "physics" / "noisy" / "mic_0000.mrc"
        for name, smooth in PHYSICS_SHOTS.items():
            shoot(physics, (1366, 768), args.out / name, smooth, zoom=2.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
