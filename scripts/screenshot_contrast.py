"""Screenshots of a micrograph with hot pixels opened in napari: min..max stretch, then as read.

Run from the repository root (a 1366×768 window needs a screen at least that large)::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshot_contrast.py

It simulates a 2048² micrograph (the sample's specimen, pixel size 1.06 Å), sets 20 pixels to 500
(counting-mode outliers), writes it as MRC and opens it with File ▸ Open's reader
(``viewer.open(path, plugin="napari-cryoden")``). ``guide_hot_pixels_before.png`` shows it with
the contrast stretched from the data's minimum to its maximum (what napari does when a reader sets
no limits); ``guide_hot_pixels_after.png`` with the limits the reader sets.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshots import MAX_BYTES, save_png, settle  # noqa: E402  (the guide's helpers)

WINDOW = (1366, 768)


def hot_pixel_micrograph(path: Path) -> Path:
    """Write a simulated 2048² micrograph with 20 hot pixels at 500 to ``path``."""
    from napari_cryoden.io.images import write_mrc
    from napari_cryoden.simulation.micrographs import simulate_micrograph
    from napari_cryoden.simulation.params import HIGH_CONTRAST

    noisy, _ = simulate_micrograph(HIGH_CONTRAST, np.random.default_rng(0), 2048)
    rng = np.random.default_rng(1)
    noisy[rng.integers(0, 2048, 20), rng.integers(0, 2048, 20)] = 500.0
    write_mrc(path, noisy, 1.06)
    return path


def save_full_size(image: np.ndarray, path: Path) -> str:
    """Save at full size, in fewer grey levels if needed (the window is mostly grey); else as
    the guide's other screenshots are saved."""
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(image[..., :3]))
    for colours in (256, 128, 64, 32, 16):
        picture.quantize(colours, dither=Image.Dither.NONE).save(path, optimize=True)
        if path.stat().st_size <= MAX_BYTES:
            return f"{colours} colours"
    return save_png(image, path)


def main(argv: list[str] | None = None) -> int:
    """Open the file in napari and save the two screenshots."""
    import napari

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        path = hot_pixel_micrograph(Path(scratch) / "micrograph_with_hot_pixels.mrc")
        viewer = napari.Viewer()
        viewer.window._qt_window.resize(*WINDOW)
        [layer] = viewer.open(path, plugin="napari-cryoden")
        viewer.reset_view()
        read_limits = tuple(layer.contrast_limits)
        for name, limits in (("before", (float(layer.data.min()), float(layer.data.max()))),
                             ("after", read_limits)):
            layer.contrast_limits = limits
            settle()
            image = viewer.screenshot(canvas_only=False, flash=False)
            target = args.out / f"guide_hot_pixels_{name}.png"
            how = save_full_size(image, target)
            print(f"wrote {target} {image.shape[1]}x{image.shape[0]} "
                  f"({target.stat().st_size // 1024} KB, {how}); contrast {limits[0]:.3f}.."
                  f"{limits[1]:.3f}", flush=True)
        viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
