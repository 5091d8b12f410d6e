"""The ``cryoden`` command line: ``simulate``, ``split-frames``, ``train``, ``denoise``,
``evaluate``, and the weight interop commands ``export-raw``, ``import-raw``, ``check-weights``.

Commands only parse arguments and delegate to the core. Errors caused by the input
(:class:`~napari_cryoden.errors.CryodenError`, unreadable paths) print one line
``cryoden: error: …`` and exit with status 2, never a traceback. ``main(argv)`` returns the exit
status, so tests call it directly.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..config.flags import add_flags, config_from_args, config_to_argv
from ..config.sections import Config
from ..errors import CryodenError, InputError

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 2, 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or EXIT_OK)
    except CryodenError as exc:
        print(f"cryoden: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        print(f"cryoden: error: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # e.g. disk full while writing results
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"cryoden: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except FloatingPointError as exc:
        print(f"cryoden: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cryoden", description="Train and run a cryo-EM micrograph denoiser.")
    parser.add_argument("--version", action="version", version=f"napari-cryoden {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text, add, func in _COMMANDS:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        add(cmd)
        cmd.set_defaults(func=func)
    return parser


# -- simulate ---------------------------------------------------------------------------------
def _add_simulate(p: argparse.ArgumentParser) -> None:
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR",
                   help="writes OUT_DIR/noisy/*.mrc and OUT_DIR/clean/*.mrc")
    p.add_argument("--n", type=int, default=8, help="number of micrographs (default 8)")
    p.add_argument("--size", type=int, default=1024, help="micrograph size in px (default 1024)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--dose", type=_value_or_range, default=None, metavar="E[:E2]",
                   help="electron dose in e/Å² (default 20); LO:HI draws one per micrograph")
    p.add_argument("--pixel-size", type=_value_or_range, default=None, metavar="A[:A2]",
                   help="pixel size in Å (default 1.0); LO:HI draws one per micrograph")
    p.add_argument("--contrast-scale", type=_value_or_range, default=None, metavar="S[:S2]",
                   help="multiply the particles' phase contrast (default 1.0 = physical; real "
                        "single-frame SNR is ~0.01 per pixel, too weak for a 3x3 net to "
                        "learn); LO:HI draws one per micrograph")
    p.add_argument("--defocus", type=_value_or_range, default=None, metavar="UM[:UM2]",
                   help="defocus in µm, drawn per micrograph from LO:HI (default 0.8:2.5)")
    p.add_argument("--clean-dose", type=float, default=None,
                   help="make the 'clean' targets noisy micrographs at this dose (the seed's "
                        "protocol); the noise-free images then go to OUT_DIR/truth/")
    p.add_argument("--movies", action="store_true",
                   help="write movies instead: OUT_DIR/movies/*.mrcs, the dose split over "
                        "--frames frames with independent noise, and OUT_DIR/clean/")
    p.add_argument("--even-odd", action="store_true",
                   help="write the even/odd frame sums of each movie to OUT_DIR/even/ and "
                        "OUT_DIR/odd/ (for --mode n2n), and OUT_DIR/clean/ at their scale "
                        "(truth / 2); combines with --movies")
    p.add_argument("--frames", type=int, default=None,
                   help="frames per movie for --movies/--even-odd (default 8; even for "
                        "--even-odd)")


def _value_or_range(text: str) -> float | tuple[float, float]:
    """``"20"`` → 20.0; ``"10:60"`` → (10.0, 60.0)."""
    try:
        if ":" in text:
            low, high = (float(part) for part in text.split(":"))
            return low, high
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or LO:HI, got {text!r}") from None


def _run_simulate(args: argparse.Namespace) -> int:
    from ..simulate.micrographs import SimulationParams, simulate_dataset

    given = {"dose": args.dose, "pixel_size": args.pixel_size,
             "contrast_scale": args.contrast_scale}
    overrides = {k: v for k, v in given.items() if isinstance(v, float)}
    vary = {k: v for k, v in given.items() if isinstance(v, tuple)}
    if args.clean_dose is not None:
        overrides["clean_dose"] = args.clean_dose
    if args.defocus is not None:
        low, high = args.defocus if isinstance(args.defocus, tuple) else (args.defocus,) * 2
        overrides.update(defocus_min=low, defocus_max=high)
    if args.n < 1 or args.size < 16:
        raise CryodenError(f"--n must be >= 1 and --size >= 16 (got {args.n}, {args.size})")
    params = SimulationParams(**overrides)
    if args.movies or args.even_odd or args.frames is not None:
        if vary:
            raise CryodenError("ranges (LO:HI) of --dose/--pixel-size/--contrast-scale are for "
                               "plain noisy/clean pairs, not --movies/--even-odd")
        return _simulate_movies(args, params)
    progress = _progress(args.n, "simulate", "micrograph")
    simulate_dataset(args.out_dir, args.n, args.size, args.seed, params,
                     progress=lambda done, total: progress.update(1), vary=vary)
    progress.close()
    target = ("noise-free ground truth" if params.clean_dose is None
              else f"noisy targets at {params.clean_dose} e/Å² (ground truth in truth/)")

    def show(name: str, unit: str) -> str:
        low_high = vary.get(name)
        return (f"{low_high[0]:g}-{low_high[1]:g} {unit} (per micrograph)" if low_high
                else f"{getattr(params, name):g} {unit}")

    print(f"wrote {args.n} noisy/clean pairs of {args.size}x{args.size} px to {args.out_dir}: "
          f"dose {show('dose', 'e/Å²')}, pixel {show('pixel_size', 'Å')}, defocus "
          f"{params.defocus_min:g}-{params.defocus_max:g} µm, clean = {target}")
    return EXIT_OK


def _simulate_movies(args: argparse.Namespace, params: Any) -> int:
    from ..simulate.movies import simulate_movie_dataset

    if not (args.movies or args.even_odd):
        raise CryodenError("--frames is for --movies and/or --even-odd")
    frames = 8 if args.frames is None else args.frames
    progress = _progress(args.n, "simulate", "movie")
    try:
        result = simulate_movie_dataset(
            args.out_dir, args.n, args.size, args.seed, params, frames=frames,
            movies=args.movies, even_odd=args.even_odd,
            progress=lambda done, total: progress.update(1))
    finally:
        progress.close()
    parts = (["movies/"] if args.movies else []) + (["even/", "odd/"] if args.even_odd else [])
    print(f"wrote {args.n} simulated {frames}-frame exposures of {args.size}x{args.size} px to "
          f"{args.out_dir}: {', '.join(parts)} and clean/ (noise-free, x{result.clean_scale:g}"
          f" of the truth); dose {params.dose} e/Å² in all, pixel {params.pixel_size} Å")
    return EXIT_OK


# -- split-frames -----------------------------------------------------------------------------
def _add_split_frames(p: argparse.ArgumentParser) -> None:
    p.add_argument("movies", type=Path, nargs="+", metavar="MOVIE",
                   help="movie stacks (MRC or TIFF, at least 2 frames) or folders of them")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="writes DIR/even/NAME.mrc and DIR/odd/NAME.mrc (float32, pixel size "
                        "kept)")
    p.add_argument("--equal-halves", action="store_true",
                   help="leave out the last frame of movies with an odd number of frames, so "
                        "both sums hold the same dose")


def _run_split_frames(args: argparse.Namespace) -> int:
    from ..io.frames import split_frames
    from ..io.images import list_images

    movies = [f for item in args.movies
              for f in (list_images(item) if item.is_dir() else [item])]
    bar = _progress(len(movies), "split-frames", "movie")
    try:
        for movie in movies:
            sums = split_frames(movie, args.out, equal_halves=args.equal_halves)
            bar.update(1)
            if sums.n_even != sums.n_odd:
                print(f"note: {movie}: {sums.n_frames} frames, so the even sum holds "
                      f"{sums.n_even} and the odd {sums.n_odd} (--equal-halves drops the last)",
                      file=sys.stderr)
    finally:
        bar.close()
    print(f"wrote the even/odd frame sums of {len(movies)} movie(s) to {args.out / 'even'} and "
          f"{args.out / 'odd'}")
    return EXIT_OK


# -- train ------------------------------------------------------------------------------------
def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--noisy", type=Path, help="folder of noisy micrographs")
    p.add_argument("--clean", type=Path,
                   help="folder of clean targets, paired with --noisy by file name")
    p.add_argument("--even", type=Path,
                   help="folder of even-frame sums (Noise2Noise; implies --mode n2n)")
    p.add_argument("--odd", type=Path,
                   help="folder of odd-frame sums, paired with --even by file name (a trailing "
                        "_EVN/_ODD is ignored)")
    # torchrun's parser takes "--even" for an abbreviation of its "--event-log-handler"
    p.add_argument("--even-sums", type=Path, dest="even", help=argparse.SUPPRESS)
    p.add_argument("--store", type=Path,
                   help="a packed store (cryoden pack) instead of --noisy/--clean; validation "
                        "holds out --val-fraction of its micrographs")
    p.add_argument("--val-noisy", type=Path,
                   help="explicit validation folder (noisy); with --mode n2n/n2v an extra "
                        "clean set each epoch is also scored on")
    p.add_argument("--val-clean", type=Path, help="explicit validation folder (clean)")
    p.add_argument("--out", type=Path, default=None, metavar="RUN_DIR",
                   help="run folder: best.safetensors, last.safetensors, history.json")
    p.add_argument("--resume", type=Path, nargs="?", const=True, default=False,
                   metavar="RUN_DIR",
                   help="continue the run in RUN_DIR (default: --out) from its last.safetensors: "
                        "epoch count, optimizer state and history go on")
    p.add_argument("--ddp", action="store_true",
                   help="data-parallel training in several processes of this host (launches "
                        "torchrun; --batch-size is per process); see docs/distributed.md")
    p.add_argument("--nproc", type=int, default=None, metavar="N",
                   help="processes for --ddp (implies it; default: one per GPU, 2 on the CPU)")
    p.add_argument("--events", default=None, metavar="FILE",
                   help="also write every training event as one JSON object per line to FILE "
                        "(rank 0 only; '-': stdout, the usual lines then go to stderr); see "
                        "docs/distributed.md")
    add_flags(p)


def train_config(args: argparse.Namespace) -> Config:
    """The run config: defaults overridden by the flags given; ``--even`` implies n2n."""
    base = Config()
    if getattr(args, "even", None) is not None and getattr(args, "mode", None) is None:
        base = base.replace(train={"mode": "n2n"})  # --even/--odd mean Noise2Noise
    return config_from_args(args, base)


def _train_argv(args: argparse.Namespace, config: Config) -> list[str]:
    """The ``train`` arguments of each rank: the sources given and the whole run config,
    without ``--ddp``/``--nproc``."""
    argv = ["train", "--out", str(args.out)]
    for name, flag in (("store", "--store"), ("noisy", "--noisy"), ("clean", "--clean"),
                       ("even", "--even-sums"), ("odd", "--odd")):  # --even-sums: see _add_train
        if getattr(args, name) is not None:
            argv += [flag, str(getattr(args, name))]
    if args.val_noisy is not None:
        argv += ["--val-noisy", str(args.val_noisy), "--val-clean", str(args.val_clean)]
    if args.resume:
        argv.append("--resume")
    if args.events is not None:
        argv += ["--events", args.events]
    return argv + config_to_argv(config)


def _resolve_run_dir(args: argparse.Namespace) -> None:
    """``--resume RUN_DIR`` names the run folder; afterwards ``args.resume`` is a bool."""
    if isinstance(args.resume, Path):
        if args.out is not None and args.out.resolve() != args.resume.resolve():
            raise InputError(f"train: --resume {args.resume} and --out {args.out} name "
                             "different run folders")
        args.out, args.resume = args.resume, True
    if args.out is None:
        raise InputError("train: give the run folder with --out RUN_DIR (or --resume RUN_DIR)")
    if args.resume and not (args.out / "last.safetensors").is_file():
        raise InputError(f"{args.out}: nothing to resume (no last.safetensors in it)")


def _run_train(args: argparse.Namespace) -> int:
    from ..data.sources import training_data
    from ..training import distributed
    from ..training.events import to_json_line
    from ..training.loop import (
        CheckpointSaved,
        EpochEnd,
        TrainEnd,
        TrainStart,
        TrainStep,
        TrainWarning,
    )
    from ..training.loop import train as run_training
    from ._sources import sources_from_args

    _resolve_run_dir(args)
    config = train_config(args)
    train_pairs, val_pairs, clean_val = training_data(  # bad input fails here
        sources_from_args(args), config)
    if (args.ddp or args.nproc is not None) and not distributed.launched():
        nproc = args.nproc or distributed.default_nproc(config.train.device)
        return distributed.launch(_train_argv(args, config), nproc)
    stop = threading.Event()
    events = run_training(config, train_pairs, val_pairs, args.out, stop=stop,
                          resume=args.resume, clean_val_pairs=clean_val)
    log, out = _open_event_log(args.events)
    bar = None
    try:
        for event in events:
            if log is not None:
                log.write(to_json_line(event))
                log.flush()
            if isinstance(event, TrainStart):
                source = (f"store {args.store}" if args.store is not None else
                          f"{len(train_pairs)} train / {len(val_pairs)} val micrographs")
                if config.train.mode != "n2c":
                    source += f" ({_MODE_NAMES[config.train.mode]}" + (
                        f", {len(clean_val)} clean val micrographs)" if clean_val else ")")
                print(_start_line(event, source), file=out)
            elif isinstance(event, TrainStep):
                if bar is None:
                    bar = _progress(event.steps_per_epoch, f"epoch {event.epoch}", "step")
                bar.update(1)
                bar.set_postfix(loss=f"{event.loss:.5f}", refresh=False)
            elif isinstance(event, EpochEnd):
                if bar is not None:
                    bar.close()
                    bar = None
                print(event.describe(), file=out)
            elif isinstance(event, TrainWarning):
                print(f"warning: epoch {event.epoch}: {event.message}", file=sys.stderr)
            elif isinstance(event, CheckpointSaved) and event.kind == "best":
                print(f"  ✓ Saved {event.path}", file=out)
            elif isinstance(event, TrainEnd) and event.rank == 0:
                print(event.describe(), file=out)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        events.close()  # saves history.json and last.safetensors; best.safetensors is kept
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"interrupted: history and last weights saved in {args.out}; "
                  f"resume with --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if log is not None and log is not sys.stdout:
            log.close()
    return EXIT_OK


def _open_event_log(target: str | None) -> tuple[Any, Any]:
    """``(log, out)``: where ``--events`` lines go (None: nowhere, or not rank 0) and where
    the usual lines go (stderr when the events take stdout)."""
    if target is None or int(os.environ.get("RANK", "0")) != 0:
        return None, sys.stdout
    if target == "-":
        return sys.stdout, sys.stderr
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("w", encoding="utf-8"), sys.stdout


_MODE_NAMES = {"n2n": "Noise2Noise on even/odd halves", "n2v": "Noise2Void, no clean targets"}


def _start_line(e: Any, source: str) -> str:
    where = e.device if e.world_size == 1 else f"{e.world_size} processes × {e.device}"
    dropped = (f" ({e.n_dropped_patches} dropped per epoch so ranks step together)"
               if e.n_dropped_patches else "")
    return (f"training on {where}: {source}, "
            f"{e.n_train_patches} train{dropped} / {e.n_val_patches} val patches, "
            f"{e.steps_per_epoch} steps per epoch of {e.batch_size} ({e.precision})")




# -- denoise ----------------------------------------------------------------------------------
def _add_denoise(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", type=Path, nargs="+", metavar="[MODEL] INPUT",
                   help="a .safetensors weight file or a shipped model's name (general, "
                        "general-fast), then micrographs (MRC/TIFF) or folders of them; "
                        "without MODEL the shipped general model is used")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output folder; files keep their names, written as float32 MRC")
    _add_device_flags(p)
    p.add_argument("--precision", choices=("fp32", "tf32", "fp16", "bf16"), default="fp32",
                   help="fp32 (exact), tf32 (CUDA), fp16 or bf16 (fastest on CUDA; the first "
                        "tiles are also run in fp32 and the difference printed)")
    p.add_argument("--fused", action=argparse.BooleanOptionalAction, default=True,
                   help="with fp16 on CUDA, run the seed net by the fused Triton kernels when "
                        "Triton is installed (default; about 3x cuDNN)")


def _add_device_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    p.add_argument("--tile-size", type=int, default=None,
                   help="tile size in px (default: chosen from free memory)")
    p.add_argument("--batch-size", type=int, default=None, help="tiles per batch (default: auto)")


def _run_denoise(args: argparse.Namespace) -> int:
    from ..inference.denoiser import denoise_file
    from ..inference.load import load_denoiser
    from ..io.images import list_images
    from ..models.pretrained import is_shipped, resolve_model

    first = args.inputs[0]
    given = is_shipped(first) or first.suffix.lower() == ".safetensors"
    args.model = resolve_model(first if given else None)
    inputs = args.inputs[1:] if given else args.inputs
    if not inputs:
        raise InputError("denoise: no micrographs given after the model")
    if not given:
        print(f"model: the shipped general model ({args.model.name}); give a .safetensors "
              "file first to use your own")
    denoiser = load_denoiser(args.model, args.device)
    model, ckpt, device = denoiser.net, denoiser.checkpoint, denoiser.device
    files = [f for item in inputs
             for f in (list_images(item) if item.is_dir() else [item])]
    args.out.mkdir(parents=True, exist_ok=True)
    bar = _progress(len(files), "denoise", "micrograph")
    for path in files:
        suffix = ".mrcs" if path.suffix.lower() == ".mrcs" else ".mrc"
        options = {"normalization": ckpt.normalization, "device": device,
                   "tile_size": args.tile_size, "batch_size": args.batch_size,
                   "fused": args.fused}
        if args.precision != "fp32" and path == files[0]:
            _check_precision(model, path, args.precision, options)
        denoise_file(model, path, args.out / (path.stem + suffix), precision=args.precision,
                     **options)
        bar.update(1)
    bar.close()
    print(f"denoised {len(files)} micrograph(s) with {args.model} on {device} "
          f"({args.precision}); wrote float32 MRC to {args.out}")
    return EXIT_OK


def _check_precision(model: Any, path: Path, precision: str, options: dict[str, Any]) -> None:
    """Print how far ``precision`` is from fp32 on the first tiles; warn above 1 % of the std."""
    from ..inference.denoiser import compare_precision
    from ..io.images import read_image

    check = compare_precision(model, read_image(path)[0], precision, name=str(path), **options)
    print(check)
    if check.relative > 0.01:
        print(f"warning: {path}: {precision} differs from fp32 by more than 1 % of the image's "
              "std; use --precision fp32", file=sys.stderr)


# -- evaluate ---------------------------------------------------------------------------------
def _add_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, metavar="MODEL",
                   help="a .safetensors weight file or a shipped model's name (general, "
                        "general-fast)")
    p.add_argument("--noisy", type=Path, required=True, help="folder of noisy micrographs")
    p.add_argument("--clean", type=Path, required=True, help="folder of clean targets")
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
    _add_device_flags(p)


def _run_evaluate(args: argparse.Namespace) -> int:
    import json

    from ..devices import resolve_device
    from ..evaluation.checklist import format_checklist
    from ..evaluation.report import evaluate, write_report
    from ..models.checkpoint import load_checkpoint
    from ..models.pretrained import resolve_model

    args.model = resolve_model(args.model)
    device = resolve_device(args.device)
    model, ckpt = load_checkpoint(args.model, device=device)
    history_path = args.history or args.model.parent / "history.json"
    history = json.loads(history_path.read_text()) if history_path.exists() else None
    report = evaluate(
        model, args.noisy, args.clean,
        patch_size=args.patch_size or ckpt.config.data.patch_size, data_range=args.data_range,
        device=device, normalization=ckpt.normalization, target_kind=args.target_kind,
        figures_dir=args.figures, history=history, checkpoint=ckpt,
    )
    write_report(report, args.json)
    print(_summary(report))
    print(format_checklist(report["checklist"]))
    print(f"report: {args.json}" + (f", figures: {args.figures}" if args.figures else ""))
    _print_warnings(report["warnings"])
    return EXIT_OK


def _print_warnings(warnings: Sequence[str]) -> None:
    from ..evaluation.guards import format_warnings

    if warnings:
        print(format_warnings(warnings), file=sys.stderr)


def _summary(report: dict[str, Any]) -> str:
    lines = [f"{'':>16} {'MSE':>10} {'PSNR (dB)':>10} {'Pearson r':>10}"]
    rows = [("model", report), ("noisy input", report["baselines"]["noisy"]),
            (f"Gaussian σ={report['baselines']['gaussian']['sigma']:.2f}",
             report["baselines"]["gaussian"])]
    for name, r in rows:
        lines.append(f"{name:>16} {r['mse']:>10.6f} {r['psnr']:>10.2f} {r['corr']:>10.4f}")
    lines.append(f"target: {report['target_kind']} ({report['n_micrographs']} micrographs, "
                 f"{report['n_patches']} patches, data range {report['data_range']})")
    return "\n".join(lines)


# -- export-raw / import-raw / check-weights ---------------------------------------------------
_LAYOUT_HELP = ("oihw (PyTorch/cuDNN, the seed's Fortran writer), fortran (column-major "
                "(out,in,kH,kW)), hwio (TensorFlow), seed-legacy (the seed's old loader, = hwio), "
                "or any permutation of o,i,h,w in C order; see docs/weight-interop.md")


def _add_name_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights-pattern", default=None, metavar="P",
                   help="weight file names, {k} = layer number (default conv{k}_weights.bin)")
    p.add_argument("--bias-pattern", default=None, metavar="P",
                   help="bias file names (default conv{k}_bias.bin)")


def _raw_names(args: argparse.Namespace) -> Any:
    from ..interop.raw import RawNames

    if args.weights_pattern is None and args.bias_pattern is None:
        return None
    return RawNames(args.weights_pattern or RawNames.weights, args.bias_pattern or RawNames.bias)


def _add_export_raw(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, metavar="MODEL", help="a .safetensors weight file")
    p.add_argument("out_dir", type=Path, metavar="DIR", help="folder for the raw files")
    p.add_argument("--layout", default="oihw", help=_LAYOUT_HELP + " (default oihw)")
    _add_name_flags(p)


def _run_export_raw(args: argparse.Namespace) -> int:
    from ..interop.raw import SIDECAR, export_raw, resolve_layout

    written = export_raw(args.model, args.out_dir, args.layout, _raw_names(args))
    print(f"wrote {len(written)} little-endian float32 files in layout {args.layout} "
          f"({resolve_layout(args.layout)}, C order) and {SIDECAR} to {args.out_dir}")
    return EXIT_OK


def _add_import_raw(p: argparse.ArgumentParser) -> None:
    p.add_argument("raw_dir", type=Path, metavar="DIR", help="folder of raw weight/bias files")
    p.add_argument("--out", type=Path, required=True, metavar="MODEL",
                   help="the .safetensors weight file to write")
    p.add_argument("--layout", default=None,
                   help=_LAYOUT_HELP + ", or auto (ranks every axis order on the validation "
                        "pair; default: DIR's cryoden_raw.json, else oihw)")
    p.add_argument("--validate-noisy", type=Path, metavar="DIR", help="validation noisy folder")
    p.add_argument("--validate-clean", type=Path, metavar="DIR", help="validation clean folder")
    p.add_argument("--normalization", choices=("none", "meanstd", "percentile"), default=None,
                   help="normalisation the weights were trained with (default: DIR's "
                        "cryoden_raw.json, else none, as the Fortran trainer used raw values)")
    for name, text in (("channels", "hidden channels"), ("depth", "conv layers"),
                       ("kernel-size", "kernel size")):
        p.add_argument(f"--{name}", type=int, default=None,
                       help=f"model {text} (default: cryoden_raw.json, else the seed's)")
    p.add_argument("--max-images", type=int, default=4,
                   help="validation micrographs used (default 4)")
    p.add_argument("--crop", type=int, default=512,
                   help="central crop of each validation micrograph, px (default 512)")
    _add_name_flags(p)


def _run_import_raw(args: argparse.Namespace) -> int:
    from ..interop.auto import LayoutAmbiguousError, import_raw

    if (args.validate_noisy is None) != (args.validate_clean is None):
        raise CryodenError("give both --validate-noisy and --validate-clean, or neither")
    validation = (args.validate_noisy, args.validate_clean) if args.validate_noisy else None
    try:
        result = import_raw(args.raw_dir, args.out, layout=args.layout,
                            model=_import_model(args), normalization=args.normalization,
                            names=_raw_names(args), validation=validation,
                            max_images=args.max_images, crop=args.crop)
    except LayoutAmbiguousError as exc:
        print(exc.ranking.table())
        raise
    if result.ranking is not None:
        print(result.ranking.table())
    print(f"imported {args.raw_dir} in layout {result.axes} → {result.path}")
    if result.mse is not None:
        print(f"validation: MSE {result.mse:.6g}, Pearson r {result.corr:.4f} "
              f"(noisy input: MSE {result.noisy_mse:.6g}, r {result.noisy_corr:.4f})")
    _print_warnings(result.warnings)
    return EXIT_OK


def _import_model(args: argparse.Namespace) -> Any:
    given = {k: v for k, v in (("channels", args.channels), ("depth", args.depth),
                               ("kernel_size", args.kernel_size)) if v is not None}
    return Config.from_dict({"model": given}).model if given else None


def _add_check_weights(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, metavar="MODEL", help="a .safetensors weight file")


def _run_check_weights(args: argparse.Namespace) -> int:
    from ..interop.raw import check_roundtrips, format_roundtrips
    from ..models.checkpoint import load_checkpoint

    model, ckpt = load_checkpoint(args.model)
    rows = check_roundtrips(model, ckpt.config)
    print(format_roundtrips(rows))
    return EXIT_OK if all(r.passed for r in rows if r.expect_equal) else EXIT_ERROR


# -- pack -------------------------------------------------------------------------------------
def _add_pack(p: argparse.ArgumentParser) -> None:
    p.add_argument("--noisy", type=Path, default=None,
                   help="folder of noisy micrographs (omit for a clean-only store: see --dose)")
    p.add_argument("--clean", type=Path, required=True, help="folder of clean micrographs")
    p.add_argument("--out", type=Path, required=True, metavar="STORE", help="store folder to write")
    p.add_argument("--patch-size", type=int, default=1024, help="patch size in px (default 1024)")
    p.add_argument("--normalization", choices=("none", "meanstd", "percentile"),
                   default="meanstd", help="pair stores: per-micrograph normalisation (default "
                                           "meanstd); clean-only stores hold raw values")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--dose", type=float, default=None,
                   help="clean-only store: dose (e/Å²) of the noise made on the GPU when training")
    p.add_argument("--read-noise", type=float, default=None,
                   help="clean-only store: Gaussian read noise, clean units (default 0)")
    p.add_argument("--pixel-size", type=float, default=None,
                   help="clean-only store: pixel size in Å (default: the files' headers)")


def _run_pack(args: argparse.Namespace) -> int:
    import time

    from ..data.packed import pack

    noise_flags = {k: v for k, v in (("dose", args.dose), ("read_noise", args.read_noise),
                                     ("pixel_size", args.pixel_size)) if v is not None}
    if args.noisy is not None and noise_flags:
        raise CryodenError("--dose, --read-noise and --pixel-size are for clean-only stores "
                           "(without --noisy)")
    if args.noisy is None and args.dose is None:
        raise CryodenError("give --noisy DIR for a pair store, or --dose for a clean-only store")
    bars: list[Any] = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(_progress(total, "pack", "micrograph"))
        bars[0].update(1)

    start = time.perf_counter()
    try:
        store = pack(args.noisy, args.clean, args.out, patch_size=args.patch_size,
                     normalization=args.normalization, noise=noise_flags or None,
                     overwrite=args.overwrite, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    seconds = time.perf_counter() - start
    print(f"packed {store.count} patches of {store.patch_size}x{store.patch_size} into "
          f"{args.out}: {store.nbytes / 1e9:.2f} GB in {seconds:.1f} s "
          f"({store.nbytes / 1e6 / max(seconds, 1e-9):.0f} MB/s)")
    return EXIT_OK


# -- shared -----------------------------------------------------------------------------------
def _progress(total: int, desc: str, unit: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                disable=None, leave=False)


_COMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None],
                      Callable[[argparse.Namespace], int]]] = [
    ("simulate", "Simulate noisy/clean micrograph pairs with known ground truth.",
     _add_simulate, _run_simulate),
    ("train", "Train the denoiser on noisy/clean pairs, even/odd halves (--mode n2n) or noisy "
              "micrographs alone (--mode n2v); streams from disk.",
     _add_train, _run_train),
    ("split-frames", "Sum the even and the odd frames of movies (for --mode n2n).",
     _add_split_frames, _run_split_frames),
    ("denoise", "Denoise micrographs with a trained model (tiled; any size).",
     _add_denoise, _run_denoise),
    ("evaluate", "Score a model against clean targets: metrics, checklist, figures.",
     _add_evaluate, _run_evaluate),
    ("export-raw", "Write a model as raw float32 files for the Fortran/cuDNN trainer.",
     _add_export_raw, _run_export_raw),
    ("import-raw", "Read raw float32 weight files (any layout, or auto) into a model.",
     _add_import_raw, _run_import_raw),
    ("check-weights", "Round-trip a model through every format and layout; pass/fail table.",
     _add_check_weights, _run_check_weights),
    ("pack", "Pack a dataset's patches into a float16 store for fast training.",
     _add_pack, _run_pack),
]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
