"""Screenshot of the Denoise panel's Working pixel size row at work, for the user guide.

Run from the repository root::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshot_scale.py

It writes the simulated 2048² micrograph with 20 hot pixels of
``screenshot_contrast.hot_pixel_micrograph`` with a header pixel size of 0.4 Å (a
super-resolution sum, finer than the shipped models' 0.6–2.5 Å), opens it with File ▸ Open's
reader, and denoises it with the shipped ``general-fast`` on the CPU (hot pixels clipped at
5 σ) with *Working pixel size*
left at auto (under *Advanced*, opened): the panel bins it ×1.5 to 0.6 Å/px and pads the result
back. It saves ``guide_denoise_scale_1366.png`` (1366×768) after the result has appeared and
prints the status line. Then it writes the same micrograph with a voxel size of 0 (unknown),
clicks Denoise, and saves ``guide_denoise_scale_ask_1366.png``: the panel asks for the pixel size
under Image and runs nothing.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import mrcfile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshot_contrast import hot_pixel_micrograph  # noqa: E402
from screenshots import settle, wait_for  # noqa: E402
from screenshots_denoise import save_small  # noqa: E402

OUT = Path("docs/images/guide_denoise_scale_1366.png")
ASK = Path("docs/images/guide_denoise_scale_ask_1366.png")
PIXEL_SIZE = 0.4  # Å


def open_panel(path: Path) -> tuple[object, object]:
    """A 1366×768 viewer with ``path`` opened and the Denoise panel (general-fast, CPU)."""
    import napari

    from napari_cryoden._qt.denoise.widget import DenoiseWidget
    from napari_cryoden.models.pretrained import shipped_path

    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1366, 768)
    viewer.open(path, plugin="napari-cryoden")
    panel = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(panel, name="Denoise")
    panel.advanced_section.expand(animate=False)
    panel.model.value = shipped_path("general-fast")
    panel.device.value = "cpu"
    panel.pixel_cutoff.value = 5.0  # σ: the hot pixels, as the guide's other shots
    settle(2000)  # the panel's warm-up import of torch ends
    return viewer, panel


def shoot(viewer: object, panel: object, out: Path) -> None:
    """Save the window as ``out`` and print the panel's status line."""
    viewer.reset_view()
    panel.scroll_area.ensureWidgetVisible(panel.scale_choice.native)
    settle(800)
    image = viewer.screenshot(canvas_only=False, flash=False)
    how = save_small(image, out)
    print(f"wrote {out} {image.shape[1]}x{image.shape[0]} ({out.stat().st_size // 1024} KB, "
          f"{how}); status: {panel.status.value}", flush=True)
    viewer.close()


def main() -> int:
    """Write the micrographs, denoise one in the panel, be asked about the other; save both."""
    with tempfile.TemporaryDirectory() as tmp:
        path = hot_pixel_micrograph(Path(tmp) / "superres_0.4A.mrc")
        with mrcfile.open(path, "r+") as mrc:
            mrc.voxel_size = PIXEL_SIZE
        viewer, panel = open_panel(path)
        wait_for(panel.finished, panel.denoise_button.native.click, timeout_s=600)
        shoot(viewer, panel, OUT)
        unknown = Path(tmp) / "no_pixel_size.mrc"
        path.rename(unknown)
        with mrcfile.open(unknown, "r+") as mrc:
            mrc.voxel_size = 0.0
        viewer, panel = open_panel(unknown)
        panel.denoise_button.native.click()  # asks, runs nothing
        shoot(viewer, panel, ASK)
    return 0


if __name__ == "__main__":
    sys.exit(main())
