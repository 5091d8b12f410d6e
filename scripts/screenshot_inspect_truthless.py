"""Screenshot of Inspect without a clean image: split-frame and region-pair SNR of simulated halves.

Run from the repository root::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshot_inspect_truthless.py

It simulates a 2048² micrograph (``HIGH_CONTRAST``, pixel size 1.06 Å), exposes its noise-free
image twice at half the dose into the even and odd frame sums ``exposure_EVN.mrc`` and
``exposure_ODD.mrc``, gives each 10 hot pixels at 250 (at different places: hot pixels present in
both halves alike would correlate like signal and inflate the raw split-frame SNR), and writes
the simulator's particle centres to ``exposure.coord``. In a 1366×768 napari window it opens both
halves with File ▸ Open's reader (Inspect chooses them by their names), chooses the shipped
``general-fast`` model, sets the box size to 64 px, reads the picks with "Open picks file…"
(circles of the box size) and presses Analyse; then it scrolls the panel to the results and
saves ``docs/images/guide_inspect_truthless.png``. No clean image is opened.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshot_inspect import dock, shoot  # noqa: E402
from screenshots import settle, wait_for  # noqa: E402

SIZE = (1366, 768)
BOX = 64


def halves_and_picks(folder: Path) -> tuple[Path, Path, Path]:
    """Write the even and odd sums (with hot pixels) and the particle centres (.coord)."""
    from napari_cryoden.io.images import write_mrc
    from napari_cryoden.simulation.micrographs import simulate_exposure
    from napari_cryoden.simulation.optics import expose
    from napari_cryoden.simulation.params import HIGH_CONTRAST

    params = HIGH_CONTRAST
    rng = np.random.default_rng(0)
    shot = simulate_exposure(params, rng, 2048)
    hot = np.random.default_rng(1).integers(0, 2048, (2, 2, 10))
    paths = []
    for n, half in enumerate(("EVN", "ODD")):
        image = expose(shot.truth, params.dose / 2, params, rng)
        image[hot[n, 0], hot[n, 1]] = 250.0
        paths.append(folder / f"exposure_{half}.mrc")
        write_mrc(paths[-1], image, params.pixel_size)
    coord = folder / "exposure.coord"
    centres = shot.particle_centres  # (y, x) px
    coord.write_text("".join(f"{x:.1f} {y:.1f}\n" for y, x in centres))
    return paths[0], paths[1], coord


def main(argv: list[str] | None = None) -> int:
    import napari
    from qtpy.QtWidgets import QSplitter

    from napari_cryoden._qt.inspect_widget import InspectWidget

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        even, odd, coord = halves_and_picks(Path(tmp))
        viewer = napari.Viewer()
        viewer.window._qt_window.resize(*SIZE)
        viewer.open(odd, plugin="napari-cryoden")
        viewer.open(even, plugin="napari-cryoden")
        panel = InspectWidget(viewer)
        dock(viewer, panel, "Inspect", SIZE)
        panel.model.value = "general-fast (shipped)"
        panel.truthless.box_size.value = BOX  # a .coord file gives no box size
        wait_for(viewer.layers.events.inserted,
                 lambda: panel.truthless.open_picks_file(coord))
        wait_for(panel.truthless.canvas.rendered, panel.analyse_button.native.click,
                 timeout_s=300)
        panel.findChild(QSplitter).setSizes([1, 10_000])
        settle(800)
        wait_for(panel.truthless.canvas.rendered,
                 lambda: panel.truthless.show(panel.truthless.result))  # at its final size
        bar = panel.scroll_area.verticalScrollBar()
        bar.setValue(bar.maximum())  # chips, summary, the rows and the figure
        shoot(viewer, args.out / "guide_inspect_truthless.png")
        print(panel.summary.text())
        viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
