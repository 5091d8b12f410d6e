"""Adapting the shipped model to micrographs unlike its training data: PSNR vs noise-free truth.

Usage::

    python benchmarks/adapt_shift.py [--model general] [--seconds 60] [--device cpu] [--seed S]
                                     [--lr LR] [--evidence K] [--n2v-fraction F] [--val-passes P]
                                     [--size 512] [--test-n 3] [--test-size 384]
                                     [--halves] [--only NAME ...] [--json OUT.json]

For each shifted condition (a dose, pixel size, detector or specimen outside what
``scripts/train_general_model.sh`` trained ``general`` on: dose 10-60 e/Å², 0.6-2.5 Å/px,
contrast ×1-×20, read noise 0.01), simulates ONE micrograph of ``--size``² to adapt on and
``--test-n`` held-out micrographs of ``--test-size``² (other seeds), then adapts the model on the
one micrograph in the time box (what ``cryoden adapt MODEL mic.mrc -o OUT.safetensors`` does)
and scores the start and the adapted model on the held-out micrographs against their noise-free
truth (PSNR, data range 1). Baseline: the Gaussian filter best on the held-out truth (an oracle).
``--halves`` adapts by Noise2Noise on two half-dose exposures of the micrograph instead of the
blind-spot objective on the whole one. Prints a Markdown table; ``--json`` writes the rows.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from napari_cryoden.evaluation.metrics import psnr
from napari_cryoden.inference.denoiser import denoise
from napari_cryoden.models.checkpoint import load_checkpoint
from napari_cryoden.models.pretrained import resolve_model
from napari_cryoden.simulation.micrographs import simulate_exposure
from napari_cryoden.simulation.optics import expose
from napari_cryoden.simulation.params import SimulationParams
from napari_cryoden.training.adapt import AdaptOptions, AdaptResult, adapt_steps

CONDITIONS: dict[str, dict[str, Any]] = {
    "pixel 0.4 Å, 40 e/Å²": dict(pixel_size=0.4, dose=40.0, contrast_scale=10.0),
    "read noise 0.2, 20 e/Å²": dict(read_noise=0.2, dose=20.0, contrast_scale=10.0),
    "dose 300 e/Å², ×10": dict(dose=300.0, contrast_scale=10.0),
    "elongated only, 3 e/Å², ×40": dict(dose=3.0, contrast_scale=40.0,
                                       particle_kinds=("elongated",), particle_weights=(1.0,)),
}
SIGMAS = (0.7, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)


def _psnr(image: np.ndarray, truth: np.ndarray) -> float:
    return psnr(float(np.mean((image - truth) ** 2)))


@dataclass
class Condition:
    """One shifted condition's data: the micrograph to adapt on and the held-out test set."""

    name: str
    params: SimulationParams
    shot: Any
    pair: tuple[np.ndarray, np.ndarray]
    tests: list[Any]
    noisy: float
    gaussian_oracle: float


def simulate_condition(name: str, kw: dict[str, Any], size: int, test_n: int,
                       test_size: int) -> Condition:
    """Simulate the micrograph to adapt on (whole and as two half-dose exposures) and the tests."""
    params = SimulationParams(**kw)
    shot = simulate_exposure(params, np.random.default_rng(1000), size)
    tests = [simulate_exposure(params, np.random.default_rng(2000 + i), test_size)
             for i in range(test_n)]
    rng = np.random.default_rng(3000)
    pair = (expose(shot.truth, params.dose / 2, params, rng).astype(np.float32),
            expose(shot.truth, params.dose / 2, params, rng).astype(np.float32))
    noisy = float(np.mean([_psnr(t.noisy, t.truth) for t in tests]))
    gauss = max(float(np.mean([_psnr(gaussian_filter(t.noisy, s), t.truth) for t in tests]))
                for s in SIGMAS)
    return Condition(name, params, shot, pair, tests, noisy, gauss)


def score(net: torch.nn.Module, cond: Condition, norm: str, device: str = "cpu") -> float:
    """Mean PSNR of ``net`` on the condition's held-out micrographs, against their truth."""
    return float(np.mean([_psnr(denoise(net, t.noisy, normalization=norm, device=device),
                                t.truth) for t in cond.tests]))


def adapt_and_score(cond: Condition, model: str, options: AdaptOptions,
                    halves: bool) -> dict[str, Any]:
    """Adapt ``model`` on the condition's micrograph; score start and result on the tests."""
    start, checkpoint = load_checkpoint(resolve_model(model))
    norm = checkpoint.normalization
    micrographs = [cond.pair] if halves else [(cond.shot.noisy, None)]
    t0 = time.perf_counter()
    *_, result = adapt_steps(start, micrographs, norm, options)
    seconds = time.perf_counter() - t0
    assert isinstance(result, AdaptResult)
    before, after = score(start, cond, norm), score(result.model, cond, norm)
    return {"condition": cond.name, "mode": result.mode, "noisy": cond.noisy,
            "gaussian_oracle": cond.gaussian_oracle, "before": before, "after": after,
            "gain": after - before, "kept_start": result.kept_start, "steps": result.steps,
            "best_step": result.best_step, "seconds": seconds,
            "held_out_loss": [result.loss_before, result.loss_after]}


def _row(name: str, kw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    cond = simulate_condition(name, kw, args.size, args.test_n, args.test_size)
    options = AdaptOptions(seconds=args.seconds, device=args.device, lr=args.lr,
                           evidence=args.evidence, seed=args.seed,
                           n2v_fraction=args.n2v_fraction, val_passes=args.val_passes)
    return {"params": kw, **adapt_and_score(cond, args.model, options, args.halves)}


def main() -> None:
    """Run the conditions and print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="general-v1")  # the figures in docs/quality.md
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--lr", type=float, default=AdaptOptions.lr)
    p.add_argument("--evidence", type=float, default=AdaptOptions.evidence)
    p.add_argument("--n2v-fraction", type=float, default=AdaptOptions.n2v_fraction)
    p.add_argument("--val-passes", type=int, default=AdaptOptions.val_passes)
    p.add_argument("--seed", type=int, default=0, help="adapt seed: held-out patches, batches")
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--test-n", type=int, default=3)
    p.add_argument("--test-size", type=int, default=384)
    p.add_argument("--halves", action="store_true")
    p.add_argument("--only", nargs="+", default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    names = [n for n in CONDITIONS if args.only is None or any(o in n for o in args.only)]
    print("| condition | mode | noisy | Gaussian (oracle σ) | before | after | gain | kept start "
          "| steps | time |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for name in names:
        r = _row(name, CONDITIONS[name], args)
        rows.append(r)
        print(f"| {name} | {r['mode']} | {r['noisy']:.2f} | {r['gaussian_oracle']:.2f} | "
              f"{r['before']:.2f} | {r['after']:.2f} | {r['gain']:+.2f} | "
              f"{'yes' if r['kept_start'] else 'no'} | {r['steps']} | {r['seconds']:.0f} s |",
              flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
