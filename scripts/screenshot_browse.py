"""Screenshots of the Browse panel: a RELION STAR file's micrographs, one shown with its picks,
then denoised through the Denoise panel.

Run from the repository root::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshot_browse.py

It writes three simulated 2048² micrographs with 20 hot pixels each into a RELION project
(``screenshot_folder.relion_project``: ``MotionCorr/job002/Movies/`` listed by
``CtfFind/job003/micrographs_ctf.star``) and a ``.box`` pick file per micrograph, placed on the
particles of the simulation's noise-free image (the darkest blobs after a σ = 24 px smoothing,
one per 160 px, none within half a box of the edge: stand-ins for a picker's output). At
1366×768 and 1920×1080 it saves ``guide_browse_<size>.png`` (the second micrograph, its picks
on it) and ``guide_browse_denoised_<size>.png`` (after *Denoise this* with the shipped
``general-fast`` model on the CPU).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshot_folder import WINDOWS, relion_project, shoot, wait_until  # noqa: E402

BOX = 96


def write_picks(movies: Path, picks: Path, n_picks: int = 30) -> None:
    """A ``.box`` file per micrograph: the ``n_picks`` strongest blobs of its clean image."""
    from scipy.ndimage import gaussian_filter, maximum_filter

    from napari_cryoden.simulation.micrographs import simulate_micrograph
    from napari_cryoden.simulation.params import HIGH_CONTRAST

    picks.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(sorted(movies.glob("*.mrc"))):
        _, clean = simulate_micrograph(HIGH_CONTRAST, np.random.default_rng(i), 2048)
        blobs = gaussian_filter(np.median(clean) - clean, 24.0)  # particles are dark
        peaks = (blobs == maximum_filter(blobs, size=160)) & (blobs > 0)
        edge = BOX // 2
        peaks[:edge], peaks[-edge:], peaks[:, :edge], peaks[:, -edge:] = False, False, False, False
        ys, xs = np.nonzero(peaks)
        keep = np.argsort(blobs[ys, xs])[::-1][:n_picks]
        rows = "".join(f"{x - BOX / 2}\t{y - BOX / 2}\t{BOX}\t{BOX}\n"
                       for y, x in zip(ys[keep], xs[keep], strict=True))
        (picks / f"{path.stem}.box").write_text(rows)


def shoot_at(size: tuple[int, int], star: Path, picks: Path, out: Path) -> None:
    import napari

    from napari_cryoden._qt.browse import BrowseWidget

    viewer = napari.Viewer()
    viewer.window._qt_window.resize(*size)
    _, browse = viewer.window.add_plugin_dock_widget("napari-cryoden", "Browse")
    assert isinstance(browse, BrowseWidget)
    browse.source.line_edit.value = str(star)
    wait_until(lambda: browse.layer is not None)
    browse.picks_file.line_edit.value = str(picks)
    wait_until(lambda: browse.points is not None)
    browse.next_button.native.click()
    wait_until(lambda: browse.current == 1 and "picks" in browse.status.value
               and "reading" not in browse.status.value)
    tag = f"{size[0]}x{size[1]}"
    print(f"{tag}: {browse.status.value}", flush=True)
    shoot(viewer, out / f"guide_browse_{tag}.png")
    panel = browse._denoise_panel()
    from napari_cryoden.models.pretrained import shipped_path

    panel.model.value = shipped_path("general-fast")
    panel.device.value = "cpu"
    browse.denoise_button.native.click()
    wait_until(lambda: browse.denoised is not None)
    browse.points.visible = False  # the denoised image on top, unmarked
    viewer.layers.selection.active = browse.denoised
    print(f"{tag}: {browse.status.value}", flush=True)
    shoot(viewer, out / f"guide_browse_denoised_{tag}.png")
    viewer.close()


def main(argv: list[str] | None = None) -> int:
    """Write the project and its picks, then take both screenshots at each window size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        star = relion_project(Path(scratch) / "relion_project", 3)
        picks = Path(scratch) / "relion_project/AutoPick/job004/Movies"
        write_picks(star.parents[2] / "MotionCorr/job002/Movies", picks)
        for size in WINDOWS:
            shoot_at(size, star, picks, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
