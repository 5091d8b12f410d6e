"""Screenshot of *Fit to these micrographs* (Denoise panel) after a fit, at 1366×768.

Run from the repository root::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshot_fit.py

It writes a simulated 2048² micrograph with 20 hot pixels
(``screenshot_contrast.hot_pixel_micrograph``) into a scratch folder, opens it, and fits the
shipped ``general-fast`` model to it on the CPU for ``--seconds`` (blind spot: no halves), then
saves ``guide_fit_1366.png`` with the section open: the new Model entry, where the file went and
the before/after report. The panel scrolls (to its end here) so that it fits 768 px.

``--case shared`` opens a physics-grade 1024² sum instead (K3, bicubic motion correction: noise
that neighbouring pixels share) and shows the refusal (``guide_fit_shared_1366.png``);
``--case halves`` opens that sum with its even/odd sums (``_EVN``/``_ODD``) and shows a
Noise2Noise fit with its check on the sums (``guide_fit_halves_1366.png``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshot_contrast import hot_pixel_micrograph, save_full_size  # noqa: E402
from screenshots import settle  # noqa: E402


def wait_until(condition, timeout: float = 600.0) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the fit did not end in time")
        settle(50)


def physics_sums(folder: Path, halves: bool) -> list[Path]:
    """Write a physics-grade 1024² sum (K3, bicubic, 1.5 Å, 40 e/Å²) and, if asked, its halves."""
    import dataclasses

    import numpy as np

    from napari_cryoden.io.images import write_mrc
    from napari_cryoden.simulation.physics.dataset import PhysicsParams, simulate_physics_shot

    base = PhysicsParams()
    params = PhysicsParams(
        dataclasses.replace(base.specimen, pixel_size=(1.5, 1.5)),
        dataclasses.replace(base.exposure, dose=(40.0, 40.0), frames=(30, 30),
                            detectors=("k3",), interpolations=("bicubic",)))
    shot, _ = simulate_physics_shot(params, np.random.SeedSequence(7), (1024, 1024))
    images = {"exposure_001": shot.noisy}
    if halves:
        images |= {"exposure_001_EVN": shot.even, "exposure_001_ODD": shot.odd}
    for name, image in images.items():
        write_mrc(folder / f"{name}.mrc", image, shot.pixel_size)
    return [folder / f"{name}.mrc" for name in images]


def main(argv: list[str] | None = None) -> int:
    """Fit, then take the screenshot."""
    import napari
    from qtpy.QtCore import Qt

    from napari_cryoden._qt.denoise.widget import DenoiseWidget

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--case", choices=("white", "shared", "halves"), default="white")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "session_01"
        folder.mkdir()
        paths = ([hot_pixel_micrograph(folder / "exposure_001.mrc")] if args.case == "white"
                 else physics_sums(folder, halves=args.case == "halves"))
        viewer = napari.Viewer()
        viewer.window._qt_window.resize(1366, 768)
        for path in paths:
            viewer.open(path, plugin="napari-cryoden")
        viewer.layers.selection.active = viewer.layers[0]
        panel = DenoiseWidget(viewer)
        dock = viewer.window.add_dock_widget(panel, name="Denoise")
        viewer.window._qt_window.resizeDocks([dock], [520], Qt.Orientation.Horizontal)
        panel.model.native.setCurrentIndex(panel.model.native.findText("general-fast (shipped)"))
        panel.device.value = "cpu"
        fit = panel.fit
        fit.section.expand(animate=False)
        fit.seconds.value = args.seconds
        wait_until(lambda: fit.ready)
        fit.fit_button.native.click()
        wait_until(lambda: not fit.busy)
        print(fit.status.value, "\n", fit.report.value, flush=True)
        settle()
        bar = panel.scroll_area.verticalScrollBar()  # the section's end, as a user scrolls to
        bar.setValue(bar.maximum())
        settle()
        image = viewer.screenshot(canvas_only=False, flash=False)
        out = args.out / ("guide_fit_1366.png" if args.case == "white"
                          else f"guide_fit_{args.case}_1366.png")
        how = save_full_size(image, out)
        print(f"wrote {out} {image.shape[1]}x{image.shape[0]} "
              f"({out.stat().st_size // 1024} KB, {how})", flush=True)
        viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
