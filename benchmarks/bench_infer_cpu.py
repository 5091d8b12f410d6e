"""Wall time of tiled inference on CPU for the seed net (random weights: speed does not care).

Usage::

    python benchmarks/bench_infer_cpu.py [--sizes 4096 8192] [--channels 16] [--tile-size PX]
                                         [--repeat N]

Prints one line per size: the tile plan, wall time and throughput. docs/inference.md quotes it.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from napari_cryoden.config.sections import ModelConfig
from napari_cryoden.inference.denoiser import denoise, plan_tiles, receptive_radius
from napari_cryoden.models.nets import build_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--tile-size", type=int, default=None)
    parser.add_argument("--normalization", default="none")
    parser.add_argument("--repeat", type=int, default=1, help="report the fastest of N runs")
    args = parser.parse_args(argv)

    model = build_model(ModelConfig(channels=args.channels), seed=0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} cores, channels={args.channels}")
    denoise(model, np.zeros((256, 256), np.float32))  # warm-up: one-time kernel set-up
    for size in args.sizes:
        image = np.random.default_rng(0).random((size, size), dtype=np.float32)
        plan = plan_tiles(image.shape, halo=receptive_radius(model),
                          hidden_channels=args.channels, tile_size=args.tile_size)
        walls = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            denoise(model, image, normalization=args.normalization, tile_size=args.tile_size)
            walls.append(time.perf_counter() - start)
        wall = min(walls)
        print(f"{size}x{size}: tile {plan.tile} x batch {plan.batch}, {plan.n_tiles} tiles, "
              f"{wall:.1f} s (runs: {', '.join(f'{w:.1f}' for w in walls)}), "
              f"{size * size / wall / 1e6:.2f} Mpx/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
