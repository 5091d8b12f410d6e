"""Topaz-Denoise in a process of its own: never imported here (its model files are pickles).

:func:`topaz_denoise` writes the micrographs as MRC files and runs ``python -m
topaz.commands.denoise`` — the module behind ``topaz denoise``, with its own argument parser and
defaults (shipped ``unet``, patches of 1024 px padded by 500, no low-pass, no pixel cutoff, MRC
output in the input's units: Topaz standardises each micrograph itself and adds the mean and
standard deviation back) — in the Python of a separate environment. The module route avoids the
``topaz`` entry point, which imports torchvision for its other commands.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import mrcfile
import numpy as np

from napari_cryoden.io.images import write_mrc

DEFAULT_TOPAZ_PYTHON = Path("/work/topaz-venv/bin/python")
SETUP = ("set up Topaz-Denoise 0.3.20 in a venv of its own and pass its python with "
         "--topaz-python:\n  python -m venv --system-site-packages V && "
         "V/bin/pip install topaz-em==0.3.20\n(if V's torchvision is a CUDA build that breaks "
         "on a CPU torch, remove it: V/bin/pip uninstall torchvision; topaz's denoise module "
         "does not need it)")


def topaz_python(given: Path | None) -> Path:
    """The Python that runs Topaz: ``given``, else the default venv; exits with SETUP if none."""
    path = given or DEFAULT_TOPAZ_PYTHON
    if not path.exists():
        raise SystemExit(f"no Topaz python at {path}; {SETUP}")
    check = subprocess.run([str(path), "-c", "import topaz, topaz.denoise; "
                            "print(topaz.__version__)"], capture_output=True, text=True)
    if check.returncode:
        raise SystemExit(f"{path} cannot import topaz.denoise:\n{check.stderr[-800:]}\n{SETUP}")
    print(f"Topaz {check.stdout.strip()} from {path}", file=sys.stderr)
    return path


def topaz_argv(python: Path, inputs: Sequence[Path], out: Path, model: str = "unet"
               ) -> list[str]:
    """The command line of ``topaz denoise -d -1 --arch MODEL -o OUT INPUTS`` (CPU)."""
    return [str(python), "-m", "topaz.commands.denoise", "-d", "-1", "--arch", model,
            "-o", str(out), *map(str, inputs)]


def topaz_denoise(python: Path, images: Sequence[np.ndarray], model: str = "unet"
                  ) -> list[np.ndarray]:
    """Denoise 2D images with Topaz's shipped ``model`` in one subprocess; same units back."""
    with tempfile.TemporaryDirectory(prefix="topaz_") as tmp:
        folder = Path(tmp)
        inputs = [folder / f"in_{i:04d}.mrc" for i in range(len(images))]
        for path, image in zip(inputs, images, strict=True):
            write_mrc(path, np.asarray(image, np.float32), 1.0)
        done = subprocess.run(topaz_argv(python, inputs, folder / "out", model),
                              capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"topaz denoise failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return [np.asarray(mrcfile.read(folder / "out" / p.name), np.float32) for p in inputs]


def wall_time(argv: Sequence[str]) -> float:
    """Seconds from starting ``argv`` to its exit (the whole process: start-up, load, denoise)."""
    start = time.perf_counter()
    done = subprocess.run(list(argv), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return seconds
