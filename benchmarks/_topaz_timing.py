"""Whole-process CPU time of ``cryoden denoise`` (default model) and Topaz ``unet`` on 4096²."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _topaz import topaz_argv, wall_time

from napari_cryoden.io.images import write_mrc
from napari_cryoden.simulation.micrographs import simulate_exposure
from napari_cryoden.simulation.params import SimulationParams


def _load() -> str:
    return Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else "?"


def time_4096(topaz: Path, cores: str, contrast_scale: float, dose: float) -> dict[str, Any]:
    """Time both on one simulated 4096² micrograph, pinned to ``cores``; print the ratio."""
    pin = ["taskset", "-c", cores] if shutil.which("taskset") else []
    params = SimulationParams(contrast_scale=contrast_scale, dose=dose)
    with tempfile.TemporaryDirectory(prefix="time4096_") as tmp:
        src = Path(tmp) / "mic_4096.mrc"
        write_mrc(src, simulate_exposure(params, np.random.default_rng(0), 4096).noisy, 1.0)
        ours_argv = [*pin, sys.executable, "-m", "napari_cryoden.cli", "denoise", str(src),
                     "--out", str(Path(tmp) / "ours"), "--device", "cpu"]
        loads = [_load()]  # the machine may be shared: say how loaded it was around each run
        ours = wall_time(ours_argv)
        loads.append(_load())
        theirs = wall_time([*pin, *topaz_argv(topaz, [src], Path(tmp) / "topaz")])
        loads.append(_load())
    result = {"ours_default_s": ours, "topaz_unet_s": theirs, "ratio": ours / theirs,
              "cores": cores if pin else "all (no taskset)", "loadavg_before_ours": loads[0],
              "loadavg_after_ours": loads[1], "loadavg_after_topaz": loads[2],
              "ours_argv": ours_argv[len(pin):]}
    print(f"4096² whole process on cores {result['cores']}: cryoden denoise (default model) "
          f"{ours:.1f} s, Topaz unet {theirs:.1f} s, ratio {ours / theirs:.3f} "
          f"(loadavg before, between, after: {' | '.join(loads)})")
    return result
