"""``cryoden evaluate``: score a model against clean targets, and/or without them.

With ``--noisy/--clean`` it scores against the targets (metrics, baselines, checklist). With
``--even/--odd`` it denoises each half on its own and reports the split-frame SNR; with
``--picks`` the region-pair SNR (on ``--noisy`` micrographs if given, else on the even + odd
sums), always beside a Gaussian baseline and a fidelity measure. See docs/metrics.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ._common import EXIT_OK, add_halves_flags, half_pairs_from_args, print_warnings
from .denoise import MODEL_HELP, add_device_flags

__all__ = ["add_evaluate", "run_evaluate", "summary_table"]


def add_evaluate(p: argparse.ArgumentParser) -> None:
    """Add the flags of ``cryoden evaluate`` to ``p``."""
    p.add_argument("model", type=Path, metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--noisy", type=Path, help="folder of noisy micrographs")
    p.add_argument("--clean", type=Path, help="folder of clean targets (optional)")
    p.add_argument("--even", type=Path, help="even frame sums: a folder or one file; each half "
                   "is denoised on its own (split-frame SNR)")
    p.add_argument("--odd", type=Path, help="odd frame sums, paired with --even by name")
    add_halves_flags(p)
    p.add_argument("--picks", type=Path, help="a pick file or folder (.star, .box, .coord) "
                   "matched to micrographs by name (region-pair SNR)")
    p.add_argument("--box-size", type=int, default=None,
                   help="box edge for region-pair SNR, px (default: the .box files' own)")
    p.add_argument("--baseline-sigma", type=float, default=8.0,
                   help="Gaussian baseline width beside split-frame and region SNR, px "
                        "(default 8)")
    p.add_argument("--gaussian-sigma", type=float, default=None, metavar="PX",
                   help="width of the Gaussian baseline beside the clean-target metrics "
                        "(default: the one recorded with the model from its validation set, "
                        "else for each micrograph the width best on the other micrographs; "
                        "never chosen on the micrograph it is scored on)")
    p.add_argument("--json", type=Path, required=True, metavar="FILE", help="report to write")
    p.add_argument("--figures", type=Path, metavar="DIR", help="also save PNG figures here")
    p.add_argument("--patch-size", type=int, default=None,
                   help="patch size for per-patch metrics (default: the model's)")
    p.add_argument("--data-range", type=float, default=1.0,
                   help="data range for PSNR (default 1.0: data in [0, 1])")
    p.add_argument("--target-kind", choices=("clean", "noisy"), default="clean",
                   help="'clean': noise-free ground truth; 'noisy': the targets are themselves "
                        "noisy micrographs (PSNR is then capped by their noise)")
    p.add_argument("--history", type=Path, default=None,
                   help="history.json of the run (default: next to MODEL if present)")
    add_device_flags(p)


def _check_args(args: argparse.Namespace) -> None:
    args.half_pairs = half_pairs_from_args(args, "evaluate")
    if (args.even is None) != (args.odd is None):
        raise InputError("evaluate: --even and --odd go together")
    if args.half_pairs is None and args.even is not None:
        from ..evaluation.truthless import half_pairs

        args.half_pairs = half_pairs(args.even, args.odd)
    if args.clean is not None and args.noisy is None:
        raise InputError("evaluate: --clean needs --noisy (the micrographs to denoise)")
    if args.clean is None and args.half_pairs is None and args.picks is None:
        raise InputError("evaluate: give --noisy/--clean, --even/--odd or --picks")
    if args.picks is not None and args.half_pairs is None and args.clean is None:
        raise InputError("evaluate: --picks needs --even/--odd or --clean, so that region-pair "
                         "SNR (which rewards smoothing) is reported beside a fidelity measure")
    if args.picks is not None and args.noisy is None and args.half_pairs is None:
        raise InputError("evaluate: --picks needs micrographs: --noisy or --even/--odd")


def run_evaluate(args: argparse.Namespace) -> int:
    """Score the model with what was given; write the report, print its summary."""
    from ..evaluation.checklist import format_checklist
    from ..evaluation.report import write_report
    from ..inference.load import load_denoiser

    _check_args(args)
    denoiser = load_denoiser(args.model, args.device)
    history_path = args.history or denoiser.path.parent / "history.json"
    history = json.loads(history_path.read_text()) if history_path.exists() else None
    report = _with_clean(args, denoiser, history) if args.clean else _without_clean(denoiser)
    _add_truthless(args, denoiser, report, history)
    write_report(report, args.json)
    print(summary_table(report))
    print(format_checklist(report["checklist"]))
    print(f"report: {args.json}" + (f", figures: {args.figures}" if args.figures else ""))
    print_warnings(report["warnings"])
    return EXIT_OK


def _with_clean(args: argparse.Namespace, denoiser: Any, history: Any) -> dict[str, Any]:
    from ..evaluation.report import evaluate

    ckpt = denoiser.checkpoint
    return evaluate(
        denoiser.net, args.noisy, args.clean,
        patch_size=args.patch_size or ckpt.config.data.patch_size, data_range=args.data_range,
        device=denoiser.device, normalization=ckpt.normalization, target_kind=args.target_kind,
        figures_dir=args.figures, history=history, checkpoint=ckpt,
        gaussian_sigma=args.gaussian_sigma,
    )


def _without_clean(denoiser: Any) -> dict[str, Any]:
    from ..evaluation.report import model_info

    info = model_info(denoiser.net, denoiser.checkpoint, denoiser.checkpoint.normalization)
    return {"model": info, "checklist": [], "warnings": []}


def _add_truthless(args: argparse.Namespace, denoiser: Any, report: dict[str, Any],
                   history: Any) -> None:
    """Add ``split_frame``/``region_snr`` blocks, their checklist items and figure."""
    from ..evaluation import truthless
    from ..evaluation.truthless_checks import truthless_checklist
    from ..io.images import list_images
    from ..io.picks import match_picks

    if args.half_pairs is None and args.picks is None:
        return
    fn = _denoise_fn(denoiser)
    region = None
    pairs = args.half_pairs or []
    names = [p[0].stem for p in pairs] if args.noisy is None else list_images(args.noisy)
    picks = match_picks(args.picks, [_half(n) for n in names]) if args.picks else None
    if pairs:
        split, region = truthless.split_frame_report(
            fn, pairs, baseline_sigma=args.baseline_sigma,
            picks=picks if args.noisy is None else None, box_size=args.box_size)
        report["split_frame"] = split.to_json()
    if picks is not None and args.noisy is not None:
        region = truthless.region_report(fn, list_images(args.noisy), picks,
                                         box_size=args.box_size, sigma=args.baseline_sigma)
    if region is not None:
        report["region_snr"] = region.to_json()
    report["checklist"] = report["checklist"] + truthless_checklist(
        report.get("split_frame"), report.get("region_snr"))
    if args.figures and "split_frame" in report:
        _frequency_figure(report, args.figures)


def _half(name: Any) -> str:
    from ..data.pairs import half_stem

    return half_stem(name)


def _denoise_fn(denoiser: Any) -> Any:
    from ..inference.denoiser import denoise

    net, ckpt, device = denoiser.net, denoiser.checkpoint, denoiser.device
    return lambda image: denoise(net, image, normalization=ckpt.normalization, device=device)


def _frequency_figure(report: dict[str, Any], folder: Path) -> None:
    from ..plotting.quality import frequency_snr_figure
    from ..plotting.reports import save_figure

    figure = frequency_snr_figure(report["split_frame"]["frequency"])
    path = save_figure(figure, folder / "split_frame_frequency.png")
    report.setdefault("figures", {})["split_frame_frequency"] = str(path)


def summary_table(report: dict[str, Any]) -> str:
    """Format the report's tables: metrics against targets, then the SNR measured without them.

    Parameters
    ----------
    report
        What ``evaluate`` and the split-frame/region-pair SNR wrote.

    Returns
    -------
    str
        The METRICS table when there were clean targets, the split-frame/region-pair table when
        there were halves or picks.
    """
    from ..evaluation.report import summary_lines
    from ..evaluation.truthless import truthless_summary_lines

    lines = summary_lines(report) if "pooled" in report else []
    if "split_frame" in report or "region_snr" in report:
        lines += truthless_summary_lines(report)
    return "\n".join(lines)
