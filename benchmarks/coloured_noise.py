"""Issue 16's coloured-noise table: a model against the best Gaussian filter on correlated noise.

A held-out cartoon-simulated micrograph (``--contrast-scale``, ``--dose``, no carbon edge) keeps
its noise-free truth; its shot noise is replaced by Gaussian noise of the same variance, blurred by
a Gaussian of σ px and rescaled back to that variance (so the noisy PSNR stays put). Prints, per
seed, the PSNR against the truth of the noisy image, the model and the best Gaussian filter (σ
chosen on the truth), as tests/test_coloured_noise.py checks for seed 0 at 512²:

    python benchmarks/coloured_noise.py --model general --size 1024 --seeds 0 1 2
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
    args = parser.parse_args(argv)
    params = SimulationParams(contrast_scale=args.contrast_scale, dose=args.dose,
                              carbon_edge_probability=0.0)
    model = cryoden.load_model(args.model, device="cpu")
    for seed in args.seeds:
        shot = simulate_exposure(params, np.random.default_rng(seed), args.size)
        spread = float(np.std(shot.noisy - shot.truth))
        noise = np.random.default_rng(seed + 1).normal(0.0, spread, shot.truth.shape)
        rows = coloured_noise_table(lambda x: cryoden.denoise(x, model, device="cpu"),
                                    shot.truth, noise, args.sigmas)
        print(f"\nseed {seed}, {args.size}², contrast ×{args.contrast_scale:g}, "
              f"{args.dose:g} e/Å²\n")
        print(format_coloured_noise_table(rows, str(args.model)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
