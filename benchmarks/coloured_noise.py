"""Issue 16's coloured-noise table: a model against the best Gaussian filter on correlated noise.

A held-out cartoon-simulated micrograph (``--contrast-scale``, ``--dose``, no carbon edge) keeps
its noise-free truth; its shot noise is replaced by Gaussian noise of the same variance, blurred by
a Gaussian of σ px and rescaled back to that variance (so the noisy PSNR stays put). Prints, per
seed, the PSNR against the truth of the noisy image, the model and the best Gaussian filter (σ
chosen on the truth), as tests/test_coloured_noise.py checks for seed 0 at 512²:

    python benchmarks/coloured_noise.py --model general-v1 --size 1024 --seeds 0 1 2

``--physics`` uses physics-grade micrographs instead, those of tests/test_coloured_noise.py (the
six atomic models at 2 Å/px, 25 particles per 10⁶ Å², a K3, 40 e/Å² in 20 frames; 512²):

    python benchmarks/coloured_noise.py --physics --model general --size 512 --seeds 11 12 13 14
"""

from __future__ import annotations

import argparse

import numpy as np

import napari_cryoden as cryoden
from napari_cryoden.evaluation.coloured_noise import (
    DEFAULT_NOISE_SIGMAS,
    coloured_noise_table,
    format_coloured_noise_table,
)
from napari_cryoden.simulation.micrographs import simulate_exposure
from napari_cryoden.simulation.params import SimulationParams


def main(argv: list[str] | None = None) -> int:
    """Parse the options and print one table per seed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="general", help="shipped name or .safetensors file")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--sigmas", type=float, nargs="+", default=list(DEFAULT_NOISE_SIGMAS))
    parser.add_argument("--contrast-scale", type=float, default=10.0)
    parser.add_argument("--dose", type=float, default=43.0)
    parser.add_argument("--physics", action="store_true", help="physics-grade micrographs")
    args = parser.parse_args(argv)
    params = SimulationParams(contrast_scale=args.contrast_scale, dose=args.dose,
                              carbon_edge_probability=0.0)
    model = cryoden.load_model(args.model, device="cpu")
    for seed in args.seeds:
        truth, noise, what = (_physics(seed, args.size) if args.physics
                              else _cartoon(params, seed, args.size))
        rows = coloured_noise_table(lambda x: cryoden.denoise(x, model, device="cpu"),
                                    truth, noise, args.sigmas)
        print(f"\nseed {seed}, {args.size}², {what}\n")
        print(format_coloured_noise_table(rows, str(args.model)))
    return 0


def _cartoon(params: SimulationParams, seed: int, size: int
             ) -> tuple[np.ndarray, np.ndarray, str]:
    shot = simulate_exposure(params, np.random.default_rng(seed), size)
    spread = float(np.std(shot.noisy - shot.truth))
    noise = np.random.default_rng(seed + 1).normal(0.0, spread, shot.truth.shape)
    return shot.truth, noise, f"cartoon, contrast ×{params.contrast_scale:g}, {params.dose:g} e/Å²"


def _physics(seed: int, size: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The micrographs of tests/test_coloured_noise.py."""
    import dataclasses

    from napari_cryoden.simulation.physics.dataset import PhysicsParams, simulate_physics_shot

    base = PhysicsParams()
    params = PhysicsParams(
        dataclasses.replace(base.specimen, pixel_size=(2.0, 2.0), particle_density=25.0,
                            carbon_edge_probability=0.0),
        dataclasses.replace(base.exposure, dose=(40.0, 40.0), frames=(20, 20),
                            detectors=("k3",)))
    shot, _ = simulate_physics_shot(params, np.random.SeedSequence(seed), (size, size))
    spread = float(np.std(shot.noisy - shot.truth))
    noise = np.random.default_rng(seed).normal(0.0, spread, shot.truth.shape)
    return shot.truth.astype(np.float64), noise, "physics-grade, 2 Å/px, K3, 40 e/Å²"


if __name__ == "__main__":
    raise SystemExit(main())
