"""Screenshots of *Denoise files on disk…* (Denoise panel): mid-run, then done with one result open.

Run from the repository root::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshot_folder.py [--star]

It writes six simulated 2048² micrographs with 20 hot pixels each (as
``screenshot_contrast.hot_pixel_micrograph``, one seed per file) into a scratch folder, opens the
first, and denoises the folder with the shipped ``general-fast`` model on the CPU into
``<folder>/denoised``. At 1366×768 and 1920×1080 it saves ``guide_folder_running_<size>.png``
(while the third file runs) and ``guide_folder_done_<size>.png`` (the first result opened).

``--star``: three such micrographs in a RELION project (``MotionCorr/job002/Movies/``), listed by
``CtfFind/job003/micrographs_ctf.star``, which is chosen under Micrographs (the project folder
left to be found); ``guide_folder_star_<size>.png`` shows the finished run, the STAR file written.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshot_contrast import save_full_size  # noqa: E402
from screenshots import settle  # noqa: E402

WINDOWS = ((1366, 768), (1920, 1080))
FILES = 6


def hot_pixel_micrographs(folder: Path, n: int) -> None:
    """Write ``n`` simulated 2048² micrographs with 20 hot pixels at 500 (pixel size 1.06 Å)."""
    from napari_cryoden.io.images import write_mrc
    from napari_cryoden.simulation.micrographs import simulate_micrograph
    from napari_cryoden.simulation.params import HIGH_CONTRAST

    for i in range(n):
        noisy, _ = simulate_micrograph(HIGH_CONTRAST, np.random.default_rng(i), 2048)
        rng = np.random.default_rng(100 + i)
        noisy[rng.integers(0, 2048, 20), rng.integers(0, 2048, 20)] = 500.0
        write_mrc(folder / f"exposure_{i + 1:03d}.mrc", noisy, 1.06)


def wait_until(condition, timeout: float = 600.0) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the run did not get there in time")
        settle(50)


def shoot(viewer, path: Path) -> None:  # noqa: ANN001
    settle()
    image = viewer.screenshot(canvas_only=False, flash=False)
    how = save_full_size(image, path)
    print(f"wrote {path} {image.shape[1]}x{image.shape[0]} ({path.stat().st_size // 1024} KB, "
          f"{how})", flush=True)


def open_panel(size: tuple[int, int], micrograph: Path):  # noqa: ANN201
    """A viewer at ``size`` with ``micrograph`` open and the Denoise panel's files section open
    on general-fast (shipped), CPU."""
    import napari

    from napari_cryoden._qt._models import SHIPPED_LABELS
    from napari_cryoden._qt.denoise.widget import DenoiseWidget

    viewer = napari.Viewer()
    viewer.window._qt_window.resize(*size)
    viewer.open(micrograph, plugin="napari-cryoden")
    panel = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(panel, name="Denoise")
    fast = next(label for label, name in SHIPPED_LABELS.items() if name == "general-fast")
    panel.model.native.setCurrentIndex(panel.model.native.findText(fast))
    panel.device.value = "cpu"
    panel.folder.section.expand(animate=False)
    return viewer, panel, panel.folder


def run_at(size: tuple[int, int], folder: Path, out: Path) -> None:
    viewer, _, section = open_panel(size, sorted(folder.glob("*.mrc"))[0])
    section.inputs.line_edit.value = str(folder)
    section.existing.value = "overwrite"
    section.start_button.native.click()
    tag = f"{size[0]}x{size[1]}"
    wait_until(lambda: section.status.value.startswith("file 3/") and "left" in
               section.status.value)
    shoot(viewer, out / f"guide_folder_running_{tag}.png")
    wait_until(lambda: not section.busy)
    section.done_list.native.item(0).setSelected(True)
    section.open_button.native.click()
    viewer.layers.selection.active = viewer.layers[-1]
    print(f"{tag}: {section.status.value}", flush=True)
    shoot(viewer, out / f"guide_folder_done_{tag}.png")
    viewer.close()


def relion_project(root: Path, n: int) -> Path:
    """A RELION project of ``n`` hot-pixel micrographs and the CtfFind STAR file listing them."""
    movies = root / "MotionCorr/job002/Movies"
    movies.mkdir(parents=True)
    hot_pixel_micrographs(movies, n)
    star = root / "CtfFind/job003/micrographs_ctf.star"
    star.parent.mkdir(parents=True)
    rows = "".join(f"MotionCorr/job002/Movies/{p.name} 1 {12000 + 500 * i}.0\n"
                   for i, p in enumerate(sorted(movies.glob("*.mrc"))))
    star.write_text("data_optics\n\nloop_\n_rlnOpticsGroupName #1\n_rlnOpticsGroup #2\n"
                    "_rlnMicrographPixelSize #3\nopticsGroup1 1 1.06\n\n"
                    "data_micrographs\n\nloop_\n_rlnMicrographName #1\n_rlnOpticsGroup #2\n"
                    "_rlnDefocusU #3\n" + rows)
    return star


def run_star_at(size: tuple[int, int], star: Path, out: Path) -> None:
    movies = star.parents[2] / "MotionCorr/job002/Movies"
    viewer, panel, section = open_panel(size, sorted(movies.glob("*.mrc"))[0])
    section.inputs.line_edit.value = str(star)
    section.existing.value = "overwrite"
    section.start_button.native.click()
    wait_until(lambda: section.results and not section.busy)
    section.done_list.native.item(0).setSelected(True)
    section.open_button.native.click()
    viewer.layers.selection.active = viewer.layers[-1]
    tag = f"{size[0]}x{size[1]}"
    print(f"{tag}: {section.status.value}", flush=True)
    settle()
    panel.scroll_area.ensureWidgetVisible(section.status.native)  # as a user scrolls to it
    shoot(viewer, out / f"guide_folder_star_{tag}.png")
    viewer.close()


def main(argv: list[str] | None = None) -> int:
    """Write the micrographs, then take both screenshots at each window size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--star", action="store_true", help="a RELION STAR file's micrographs")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.star:
        with tempfile.TemporaryDirectory() as scratch:
            star = relion_project(Path(scratch) / "relion_project", 3)
            for size in WINDOWS:
                run_star_at(size, star, args.out)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "micrographs"
        folder.mkdir()
        hot_pixel_micrographs(folder, FILES)
        for size in WINDOWS:
            run_at(size, folder, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
