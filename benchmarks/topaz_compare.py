"""Topaz-Denoise 0.3.20's shipped ``unet`` beside our models, against the true noise-free image.

Usage::

    python benchmarks/topaz_compare.py [--test-n 6] [--train-n 4] [--size 1024]
        [--noise-sigmas 0 0.6 1.0] [--data DIR --train-data DIR] [--model NAME=PATH ...]
        [--topaz-python PATH] [--smooth PX ...] [--smooth-keep PX:SHARE ...]
        [--out benchmarks/results/topaz] [--figure PNG] [--time-4096]

Data: ``--test-n`` held-out cartoon micrographs (contrast ×``--contrast-scale``, ``--dose``,
8-frame movies whose even and odd sums are each denoised on their own) per noise condition: the
simulator's white shot noise, and that noise blurred by a Gaussian of σ px and rescaled to its
variance, per half (evaluation/coloured_noise.py). ``--data DIR`` scores a folder instead
(``cryoden simulate --even-odd`` layout, see benchmarks/_compare_data.py), e.g. the physics-grade
simulator's; the fitted Gaussian then needs ``--train-data DIR`` of the same layout.

Rows: the noisy input (even + odd); a Gaussian whose σ is fitted on ``--train-n`` separate
training micrographs (the mean of their best σ); the oracle Gaussian (σ chosen per micrograph on
its truth); Topaz ``unet`` (run by benchmarks/_topaz.py in its own Python); our ``general`` and
``general-fast`` and the first releases ``general-v1``, ``general-fast-v1``; any ``--model
NAME=PATH``; ``general`` with its background flattened (``cryoden denoise --smooth 16``: σ 16 px
on the background only, ``FLAT_BACKGROUND``); for each ``--smooth PX``, ``general`` then a
Gaussian of σ PX pixels over the whole image (``cryoden denoise --smooth PX --smooth-where
everywhere``; the halves alike); for each ``--smooth-keep PX:SHARE``, the same keeping SHARE of
the detail finer than that Gaussian (``--smooth PX --keep-detail SHARE --smooth-where
everywhere``); for each ``--truth-smooth PX``, the noise-free truth itself blurred by σ PX (its
even and odd halves too): the best that any "denoise, then blur by σ PX" could score. ``--rows
TEXT ...`` runs only the rows whose label contains one of the texts (e.g. ``--rows truth`` with
``--truth-smooth``).

Columns, for every row alike: PSNR against the truth of the whole micrograph (data range 1, the
simulator's truth lies in [0, 1]; each method's output as it comes — ours and Topaz both return
the input's units — mean ± sd over micrographs); the same PSNR after a least-squares affine fit of
the output to the truth (what PSNR would be if units or contrast were matched: an upper bound that
forgives any scale/offset error); Pearson r (unchanged by an affine map); region-pair SNR over the
simulated particle centres (boxes of ``--box-size``, pooled over micrographs;
evaluation/region_snr.py); var_B/var_S from the denoised even/odd halves
(evaluation/split_frame.py; 0 for the noisy input, grows as signal is smoothed away).

``--time-4096`` times the whole process (start-up, model load, read, denoise, write) of
``cryoden denoise`` with the default model and of Topaz's denoise on one 4096² micrograph, on
the same cores (``--cores``), and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _compare_data import Micrograph, from_folder, simulated  # noqa: E402
from _compare_figure import crop_figure  # noqa: E402
from _topaz import topaz_denoise, topaz_python  # noqa: E402
from _topaz_timing import time_4096  # noqa: E402

from napari_cryoden.evaluation.baselines import best_gaussian, gaussian_baseline  # noqa: E402
from napari_cryoden.evaluation.region_snr import region_pairs, region_snr  # noqa: E402
from napari_cryoden.evaluation.split_frame import patch_moments, pool_split_frame  # noqa: E402
from napari_cryoden.inference.smoothing import FLAT_BACKGROUND  # noqa: E402
from napari_cryoden.simulation.params import SimulationParams  # noqa: E402

Outputs = list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # denoised (noisy, even, odd) each
Method = Callable[[list[Micrograph]], Outputs]
ROOT = Path(__file__).resolve().parents[1]


def by_image(fn: Callable[[np.ndarray], np.ndarray]) -> Method:
    """A method that denoises each image on its own."""
    return lambda mics: [(fn(m.noisy), fn(m.even), fn(m.odd)) for m in mics]


def oracle_gaussian(mics: list[Micrograph]) -> Outputs:
    """σ chosen per micrograph on its truth; the halves are filtered by the same σ."""
    out = []
    for m in mics:
        sigma = best_gaussian(m.noisy, m.truth)[0]
        out.append(tuple(gaussian_baseline(x, sigma) for x in (m.noisy, m.even, m.odd)))
    return out  # type: ignore[return-value]


def topaz_method(python: Path) -> Method:
    """Topaz's ``unet``: every image of every micrograph in one subprocess."""
    def run(mics: list[Micrograph]) -> Outputs:
        flat = topaz_denoise(python, [x for m in mics for x in (m.noisy, m.even, m.odd)])
        return [tuple(flat[3 * i:3 * i + 3]) for i in range(len(mics))]  # type: ignore[misc]
    return run


def ours(spec: str, smooth: float = 0.0, keep_detail: float = 0.0,
         where: str = "everywhere") -> Method:
    """One of our models (a shipped name or a .safetensors file), on the CPU."""
    import napari_cryoden as cryoden

    model = cryoden.load_model(spec, device="cpu")
    return by_image(lambda x: cryoden.denoise(x, model, device="cpu", smooth=smooth,
                                              keep_detail=keep_detail, smooth_where=where))


def methods(args: argparse.Namespace, sigma_fit: float | None) -> dict[str, Method]:
    rows: dict[str, Method] = {"noisy": by_image(lambda x: x)}
    if sigma_fit is not None:
        rows["Gaussian, σ fitted on training micrographs"] = by_image(
            lambda x: gaussian_baseline(x, sigma_fit))
    rows["oracle Gaussian (σ per micrograph on the truth)"] = oracle_gaussian
    rows["Topaz 0.3.20 `unet`"] = topaz_method(args.topaz)
    shipped = ("general", "general-fast", "general-v1", "general-fast-v1")
    for name, spec in [*((n, n) for n in shipped), *(text.split("=", 1) for text in args.model)]:
        rows[f"ours: `{name}`"] = ours(spec)
    flat = FLAT_BACKGROUND
    rows[f"ours: `general`, background flattened (`--smooth {flat.sigma:g}`: σ "
         f"{flat.sigma:g} px on the background)"] = ours("general", flat.sigma, flat.keep,
                                                         flat.where)
    for sigma in args.smooth:
        rows[f"ours: `general`, then σ {sigma:g} px everywhere (`--smooth {sigma:g} "
             "--smooth-where everywhere`)"] = ours("general", sigma)
    for sigma, keep in args.smooth_keep:
        rows[f"ours: `general`, then σ {sigma:g} px everywhere keeping {keep:g} of the finer "
             f"detail (`--smooth {sigma:g} --keep-detail {keep:g} --smooth-where everywhere`)"
             ] = ours("general", sigma, keep)
    for sigma in args.truth_smooth:
        rows[f"the truth, then σ {sigma:g} px"] = _truth_blurred(sigma)
    if args.rows:
        rows = {k: v for k, v in rows.items() if any(text in k for text in args.rows)}
    return rows


def _truth_blurred(sigma: float) -> Method:
    """The noise-free truth (and its halves' truths: the same image) blurred by ``sigma`` px."""
    def run(mics: list[Micrograph]) -> Outputs:
        return [(blurred := gaussian_baseline(m.truth, sigma), blurred, blurred) for m in mics]
    return run


def score(mics: list[Micrograph], outs: Outputs, box: int) -> dict[str, Any]:
    """PSNR (as is and affine-fitted), r, region-pair SNR and var_B/var_S of one method."""
    psnr, fitted, r, terms, moments = [], [], [], [], []
    for m, (den, de, do) in zip(mics, outs, strict=True):
        t, d = m.truth.astype(np.float64).ravel(), np.asarray(den, np.float64).ravel()
        psnr.append(_psnr(d, t))
        design = np.stack([d, np.ones_like(d)], axis=1)
        fitted.append(_psnr(design @ np.linalg.lstsq(design, t, rcond=None)[0], t))
        r.append(float(np.corrcoef(d, t)[0, 1]))
        terms.append(region_snr(den, region_pairs(den.shape, m.picks, box)).terms)
        moments.append(patch_moments(m.even, m.odd, de, do))
    all_terms = np.concatenate(terms)
    finite = all_terms[np.isfinite(all_terms)]
    return {"psnr": psnr, "psnr_affine": fitted, "r": r,
            "region_snr_db": float(finite.mean()) if finite.size else float("nan"),
            "n_pairs": int(all_terms.size),
            "bias_ratio": float(pool_split_frame(moments).bias_ratio)}


def _psnr(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((pred - truth) ** 2)))


def fitted_sigma(train: list[Micrograph]) -> float:
    """The mean of the best Gaussian σ of each training micrograph (what a user could fit)."""
    return float(np.mean([best_gaussian(m.noisy, m.truth)[0] for m in train]))


def table(condition: str, rows: dict[str, dict[str, Any]]) -> str:
    lines = [f"**{condition}**", "",
             "| denoiser | PSNR vs truth (dB) | PSNR, affine-fitted (dB) | Pearson r | "
             "region-pair SNR (dB) | var_B/var_S |", "| --- | --- | --- | --- | --- | --- |"]
    for name, s in rows.items():
        lines.append(f"| {name} | {np.mean(s['psnr']):.2f} ± {np.std(s['psnr']):.2f} | "
                     f"{np.mean(s['psnr_affine']):.2f} ± {np.std(s['psnr_affine']):.2f} | "
                     f"{np.mean(s['r']):.3f} ± {np.std(s['r']):.3f} | "
                     f"{s['region_snr_db']:.2f} | {s['bias_ratio']:.3f} |")
    return "\n".join(lines)


def conditions(args: argparse.Namespace) -> list[tuple[str, list[Micrograph], list[Micrograph]]]:
    """(name, test micrographs, training micrographs) of each noise condition."""
    if args.data is not None:
        train = from_folder(args.train_data) if args.train_data else []
        return [(f"data: {args.data}", from_folder(args.data), train)]
    params = SimulationParams(contrast_scale=args.contrast_scale, dose=args.dose)
    out = []
    for sigma in args.noise_sigmas:
        name = "white noise" if sigma <= 0 else f"coloured noise, σ {sigma:g} px"
        out.append((name, simulated(args.test_n, args.size, 2, params, sigma),
                    simulated(args.train_n, args.size, 1, params, sigma)))
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()},
                              "conditions": {}}
    crops: dict[str, dict[str, np.ndarray]] = {}
    for name, test, train in conditions(args):
        sigma = fitted_sigma(train) if train else None
        rows, first = {}, {"truth": test[0].truth}
        for label, method in methods(args, sigma).items():
            print(f"[{name}] {label}", file=sys.stderr, flush=True)
            outs = method(test)
            rows[label] = score(test, outs, args.box_size)
            first[label] = outs[0][0]
        report["conditions"][name] = {"fitted_sigma": sigma, "rows": rows}
        crops[name] = first
        print(f"\n{table(name, rows)}\nfitted σ: {sigma or 0:.3g} px\n", flush=True)
    if args.figure:
        crop_figure(crops, args.figure, args.crop or _crop_at_particle(test[0]))
    return report


def figure_only(args: argparse.Namespace) -> None:
    """Redraw ``--figure`` from the first test micrograph of each condition (no scores)."""
    crops: dict[str, dict[str, np.ndarray]] = {}
    for name, test, train in conditions(args):
        sigma = fitted_sigma(train) if train else None
        crops[name] = {"truth": test[0].truth}
        for label, method in methods(args, sigma).items():
            crops[name][label] = method(test[:1])[0][0]
    crop_figure(crops, args.figure, args.crop or _crop_at_particle(test[0]))


def _crop_at_particle(m: Micrograph, n: int = 160) -> list[int]:
    """A crop of ``n`` px centred on the particle nearest the micrograph's centre."""
    ny, nx = m.truth.shape
    x, y = min(m.picks, key=lambda p: np.hypot(p[0] - nx / 2, p[1] - ny / 2))
    return [int(np.clip(y - n // 2, 0, ny - n)), int(np.clip(x - n // 2, 0, nx - n)), n]


def _sigma_keep(text: str) -> tuple[float, float]:
    """``PX:SHARE`` as ``(σ, share)``."""
    try:
        sigma, keep = (float(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not PX:SHARE (e.g. 12:0.4)") from None
    return sigma, keep


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--test-n", type=int, default=6)
    p.add_argument("--train-n", type=int, default=4)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--noise-sigmas", type=float, nargs="+", default=[0.0, 0.6, 1.0])
    p.add_argument("--contrast-scale", type=float, default=10.0)
    p.add_argument("--dose", type=float, default=43.0)
    p.add_argument("--box-size", type=int, default=96,
                   help="region-pair box edge, px (the cartoon particles are ~100-150 Å across)")
    p.add_argument("--data", type=Path, help="score this dataset instead of simulating")
    p.add_argument("--train-data", type=Path, help="with --data: fit the Gaussian's σ here")
    p.add_argument("--model", nargs="*", default=[], metavar="NAME=PATH")
    p.add_argument("--topaz-python", dest="topaz", type=Path, default=None)
    p.add_argument("--smooth", type=float, nargs="*", default=[], metavar="PX",
                   help="also score general followed by a Gaussian of each σ (px)")
    p.add_argument("--smooth-keep", type=_sigma_keep, nargs="*", default=[],
                   metavar="PX:SHARE", help="also score general then a Gaussian of σ PX keeping "
                   "SHARE of the finer detail (`cryoden denoise --smooth PX --keep-detail SHARE`)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/topaz")
    p.add_argument("--figure", type=Path, default=ROOT / "docs/images/topaz_compare_crop.png")
    p.add_argument("--crop", type=int, nargs=3, default=None, metavar=("Y", "X", "N"),
                   help="figure crop (default: 160 px around the particle nearest the centre)")
    p.add_argument("--truth-smooth", type=float, nargs="*", default=[], metavar="PX",
                   help="also score the truth blurred by each σ (px)")
    p.add_argument("--rows", nargs="*", default=[], metavar="TEXT",
                   help="only the rows whose label contains one of these texts")
    p.add_argument("--figure-only", action="store_true",
                   help="only redraw --figure: every method on the first test micrograph")
    p.add_argument("--time-4096", action="store_true", help="only time one 4096² micrograph")
    p.add_argument("--cores", default="0,1", help="CPU cores for --time-4096 (taskset)")
    args = p.parse_args(argv)
    args.topaz = topaz_python(args.topaz)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.time_4096:
        result = time_4096(args.topaz, args.cores, args.contrast_scale, args.dose)
        (args.out / "timing_4096.json").write_text(json.dumps(result, indent=1) + "\n")
        return 0
    if args.figure_only:
        figure_only(args)
        return 0
    report = run(args)
    (args.out / "topaz_compare.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "topaz_compare.md").write_text("\n\n".join(
        table(name, c["rows"]) for name, c in report["conditions"].items()) + "\n")
    print(f"wrote {args.out}/topaz_compare.{{json,md}}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
