"""Do aligned halves help? Split-frame SNR, and Noise2Noise trained on them, against the truth.

Usage::

    python benchmarks/aligned_halves.py [--train 8] [--test 4] [--size 384] [--frames 16]
                                        [--epochs 8] [--seed 0] [--work DIR] [--json OUT.json]

Simulates drifting movies (the cartoon simulator's noise-free micrographs, contrast ×10, each
frame Poisson at ``--dose`` counts/px; beam-induced motion as in ``tests/data/test_align.py``:
8 px along a random direction, fast at first, time constant 4 frames, 0.1 px jitter), splits
every movie into even/odd sums twice, as stored (``split-frames``) and aligned first
(``split-frames --align``), and reports for each:

- the halves' split-frame SNR, CC/(1 − CC) of the even and odd sums, mean over the movies;
- a Noise2Noise model trained on the training movies' halves (``cryoden train --even --odd``,
  the same seed and epochs), applied to the *aligned* full sums of the test movies (what a user
  denoises), scored by PSNR against the noise-free truth (data range 1; the truth sits where the
  middle frame is, which alignment keeps in place). The aligned sum, unfiltered, is the floor.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_fourier_shift import fourier_shift_image_2d

from napari_cryoden.cli.main import main as cryoden
from napari_cryoden.data.align import aligned_frame_sums
from napari_cryoden.evaluation.metrics import psnr
from napari_cryoden.inference.denoiser import denoise
from napari_cryoden.io.frames import frame_sums
from napari_cryoden.io.images import write_mrc
from napari_cryoden.models.checkpoint import load_checkpoint
from napari_cryoden.simulation.micrographs import simulate_exposure
from napari_cryoden.simulation.params import SimulationParams

PIXEL = 1.5


def movie(path: Path, seed: int, size: int, frames: int, dose: float) -> np.ndarray:
    """Write one drifting movie; return its noise-free truth (scaled to [0, 1])."""
    rng = np.random.default_rng(seed)
    truth = simulate_exposure(SimulationParams(contrast_scale=10.0, pixel_size=PIXEL), rng,
                              size).truth.astype(np.float32)
    truth = (truth - truth.min()) / np.ptp(truth)
    angle = rng.uniform(0, 2 * np.pi)
    travel = 8.0 * (1 - np.exp(-np.arange(frames) / 4.0))
    drift = travel[:, None] * np.array([np.sin(angle), np.cos(angle)])
    drift += rng.normal(0, 0.1, drift.shape)
    drift -= drift[frames // 2]
    stack = [rng.poisson(dose * np.clip(fourier_shift_image_2d(
        torch.from_numpy(truth), torch.tensor(d, dtype=torch.float32)).numpy(), 0, None))
        for d in drift]
    write_mrc(path, np.stack(stack).astype(np.float32), PIXEL)
    return truth


def split_snr(even: np.ndarray, odd: np.ndarray, margin: int = 24) -> float:
    """CC/(1 - CC) of the halves, away from the edges the shifts wrap."""
    a, b = even[margin:-margin, margin:-margin], odd[margin:-margin, margin:-margin]
    a, b = a - a.mean(), b - b.mean()
    cc = float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))
    return cc / (1 - cc)


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    truths, movies = [], []
    for i in range(args.train + args.test):
        path = work / "movies" / f"movie_{i:02d}.mrcs"
        path.parent.mkdir(parents=True, exist_ok=True)
        truths.append(movie(path, args.seed * 1000 + i, args.size, args.frames, args.dose))
        movies.append(path)
    out: dict[str, Any] = {}
    sums: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"unaligned": [], "aligned": []}
    for path in movies:
        sums["unaligned"].append(frame_sums(path)[:2])
        sums["aligned"].append(aligned_frame_sums(path)[:2])
    margin = 24
    test_truth = [t[margin:-margin, margin:-margin] for t in truths[args.train:]]
    test_sums = [e + o for e, o in sums["aligned"][args.train:]]
    scale = [float(np.sum(t * s[margin:-margin, margin:-margin]) /
                   np.sum(s[margin:-margin, margin:-margin] ** 2)) for t, s in
             zip(test_truth, test_sums, strict=True)]  # least-squares units of the truth
    out["aligned_sum_psnr"] = float(np.mean([
        psnr(float(np.mean((k * s[margin:-margin, margin:-margin] - t) ** 2)))
        for k, s, t in zip(scale, test_sums, test_truth, strict=True)]))
    for kind in ("unaligned", "aligned"):
        out[f"{kind}_split_frame_snr"] = float(np.mean([split_snr(e, o)
                                                        for e, o in sums[kind]]))
        folder = work / kind
        for half in ("even", "odd"):
            (folder / half).mkdir(parents=True, exist_ok=True)
        for i, (e, o) in enumerate(sums[kind][:args.train]):
            write_mrc(folder / "even" / f"m{i:02d}.mrc", e, PIXEL)
            write_mrc(folder / "odd" / f"m{i:02d}.mrc", o, PIXEL)
        t0 = time.perf_counter()
        status = cryoden(["train", "--even", str(folder / "even"), "--odd", str(folder / "odd"),
                          "--out", str(folder / "run"), "--epochs", str(args.epochs),
                          "--patch-size", "96", "--batch-size", "8", "--device", "cpu",
                          "--seed", str(args.seed), "--val-fraction", "0.2"])
        assert status == 0, f"training on the {kind} halves failed"
        net, checkpoint = load_checkpoint(folder / "run" / "best.safetensors")
        scores = []
        for k, s, t in zip(scale, test_sums, test_truth, strict=True):
            den = denoise(net, s, normalization=checkpoint.normalization)
            scores.append(psnr(float(np.mean((k * den[margin:-margin, margin:-margin] - t)
                                             ** 2))))
        out[f"n2n_{kind}_psnr"] = float(np.mean(scores))
        out[f"n2n_{kind}_train_seconds"] = time.perf_counter() - t0
    return out


def main() -> None:
    """Simulate, split both ways, train, score; print the figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", type=int, default=8)
    p.add_argument("--test", type=int, default=4)
    p.add_argument("--size", type=int, default=384)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--dose", type=float, default=3.0, help="counts per pixel per frame")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        result = run(args, args.work or Path(scratch))
    result["args"] = {k: str(v) for k, v in vars(args).items()}
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
