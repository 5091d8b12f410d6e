"""The command that runs a trained model: ``denoise`` (``evaluate`` is in :mod:`.evaluate`).

Each has ``add_NAME(parser)`` and ``run_NAME(args) -> exit status`` (see :class:`.main.Command`).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..inference.smoothing import FLAT_BACKGROUND, WHERE
from ._common import EXIT_ERROR, EXIT_OK, expand_folders, progress

if TYPE_CHECKING:
    from ..io.star import MicrographStar

__all__ = ["add_denoise", "run_denoise", "MODEL_HELP", "add_device_flags"]

AUTO = "auto"
MODEL_HELP = ("a .safetensors weight file or a shipped model's name (general, general-fast; "
              "general-v1, general-fast-v1: the first releases)")


def add_device_flags(p: argparse.ArgumentParser) -> None:
    """Add ``--device``, ``--tile-size`` and ``--batch-size`` to ``p``."""
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    p.add_argument("--tile-size", type=int, default=None,
                   help="tile size in px (default: chosen from free memory)")
    p.add_argument("--batch-size", type=int, default=None, help="tiles per batch (default: auto)")


# -- denoise ----------------------------------------------------------------------------------
def add_denoise(p: argparse.ArgumentParser) -> None:
    """Add the flags of ``cryoden denoise`` to ``p``."""
    p.add_argument("inputs", type=Path, nargs="*", metavar="[MODEL] INPUT",
                   help=f"{MODEL_HELP}, then micrographs (MRC/TIFF) or folders of them; "
                        "without MODEL the shipped general model is used")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output folder; files keep their names, written as float32 MRC")
    p.add_argument("--star", type=Path, default=None, metavar="FILE.star",
                   help="denoise the micrographs a RELION STAR file lists (_rlnMicrographName, "
                        "e.g. CtfFind/job003/micrographs_ctf.star) or a cryoSPARC .cs file "
                        "(micrograph_blob/path) instead of INPUTs: outputs keep their folders "
                        "under DIR, and DIR/FILE.star is the list with the denoised paths")
    p.add_argument("--project", type=Path, default=None, metavar="DIR",
                   help="with --star: the folder its relative paths start from (RELION's "
                        "project folder; default: the one at or above the STAR file that "
                        "holds the first micrograph)")
    add_device_flags(p)
    p.add_argument("--precision", choices=("fp32", "tf32", "fp16", "bf16"), default="fp32",
                   help="fp32 (exact), tf32 (CUDA), fp16 or bf16 (fastest on CUDA; the first "
                        "tiles are also run in fp32 and the difference printed)")
    p.add_argument("--fused", action=argparse.BooleanOptionalAction, default=True,
                   help="with fp16 on CUDA, run the seed net by the fused Triton kernels when "
                        "Triton is installed (default; about 3x cuDNN)")
    p.add_argument("--autotune", action=argparse.BooleanOptionalAction, default=None,
                   help="on CUDA, let cuDNN time its algorithms on the first micrograph "
                        "(seconds) to run the rest faster (default: on for 200 files or more, "
                        "where it pays back)")
    p.add_argument("--pixel-cutoff", type=_positive_sigma, default=None, metavar="SIGMA",
                   help="before denoising, set pixels at least SIGMA standard deviations from "
                        "each micrograph's mean to the mean (hot pixels of counting cameras; "
                        "as Topaz's --pixel-cutoff; default: off)")
    p.add_argument("--smooth", type=_smooth_arg, default=FLAT_BACKGROUND.sigma, metavar="PX",
                   help="after denoising, smooth by a Gaussian of this σ in pixels of the "
                        "micrograph, by default only on the background (--smooth-where): a "
                        "flat background, as Topaz's output, with particles and carbon edges "
                        f"kept. Default {FLAT_BACKGROUND.sigma:g}: on our two held-out "
                        "physics-grade sets 0.6-1.0 dB less PSNR against the truth than the "
                        "model alone and 4.7-4.8 dB more region-pair SNR, above Topaz on both "
                        "(docs/quality.md); on crowded ones 1.8 dB less PSNR. 0: off, the "
                        "model's output as it is")
    p.add_argument("--smooth-where", choices=WHERE, default=FLAT_BACKGROUND.where,
                   help="background (default): smooth where the denoised micrograph has "
                        "little detail, keep it where it is strong (particles, edges); "
                        "everywhere: the whole micrograph alike")
    p.add_argument("--keep-detail", type=_keep_arg, default=0.0, metavar="FRACTION",
                   help="keep this share (0-1) of the detail finer than the Gaussian where it "
                        "smooths, blurred + FRACTION x (denoised - blurred). Default 0. With "
                        "--smooth-where everywhere, --smooth 12 --keep-detail 0.4 scored more "
                        "region-pair SNR than --smooth 3.5 at 1.1-1.4 dB more PSNR "
                        "(docs/quality.md)")
    add_scale_flags(p)
    p.add_argument("--out-dtype", choices=("float32", "float16"), default="float32",
                   help="float32 MRC (default) or float16 (MRC mode 12, the mode of RELION's "
                        "and cryoSPARC's own 16-bit outputs: half the disk, about 3 "
                        "significant digits)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace outputs that exist; by default they are kept and the run goes "
                        "on with the others (an interrupted run resumes)")
    p.add_argument("--io-threads", type=_positive("a number of threads >= 1", 1.0), default=2,
                   metavar="N", help="threads reading ahead and threads writing behind while "
                                     "the model runs (default 2 each)")
    p.add_argument("--nproc", type=int, default=None, metavar="N",
                   help="denoise in N processes on this machine (torchrun; one per GPU: each "
                        "takes every Nth file); across machines see docs/cli.md")
    p.add_argument("--shard", type=_shard_arg, default=None, metavar="K/N",
                   help="denoise only every Nth file from the Kth (1 <= K <= N), e.g. one "
                        "SLURM array task each; no STAR file is written (run once more without "
                        "--shard: it keeps every output and writes it)")


def add_scale_flags(p: argparse.ArgumentParser) -> None:
    """Add ``--pixel-size``, ``--working-pixel-size`` and ``--bin`` to ``p``."""
    p.add_argument("--pixel-size", type=_positive("a pixel size in Å"), default=None,
                   metavar="Å", help="the micrographs' pixel size, for headers that record "
                   "none or a wrong one (default: each file's header)")
    p.add_argument("--working-pixel-size", type=_working, default=None, metavar="auto|Å",
                   help="denoise Fourier-binned to this pixel size and pad the result back "
                        "(never upsampled). Default auto: the model's range, i.e. a "
                        "micrograph finer than the range is binned to its lower end, others "
                        "are denoised as they are. Not with --bin")
    p.add_argument("--bin", type=_positive("a bin factor >= 1", 1.0), default=None,
                   metavar="F", help="denoise Fourier-binned by F (>= 1, e.g. 2 or 1.5) and pad "
                                     "the result back, as Topaz's --bin. Not with "
                                     "--working-pixel-size")


def _positive(what: str, least: float = 0.0) -> Callable[[str], float]:
    """Return a parser of a finite number above 0 (and at least ``least``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0 and value >= least):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value
    return parse


def _working(text: str) -> str | float:
    """``--working-pixel-size``'s value: ``auto`` or a pixel size in Å."""
    return AUTO if text == AUTO else _positive("auto or a pixel size in Å")(text)


def _positive_sigma(text: str) -> float:
    """``--pixel-cutoff``'s value: a positive number of standard deviations."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of standard "
                                         "deviations")
    return value


def _smooth_arg(text: str) -> float:
    """``--smooth``'s value: σ in pixels, >= 0."""
    from ..inference.smoothing import check_smooth

    try:
        return check_smooth(text, "--smooth")
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _keep_arg(text: str) -> float:
    """``--keep-detail``'s value: a share from 0 to 1."""
    from ..inference.smoothing import check_keep

    try:
        return check_keep(text, "--keep-detail")
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run_denoise(args: argparse.Namespace) -> int:
    """Denoise every micrograph given into ``--out``: read, denoise, write pipelined.

    Under torchrun (``--nproc``) each process joins the run (:func:`~napari_cryoden.training.
    distributed.join`: its own GPU, NCCL or gloo) and takes every Nth file; the failures are
    summed over the processes (which also waits for all of them) and the first writes the STAR
    file when there are none.
    """
    from ..devices import resolve_device
    from ..inference.batch import denoise_files
    from ..inference.load import load_denoiser
    from ..inference.smoothing import as_smoothing
    from ..training import distributed

    if args.working_pixel_size is not None and args.bin is not None:
        raise InputError("denoise: give --working-pixel-size or --bin, not both")
    smoothing = as_smoothing(args.smooth, args.keep_detail,
                             ("--smooth", "--keep-detail", "--smooth-where"), args.smooth_where)
    model_path, inputs = _model_and_inputs(args.inputs, star=args.star is not None)
    if args.nproc is not None and not distributed.launched():
        if args.nproc < 1:
            raise InputError(f"denoise: --nproc must be >= 1, got {args.nproc}")
        return distributed.launch(_rank_argv(args), args.nproc)
    if args.shard is not None and distributed.launched():
        raise InputError("denoise: --shard is for separate jobs, not under torchrun/--nproc")
    world = distributed.join(resolve_device(args.device))  # one process: no group, no change
    rank, size = args.shard if args.shard is not None else (world.rank, world.world_size)
    device = world.device
    denoiser = load_denoiser(model_path, device)
    star, files, outputs = _plan(args, model_path, inputs)
    scales = _Scales(args, denoiser.checkpoint.pixel_size_range)
    for path in files:  # every header checked before any work
        scales.factor(path)
    every_output = outputs  # the STAR file lists them all
    files, outputs = files[rank::size], outputs[rank::size]
    args.out.mkdir(parents=True, exist_ok=True)
    options = {"tile_size": args.tile_size, "batch_size": args.batch_size, "fused": args.fused,
               "pixel_cutoff": args.pixel_cutoff, "precision": args.precision}
    compared = dict(options)  # the precision check compares the model's outputs, unsmoothed
    options["smooth"] = smoothing
    if args.precision != "fp32" and files:
        compared = {k: v for k, v in {**denoiser.options(), **compared}.items()
                    if k != "precision"}
        _check_precision(denoiser.net, files[0], args.precision, compared)
    threads = int(args.io_threads)
    counts = {"done": 0, "skipped": 0, "failed": 0}
    bar = progress(len(files), "denoise", "micrograph")
    try:
        for result in denoise_files(denoiser, files, args.out, outputs=outputs,
                                    overwrite=args.overwrite, pixel_size=args.pixel_size,
                                    working=args.working_pixel_size, bin_factor=args.bin,
                                    out_dtype=args.out_dtype, readers=threads, writers=threads,
                                    autotune=args.autotune, **options):
            counts[result.status] += 1
            if result.status == "failed":
                print(f"error: {result.message}", file=sys.stderr)
            bar.update(1)
    finally:
        bar.close()
    who = f"process {rank + 1}/{size}: " if size > 1 else ""
    kept = (f"; kept {counts['skipped']} existing output(s) (--overwrite replaces them)"
            if counts["skipped"] else "")
    smoothed = f", then {smoothing.describe()}" if smoothing else ""
    print(f"{who}denoised {counts['done']} micrograph(s) with {model_path} on {device} "
          f"({args.precision}){smoothed}, {scales.summary()}; wrote {args.out_dtype} MRC to "
          f"{args.out}{kept}")
    failed = int(distributed.all_sum([counts["failed"]], world)[0])  # every process's
    distributed.leave(world)
    if counts["failed"]:
        print(f"{who}{counts['failed']} micrograph(s) failed (above)", file=sys.stderr)
    if star is not None and args.shard is not None:
        print(f"{star.output_name} not written by a shard: run the same command without "
              "--shard once every shard has finished (it keeps the outputs and writes it)")
    elif star is not None and rank == 0:
        _write_star(star, args.out, outputs=every_output, failed=failed)
    return EXIT_ERROR if failed else EXIT_OK


def _write_star(star: MicrographStar, out: Path, outputs: list[Path], failed: int) -> None:
    from ..io.star import write_denoised_star

    if failed:
        print(f"{star.output_name} not written: {failed} micrograph(s) failed",
              file=sys.stderr)
        return
    written = write_denoised_star(star, outputs, out / star.output_name)
    print(f"wrote {written}: {star.path.name}'s micrographs with the denoised paths "
          f"(project folder {star.project})")


def _shard_arg(text: str) -> tuple[int, int]:
    """``--shard K/N`` as ``(K - 1, N)``."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        k = n = 0
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N with 1 <= K <= N (e.g. 3/8)")
    return k - 1, n


def _rank_argv(args: argparse.Namespace) -> list[str]:
    """Return the ``denoise`` command line each torchrun process gets (no ``--nproc``)."""
    argv = ["denoise", *map(str, args.inputs), "--out", str(args.out)]
    for flag, value in (("--star", args.star), ("--project", args.project),
                        ("--device", args.device), ("--tile-size", args.tile_size),
                        ("--batch-size", args.batch_size), ("--precision", args.precision),
                        ("--pixel-cutoff", args.pixel_cutoff), ("--pixel-size", args.pixel_size),
                        ("--working-pixel-size", args.working_pixel_size), ("--bin", args.bin),
                        ("--out-dtype", args.out_dtype), ("--io-threads", args.io_threads),
                        ("--smooth", args.smooth or None),
                        ("--keep-detail", args.keep_detail or None)):
        if value is not None:
            argv += [flag, str(value)]
    argv += ["--fused" if args.fused else "--no-fused"]
    if args.autotune is not None:
        argv += ["--autotune" if args.autotune else "--no-autotune"]
    return argv + (["--overwrite"] if args.overwrite else [])


def _plan(args: argparse.Namespace, model: Path, inputs: Sequence[Path],
          ) -> tuple[MicrographStar | None, list[Path], list[Path]]:
    """Return the STAR file (if any), the micrographs and their outputs, checked up front."""
    from ..inference.batch import plan_outputs, star_job

    if args.star is None:
        if args.project is not None:
            raise InputError("denoise: --project goes with --star")
        files = expand_folders(inputs)
        return None, files, plan_outputs(files, args.out)
    job = star_job(args.star, args.out, model, args.project)
    return job.star, list(job.files), job.planned_outputs()


def _model_and_inputs(inputs: Sequence[Path], star: bool = False) -> tuple[Path, list[Path]]:
    """Split the inputs into the weight file and the micrographs after it.

    The weight file is the first input if it names one (a shipped model's name or a
    ``.safetensors`` file), else the shipped general model. With ``star`` (``--star``) there
    must be no micrographs.
    """
    from ..models.pretrained import is_shipped, resolve_model

    first = inputs[0] if inputs else None
    given = first is not None and (is_shipped(first) or first.suffix.lower() == ".safetensors")
    model = resolve_model(first if given else None)
    micrographs = list(inputs[1:] if given else inputs)
    if star and micrographs:
        raise InputError(f"denoise: give micrographs or --star, not both ({micrographs[0]})")
    if not micrographs and not star:
        raise InputError("denoise: no micrographs given (after the model, or --star FILE)")
    if not given:
        print(f"model: the shipped general model ({model.name}); give a .safetensors "
              "file first to use your own")
    return model, micrographs


def _check_precision(model: Any, path: Path, precision: str, options: dict[str, Any]) -> None:
    """Print how far ``precision`` is from fp32 on the first tiles; warn above 1 % of the std."""
    from ..inference.denoiser import compare_precision
    from ..io.images import read_image

    check = compare_precision(model, read_image(path)[0], precision, name=str(path), **options)
    print(check)
    if check.relative > 0.01:
        print(f"warning: {path}: {precision} differs from fp32 by more than 1 % of the image's "
              "std; use --precision fp32", file=sys.stderr)


class _Scales:
    """Each micrograph's binning (:func:`~napari_cryoden.inference.scale.plan_scale`).

    A note (unknown pixel size, no range, coarser than the range) is printed once on stderr,
    with the first file it concerns.
    """

    def __init__(self, args: argparse.Namespace, model_range: tuple[float, float] | None):
        self.args, self.range = args, model_range
        self.noted: set[str] = set()
        self.described: dict[str, int] = {}

    def factor(self, path: Path) -> float:
        from ..inference.scale import plan_file

        plan = plan_file(path, self.range, pixel_size=self.args.pixel_size,
                         working=self.args.working_pixel_size, bin_factor=self.args.bin)
        if plan.note is not None and plan.note not in self.noted:
            self.noted.add(plan.note)
            print(f"note: {path}: {plan.note}", file=sys.stderr)
        text = plan.describe()
        self.described[text] = self.described.get(text, 0) + 1
        return plan.factor

    def summary(self) -> str:
        """E.g. ``at 0.6 Å/px (binned ×1.5 from 0.4 Å/px)``, with counts when files differ."""
        if len(self.described) == 1:
            return next(iter(self.described))
        return ", ".join(f"{n} {text}" for text, n in self.described.items())
