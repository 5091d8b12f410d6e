"""``cryoden adapt``: fine-tune a model on one's own micrographs and say what it bought."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import InputError
from ._common import EXIT_OK, add_halves_flags, expand_folders, half_pairs_from_args

__all__ = ["add_adapt", "run_adapt", "summary_lines"]

_HELP = ("a .safetensors file or a shipped model: general (default of denoise), general-fast")


def add_adapt(p: argparse.ArgumentParser) -> None:
    """Add the flags of ``cryoden adapt`` to ``p``."""
    p.add_argument("model", metavar="MODEL", help=_HELP)
    p.add_argument("micrographs", type=Path, nargs="*", metavar="MICROGRAPH",
                   help="noisy micrographs or folders of them (blind-spot fine-tune); "
                        "or give --even/--odd instead (Noise2Noise)")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="OUT.safetensors",
                   help="the adapted model (the starting weights if the fine-tune did not help)")
    p.add_argument("--even", type=Path, nargs="+", default=[], metavar="EVEN",
                   help="even-frame sums (files or folders); the summary then gives the "
                        "split-frame SNR before/after on the held-out patches")
    p.add_argument("--odd", type=Path, nargs="+", default=[], metavar="ODD",
                   help="odd-frame sums, in the order of --even")
    add_halves_flags(p)
    p.add_argument("--clean", type=Path, nargs="+", default=[], metavar="CLEAN",
                   help="clean targets, one per micrograph, for PSNR before/after")
    p.add_argument("--seconds", type=float, default=None,
                   help="time box (default: 60 on a CPU, 10 on a GPU)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--patch-size", type=int, default=64, help="patch side, px (default 64)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="patches per step (default: 8 on a CPU, 32 on a GPU)")
    p.add_argument("--held-out", type=float, default=0.2,
                   help="share of the patches held out to judge the fine-tune (default 0.2)")
    p.add_argument("--evidence", type=float, default=2.0, metavar="K",
                   help="keep the fine-tune only if its held-out loss beats the start's by more "
                        "than K standard errors of the per-patch difference (default 2; 0: any "
                        "improvement)")
    p.add_argument("--tune", choices=("all", "biases"), default=None,
                   help="which parameters the fine-tune changes: only the layers' biases (the "
                        "default: never worse in our tests on realistic sums) or all of them "
                        "(larger gains far from the model's training data, but fits that "
                        "passed every check were worse on other micrographs)")
    p.add_argument("--hold-out-micrographs", action="store_true",
                   help="judge the fine-tune on whole micrographs it never learned from (the "
                        "--held-out share of them, at least one) instead of patches of every "
                        "micrograph: needs two micrographs or more")
    p.add_argument("--seed", type=int, default=0, help="held-out patches and batches")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="also write the report as JSON")


def run_adapt(args: argparse.Namespace) -> int:
    """Run ``cryoden adapt``: adapt, write the model, print the summary (and the JSON)."""
    from ..api._adapt import adapt

    if args.seconds is not None and not args.seconds > 0:
        raise InputError(f"--seconds must be > 0, got {args.seconds}")
    if args.batch_size is not None and args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
    even, odd = expand_folders(args.even), expand_folders(args.odd)
    pairs = half_pairs_from_args(args, "adapt")
    if pairs is not None:
        even, odd = [e for e, _ in pairs], [o for _, o in pairs]
    report = adapt(args.model, expand_folders(args.micrographs), args.out,
                   even=even, odd=odd,
                   clean=expand_folders(args.clean), seconds=args.seconds, device=args.device,
                   seed=args.seed, lr=args.lr, patch_size=args.patch_size,
                   held_out=args.held_out, evidence=args.evidence, batch_size=args.batch_size,
                   hold_out_micrographs=args.hold_out_micrographs,
                   **({} if args.tune is None else {"tune": args.tune}))
    print("\n".join(summary_lines(report)))
    if args.json is not None:
        from ..io.atomic import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(report, indent=2).encode())
    sys.stdout.flush()
    return EXIT_OK


def summary_lines(report: dict[str, Any]) -> list[str]:
    """Return the lines ``cryoden adapt`` prints: what the fine-tune did and what it bought."""
    from ..api._adapt import HALVES_CAUTION, split_frame_line, sums_line

    mode = {"n2n": "Noise2Noise (even/odd)", "n2v": "blind spot (N2V2)"}[report["mode"]]
    lines = [f"adapted {report['start_model']} by {mode}: {report['steps']} steps of "
             f"{report['batch_size']} in "
             f"{report['seconds']:.1f} s on {report['n_train_patches']} patches "
             f"({report['n_held_out_patches']} held out)",
             f"held-out loss: {report['held_out_loss_before']:.5f} before, "
             f"{report['held_out_loss_after']:.5f} after"]
    psnr = report.get("psnr")
    if psnr is not None:
        lines.append(f"PSNR vs {', '.join(psnr['target'])}: {psnr['before']:.2f} dB before, "
                     f"{psnr['after']:.2f} dB after ({psnr['after'] - psnr['before']:+.2f} dB; "
                     f"{psnr['note']})")
    if report.get("split_frame_snr") is not None:
        lines.append(split_frame_line(report["split_frame_snr"]))
    sums = report.get("sums_check")
    if sums is not None:
        lines.append(sums_line(sums))
    if report["kept_start"]:
        why = ("diverged" if report["diverged"]
               else "was not better on the halves' sums" if sums is not None
               else "did not beat the start's held-out loss by more than chance")
        lines.append(f"kept the starting model: the fine-tune {why}; "
                     f"{report['out']} holds the starting weights")
    else:
        lines.append(f"wrote {report['out']} (best at step {report['best_step']})")
        if report["mode"] == "n2n":
            lines.append(HALVES_CAUTION)
    return lines
