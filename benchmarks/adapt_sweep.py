"""Which adapt settings buy the most on micrographs unlike the shipped model's training data.

Usage::

    python benchmarks/adapt_sweep.py [--device cuda] [--model general] [--steps 1000]
                                     [--physics [--cache DIR]] [--only NAME ...] [--seeds N]
                                     [--json OUT.json]

Runs every variant below on every condition of ``adapt_shift.py`` (same data, same held-out
micrographs, PSNR against noise-free truth). A variant fixes the number of steps
(``--steps``, about what 60 s on a 2-core CPU makes) instead of the time box, so a run on a GPU
predicts what the CPU would reach in its minute (with the CPU's batch of 8 unless the variant
names one); the ``gpu-10s`` variants use the GPU's default time box (and, unless they name one,
its default batch of 32) instead. ``--seeds N`` adapts N times (seeds 0..N-1: held-out
patches, batches, blind spots) and prints the mean and the smallest gain. Variants before
"default" spell out the old defaults (lr 2e-4, mask 2 %, one mask set, evidence 0), so their
rows reproduce the sweep that chose today's.
Prints a Markdown table of gains (dB) per variant and condition.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from adapt_shift import adapt_and_score, conditions

from napari_cryoden.training.adapt import CPU_BATCH, AdaptOptions

OLD = {"lr": 2e-4, "n2v_fraction": 0.02, "evidence": 0.0, "val_passes": 1}
"""The defaults before this sweep: any lower held-out loss replaced the start."""
VARIANTS: dict[str, dict[str, Any]] = {
    "n2v lr 2e-4 (old default)": OLD,
    "n2v lr 5e-4": {**OLD, "lr": 5e-4},
    "n2v lr 1e-3": {**OLD, "lr": 1e-3},
    "n2v lr 1e-3, patch 128": {**OLD, "lr": 1e-3, "patch_size": 128, "batch_size": 4},
    "n2v lr 1e-3, mask 5%": {**OLD, "lr": 1e-3, "n2v_fraction": 0.05},
    "n2v lr 1e-3, judge x8": {**OLD, "lr": 1e-3, "val_passes": 8},
    "n2v lr 1e-3, judge x8, held out 40%": {**OLD, "lr": 1e-3, "val_passes": 8, "held_out": 0.4},
    "n2n halves lr 2e-4": {**OLD, "halves": True},
    "n2n halves lr 1e-3": {**OLD, "halves": True, "lr": 1e-3},
    "n2v lr 1e-3, 3x steps": {**OLD, "lr": 1e-3, "steps_x": 3},
    "gpu-10s (old default box)": {**OLD, "seconds": None, "batch_size": 8},
    # today's defaults: lr 1e-3, mask 5 %, held-out patches judged with 4 mask sets, a
    # fine-tune kept only beyond 2 standard errors
    "default": {},
    "default, evidence 0": {"evidence": 0.0},
    "default, n2n halves": {"halves": True},
    "default, gpu-10s": {"seconds": None},  # batch 32 on a GPU (training.adapt.GPU_BATCH)
    "old default, gpu-10s": {**OLD, "seconds": None, "batch_size": 8},
    "default, gpu-10s, batch 8": {"seconds": None, "batch_size": 8},  # the GPU default before
    "default, gpu-10s, batch 64": {"seconds": None, "batch_size": 64},
    "default, gpu-10s, n2n halves": {"seconds": None, "halves": True},
    "gpu-10s, n2n halves without the sums check": {"seconds": None, "halves": True,
                                                   "check_sums": False},
    "gpu-10s, blind spot without the noise check": {"seconds": None, "check_noise": False},
}


def main() -> None:
    """Run every variant on every condition; print gains."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None,
                   help="default: general-v1 (cartoon conditions), general (--physics)")
    p.add_argument("--physics", action="store_true", help="adapt_shift's physics conditions")
    p.add_argument("--cache", type=Path, default=None, help="adapt_shift's condition cache")
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--only", nargs="+", default=None, help="variants named exactly so")
    p.add_argument("--seeds", type=int, default=1, help="adapt seeds per variant and condition")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    args.model = args.model or ("general" if args.physics else "general-v1")
    table, make = conditions(args.physics)
    conds = [make(n, kw, 512, 3, 384, args.cache) for n, kw in table.items()]
    variants = {k: v for k, v in VARIANTS.items()
                if args.only is None or k in args.only}
    print("| variant | " + " | ".join(c.name for c in conds) + " | time |")
    print("| --- " * (len(conds) + 2) + "|")
    rows = []
    for name, spec in variants.items():
        spec = dict(spec)
        halves = spec.pop("halves", False)
        steps = args.steps * spec.pop("steps_x", 1)
        # a fixed number of steps predicts the CPU's minute, so it takes the CPU's batch too
        box = ({} if "seconds" in spec else {"seconds": 1e9, "max_steps": steps,
                                             "batch_size": spec.pop("batch_size", CPU_BATCH)})
        t0 = time.perf_counter()
        cells = []
        for cond in conds:
            gains = []
            for seed in range(args.seeds):
                options = AdaptOptions(device=args.device, seed=seed, **box, **spec)
                r = adapt_and_score(cond, args.model, options, halves)
                rows.append({"variant": name, "seed": seed, **r})
                if "refused" in r:
                    break
                gains.append(r["gain"])
            if not gains:
                cells.append("refused (noise not white)")
                continue
            kept = sum(row["kept_start"] for row in rows[-args.seeds:])
            cells.append(f"{np.mean(gains):+.2f} (min {min(gains):+.2f}, {r['steps']} st, "
                         f"kept {kept}/{args.seeds})" if args.seeds > 1 else
                         f"{gains[0]:+.2f} ({r['steps']} st{', kept' if kept else ''})")
        print(f"| {name} | " + " | ".join(cells) + f" | {time.perf_counter() - t0:.0f} s |",
              flush=True)
        if args.json is not None:  # after every variant: a cut-off run keeps what it made
            args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
