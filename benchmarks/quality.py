"""Denoising quality against the simulator's noise-free truth: baselines, modes and presets.

Usage::

    python benchmarks/quality.py --out DIR [--device auto] [--train-n 48] [--size 512]
                                 [--test-n 8] [--test-size 1024] [--epochs 20] [--only NAME ...]
                                 [--model NAME=WEIGHTS ...] [--json OUT.json]

1. Simulates one specimen (``--contrast-scale``, ``--dose``; other simulator defaults) with the
   project's own CLI: a training set of ``--train-n`` noisy/clean pairs, the same exposures as
   even/odd frame sums (8 frames), and ``--test-n`` held-out micrographs of ``--test-size``²
   from another seed.
2. Trains each configuration with ``cryoden train`` (printed, so every row can be rerun by
   hand): Noise2Clean for every preset, Noise2Noise on the even/odd sums, Noise2Void on the noisy
   micrographs alone. Patches of 128² (the U-Net's: 128² as well), batch 16, Adam with a cosine
   schedule, seed 0.
3. Scores each model and the baselines on every held-out micrograph against its noise-free truth:
   PSNR (data range 1, the simulator's clean images lie in [0, 1]) and Pearson r, averaged over
   micrographs. Baselines: the noisy input; the Gaussian filter whose width best denoises the
   first 4 training pairs (what a user could fit on the data the N2C models learn from); and
   the best Gaussian filter **chosen per test micrograph against its truth** (an oracle no user
   has: the strictest bar for a denoiser).

``--model NAME=WEIGHTS`` scores an existing weight file too (e.g. the shipped general model);
``--only`` trains a subset. Prints a Markdown table; ``--json`` writes the rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from napari_cryoden.cli.main import main as cryoden  # noqa: E402
from napari_cryoden.data.pairs import find_pairs  # noqa: E402
from napari_cryoden.evaluation.baselines import best_gaussian, gaussian_baseline  # noqa: E402
from napari_cryoden.io.images import read_image  # noqa: E402

# name -> (mode, preset, extra train flags)
CONFIGS: dict[str, tuple[str, str, list[str]]] = {
    "N2C seed": ("n2c", "seed", []),
    "N2C residual": ("n2c", "residual", []),
    "N2C wide5": ("n2c", "wide5", []),
    "N2C deep": ("n2c", "deep", []),
    "N2C unet-small": ("n2c", "unet-small", []),
    "N2N seed": ("n2n", "seed", []),
    "N2N unet-small": ("n2n", "unet-small", []),
    "N2V seed": ("n2v", "seed", []),
    "N2V unet-small": ("n2v", "unet-small", []),
}


def simulate(args: argparse.Namespace) -> dict[str, Path]:
    data = args.out / "data"
    specimen = ["--contrast-scale", str(args.contrast_scale), "--dose", str(args.dose)]
    runs = {
        "train": ["simulate", str(data / "train"), "--n", str(args.train_n), "--size",
                  str(args.size), "--seed", "1", *specimen],
        "halves": ["simulate", str(data / "halves"), "--n", str(args.train_n), "--size",
                   str(args.size), "--seed", "1", "--even-odd", "--frames", "8", *specimen],
        "test": ["simulate", str(data / "test"), "--n", str(args.test_n), "--size",
                 str(args.test_size), "--seed", "2", *specimen],
    }
    for name, argv in runs.items():
        if not (data / name / "simulation.json").exists():
            _run(argv)
    return {name: data / name for name in runs}


def train_argv(name: str, data: dict[str, Path], args: argparse.Namespace) -> list[str]:
    mode, preset, extra = CONFIGS[name]
    if mode == "n2c":
        source = ["--noisy", str(data["train"] / "noisy"), "--clean", str(data["train"] / "clean")]
    elif mode == "n2n":
        source = ["--even", str(data["halves"] / "even"), "--odd", str(data["halves"] / "odd")]
    else:
        source = ["--noisy", str(data["train"] / "noisy"), "--mode", "n2v"]
    run = args.out / "runs" / name.replace(" ", "_")
    return ["train", *source, "--out", str(run), "--preset", preset, "--epochs",
            str(args.epochs), "--patch-size", "128", "--batch-size", "16", "--lr", "2e-3",
            "--schedule", "cosine", "--seed", "0", "--val-fraction", "0.1", "--device",
            args.device, *extra]


def training_sigma(data: dict[str, Path], n: int = 4) -> float:
    """The Gaussian width that best denoises the first ``n`` training pairs (mean of theirs): the
    filter a user could fit on the same data the N2C models learn from."""
    pairs = find_pairs(data["train"] / "noisy", data["train"] / "clean")[:n]
    return float(np.mean([best_gaussian(*(np.asarray(read_image(p)[0], np.float32)
                                           for p in pair))[0] for pair in pairs]))


def score(weights: Path | None, data: dict[str, Path], device: str,
          sigma_train: float = 1.0) -> dict[str, list[float]]:
    """Per-micrograph PSNR and r of a model (or, for None, of the noisy input and the two
    Gaussian baselines) against the truth."""
    import torch

    from napari_cryoden.inference.denoiser import denoise
    from napari_cryoden.models.checkpoint import load_checkpoint

    model = ckpt = None
    if weights is not None:
        model, ckpt = load_checkpoint(weights, device="cpu")
    out: dict[str, list[float]] = {}
    for noisy_path, clean_path in find_pairs(data["test"] / "noisy", data["test"] / "clean"):
        noisy = np.asarray(read_image(noisy_path)[0], np.float32)
        truth = np.asarray(read_image(clean_path)[0], np.float32)
        if model is None:
            sigma = best_gaussian(noisy, truth)[0]
            images = {"noisy input": noisy,
                      "Gaussian, σ fitted on the training pairs": gaussian_baseline(
                          noisy, sigma_train),
                      "best Gaussian (oracle σ per micrograph)": gaussian_baseline(noisy, sigma)}
            out.setdefault("sigma", []).append(float(sigma))
        else:
            dev = "cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
            images = {"model": denoise(model, noisy, normalization=ckpt.normalization,
                                       device=dev)}
        for key, image in images.items():
            mse = float(np.mean((image.astype(np.float64) - truth) ** 2))
            out.setdefault(f"{key} psnr", []).append(10 * np.log10(1.0 / mse))
            out.setdefault(f"{key} r", []).append(float(np.corrcoef(image.ravel(),
                                                                    truth.ravel())[0, 1]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--train-n", type=int, default=48)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--test-n", type=int, default=8)
    parser.add_argument("--test-size", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--contrast-scale", type=float, default=5.0)
    parser.add_argument("--dose", type=float, default=40.0)
    parser.add_argument("--only", nargs="*", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--model", nargs="*", default=[], metavar="NAME=WEIGHTS")
    parser.add_argument("--test-dir", type=Path,
                        help="score on this folder's noisy/ and clean/ instead of simulating "
                             "(with --only and no names: baselines and --model rows only)")
    parser.add_argument("--train-dir", type=Path,
                        help="with --test-dir: noisy/ and clean/ pairs to fit the Gaussian on")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.test_dir is not None:
        if args.only or args.train_dir is None:
            parser.error("--test-dir needs --train-dir and an empty --only")
        data = {"test": args.test_dir, "train": args.train_dir}
    else:
        data = simulate(args)
    rows: list[dict[str, Any]] = []
    sigma_train = training_sigma(data)
    base = score(None, data, args.device, sigma_train)
    for key in ("noisy input", "Gaussian, σ fitted on the training pairs",
                "best Gaussian (oracle σ per micrograph)"):
        rows.append(_row(key, base[f"{key} psnr"], base[f"{key} r"], None, None))
    print(f"Gaussian σ fitted on the training pairs: {sigma_train:.3g} px; oracle σ per test "
          f"micrograph: {', '.join(f'{s:.3g}' for s in base['sigma'])}")
    runs = [(name, train_argv(name, data, args)) for name in args.only]
    runs += [(text.split("=", 1)[0], None) for text in args.model]
    weights = {text.split("=", 1)[0]: Path(text.split("=", 1)[1]) for text in args.model}
    for name, command in runs:
        seconds = None
        if command is not None:
            start = time.perf_counter()
            _run(command)
            seconds = time.perf_counter() - start
            weights[name] = Path(command[command.index("--out") + 1]) / "best.safetensors"
        result = score(weights[name], data, args.device)
        rows.append(_row(name, result["model psnr"], result["model r"], seconds, command))
    print("\n| denoiser | PSNR vs truth (dB) | Pearson r vs truth | train time |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        took = f"{row['train_s']:.0f} s" if row["train_s"] is not None else "—"
        print(f"| {row['name']} | {row['psnr']:.2f} ± {row['psnr_sd']:.2f} | "
              f"{row['r']:.3f} ± {row['r_sd']:.3f} | {took} |")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "rows": rows}, indent=1))
    return 0


def _row(name: str, psnr: list[float], r: list[float], seconds: float | None,
         command: list[str] | None) -> dict[str, Any]:
    return {"name": name, "psnr": float(np.mean(psnr)), "psnr_sd": float(np.std(psnr)),
            "r": float(np.mean(r)), "r_sd": float(np.std(r)), "psnr_each": psnr, "r_each": r,
            "train_s": seconds, "command": None if command is None else "cryoden " + " ".join(
                command)}


def _run(argv: list[str]) -> None:
    print("$ cryoden " + " ".join(argv), flush=True)
    code = cryoden(argv)
    if code:
        raise SystemExit(f"cryoden {argv[0]} failed with exit code {code}")


if __name__ == "__main__":
    raise SystemExit(main())
