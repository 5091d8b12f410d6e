"""Time the physics-grade exposure stage on one synthetic noise-free image (docs/simulator.md).

A flat 0.7 ± 0.05 image (the transmission units of a real one) is recorded by ``expose_movie``
with one fixed choice: a K3, bilinear drift correction, RELION-style dose weighting, 40 e/Å² in
``--frames`` frames. Prints the wall time and the process's peak RSS::

    python benchmarks/physics_exposure_speed.py --shape 1024 1024 --frames 40
    python benchmarks/physics_exposure_speed.py --shape 4092 5760 --frames 40   # K3, minutes
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from napari_cryoden.simulation.physics.contract import NoiseFreeImage
from napari_cryoden.simulation.physics.exposure import expose_movie
from napari_cryoden.simulation.physics.exposure_params import ExposureParams


def main(argv: list[str] | None = None) -> int:
    """Parse the options, time one exposure, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=2, default=[1024, 1024])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--pixel-size", type=float, default=1.0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    image = (0.7 + 0.05 * rng.standard_normal(tuple(args.shape))).astype(np.float32)
    noise_free = NoiseFreeImage(image, args.pixel_size, 1.5, 0.0, 0.0, np.zeros((0, 2)), (),
                                False)
    params = ExposureParams(dose=(40.0, 40.0), frames=(args.frames, args.frames),
                            detectors=("k3",), interpolations=("bilinear",))
    start = time.perf_counter()
    expose_movie(noise_free, params, np.random.default_rng(1))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{args.shape[0]}x{args.shape[1]} x {args.frames} frames: {seconds:.1f} s, "
          f"peak RSS {peak:.2f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
