"""Draw docs/images/physics_noise_spectra.png: how each step of the exposure colours the noise.

Usage: PYTHONPATH=src python scripts/physics_noise_spectra.py [OUT.png]
One 512² cartoon micrograph at 1 Å/px, 40 e⁻/Å² in 40 frames; each curve adds one step.
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from napari_cryoden.simulation.micrographs import simulate_exposure  # noqa: E402
from napari_cryoden.simulation.params import SimulationParams  # noqa: E402
from napari_cryoden.simulation.physics.contract import NoiseFreeImage  # noqa: E402
from napari_cryoden.simulation.physics.exposure import expose_movie  # noqa: E402
from napari_cryoden.simulation.physics.exposure_params import ExposureParams  # noqa: E402
from napari_cryoden.simulation.physics.exposure_spectrum import (  # noqa: E402
    poisson_level,
    radial_noise_power,
)

BASE = dict(dose=(40.0, 40.0), frames=(40, 40), detectors=("perfect",), drift=(0.0, 0.0),
            jitter=0.0, alignment_error=0.0, interpolations=("fourier",), dose_weighting=False)
STEPS = [
    ("white Poisson counting", {}),
    ("+ K3 MTF/DQE", dict(detectors=("k3",))),
    ("+ drift, bilinear correction", dict(detectors=("k3",), drift=(4.0, 4.0), jitter=0.1,
                                          alignment_error=0.1, interpolations=("bilinear",))),
    ("+ dose weighting (RELION)", dict(detectors=("k3",), drift=(4.0, 4.0), jitter=0.1,
                                       alignment_error=0.1, interpolations=("bilinear",),
                                       dose_weighting=True)),
    ("+ 2× Fourier binning", dict(detectors=("k3",), drift=(4.0, 4.0), jitter=0.1,
                                  alignment_error=0.1, interpolations=("bilinear",),
                                  dose_weighting=True, binning=2.0)),
]


def main(out: str = "docs/images/physics_noise_spectra.png") -> None:
    shot = simulate_exposure(SimulationParams(pixel_size=1.0), np.random.default_rng(0), 512)
    image = NoiseFreeImage(shot.truth, 1.0, shot.defocus, shot.astigmatism, 0.0,
                           shot.particle_centres, shot.particle_kinds, shot.carbon)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for label, changes in STEPS:
        exposed = expose_movie(image, ExposureParams(**{**BASE, **changes}),  # type: ignore
                               np.random.default_rng(1))
        level = poisson_level(float(image.image.mean()), 40.0, exposed.pixel_size)
        freq, power = radial_noise_power(exposed.noisy - exposed.truth, bins=48)
        ax.plot(freq, power / level, label=label)
    ax.set_xlabel("spatial frequency (cycles per pixel of the sum; 0.5 = Nyquist)")
    ax.set_ylabel("noise power / white Poisson level")
    ax.set_xlim(0, 0.5)
    ax.set_ylim(0, 1.4)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("Noise of a simulated sum (40 e⁻/Å², 40 frames, 1 Å/px)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
