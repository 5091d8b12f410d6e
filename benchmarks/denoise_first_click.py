"""First Denoise click in napari against ``cryoden denoise`` as a whole process (issue 14, item 2).

Run from the repository root, under a virtual screen::

    PYTHONPATH=src xvfb-run -a .venv/bin/python benchmarks/denoise_first_click.py [--size 1024]

It writes a simulated float32 micrograph (``--size``² px, a few hot pixels) as MRC, then, each in
a fresh Python process:

* the GUI: a napari window with the micrograph and the Denoise panel (model ``general``, device
  cpu); it clicks *Denoise* and times until the ``"<name> denoised"`` layer appears, then clicks
  again (the second click);
* the CLI: ``python -m napari_cryoden.cli denoise general FILE --out DIR --device cpu``, timed as
  a whole process (interpreter start, imports, model load, reading, denoising, writing).

It prints the three times, the GUI/CLI ratio and the torch thread count each side used.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_micrograph(path: Path, size: int) -> Path:
    """A simulated float32 micrograph of ``size``² px with 10 hot pixels at 500, as MRC."""
    from napari_cryoden.io.images import write_mrc
    from napari_cryoden.simulation.micrographs import simulate_micrograph
    from napari_cryoden.simulation.params import HIGH_CONTRAST

    noisy, _ = simulate_micrograph(HIGH_CONTRAST, np.random.default_rng(0), size)
    rng = np.random.default_rng(1)
    noisy[rng.integers(0, size, 10), rng.integers(0, size, 10)] = 500.0
    write_mrc(path, noisy.astype(np.float32), 1.06)
    return path


def time_cli(path: Path, out: Path) -> float:
    """Seconds for ``cryoden denoise general FILE`` as a whole process."""
    command = [sys.executable, "-m", "napari_cryoden.cli", "denoise", "general", str(path),
               "--out", str(out), "--device", "cpu"]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def time_gui(path: Path) -> dict[str, float]:
    """Run :func:`gui_clicks` in a fresh process; its JSON line back."""
    command = [sys.executable, __file__, "--gui", str(path)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def gui_clicks(path: Path) -> dict[str, float]:
    """In this (fresh) process: open napari + Denoise, click twice, time each until the layer."""
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_cryoden._qt.denoise.widget import DenoiseWidget
    from napari_cryoden.io.images import read_image

    viewer = napari.Viewer(show=True)
    image, _ = read_image(path)
    layer = viewer.add_image(np.asarray(image), name="mic")
    widget = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Denoise")
    widget.model.value = widget.model.choices[0]  # the shipped default, general
    widget.device.value = "cpu"
    result = {}
    for click in ("first", "second"):
        done: list[float] = []
        widget.finished.connect(lambda _layer, d=done: d.append(time.perf_counter()))
        start = time.perf_counter()
        widget.denoise_button.clicked.emit()
        while not done:
            QApplication.processEvents()
            time.sleep(0.005)
        result[click] = done[0] - start
    assert f"{layer.name} denoised" in viewer.layers
    result["threads"] = _job_threads(widget)
    viewer.close()
    return result


def _job_threads(widget: object) -> int:
    """torch's CPU threads for the panel's jobs: the job's own count, else torch's default."""
    import torch

    job, _ = widget._make_job()  # type: ignore[attr-defined]
    return getattr(job, "threads", None) or torch.get_num_threads()


def main(argv: list[str] | None = None) -> int:
    """Time the GUI's first and second click and the CLI; print them and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="micrograph edge in px")
    parser.add_argument("--gui", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.gui is not None:
        print(json.dumps(gui_clicks(args.gui)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = write_micrograph(Path(tmp) / "micrograph.mrc", args.size)
        cli = time_cli(path, Path(tmp) / "out")
        gui = time_gui(path)
    print(f"{args.size}² float32 micrograph, model general, cpu, {os.cpu_count()} cores")
    print(f"GUI first click:  {gui['first']:.2f} s  (torch threads of the job: "
          f"{gui['threads']})")
    print(f"GUI second click: {gui['second']:.2f} s")
    print(f"CLI whole process: {cli:.2f} s")
    print(f"ratio first click / CLI: {gui['first'] / cli:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
