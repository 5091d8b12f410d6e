"""Commands that make training data: ``simulate``, ``split-frames`` and ``pack``.

Each has ``add_NAME(parser)`` and ``run_NAME(args) -> exit status`` (see :class:`.main.Command`).
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import CryodenError
from ._common import EXIT_OK, expand_folders, progress
from ._physics import add_physics_flags, check_no_physics_flags, run_physics

__all__ = ["add_simulate", "run_simulate", "add_split_frames", "run_split_frames", "add_pack",
           "run_pack"]


# -- simulate ---------------------------------------------------------------------------------
def add_simulate(p: argparse.ArgumentParser) -> None:
    """Add the flags of ``cryoden simulate`` to ``p``."""
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
    p.add_argument("--frames", type=_value_or_range, default=None, metavar="N[:N2]",
                   help="frames per movie for --movies/--even-odd (default 8; even for "
                        "--even-odd); with --physics LO:HI draws one per micrograph "
                        "(default 20:60)")
    add_physics_flags(p)


def _value_or_range(text: str) -> float | tuple[float, float]:
    """``"20"`` → 20.0; ``"10:60"`` → (10.0, 60.0)."""
    try:
        if ":" in text:
            low, high = (float(part) for part in text.split(":"))
            return low, high
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or LO:HI, got {text!r}") from None


def run_simulate(args: argparse.Namespace) -> int:
    """Simulate noisy/clean pairs (or movies, even/odd sums) as the flags say."""
    from ..simulation.micrographs import simulate_dataset
    from ..simulation.params import SimulationParams

    if args.n < 1 or args.size < 16:
        raise CryodenError(f"--n must be >= 1 and --size >= 16 (got {args.n}, {args.size})")
    if args.physics:
        return run_physics(args)
    check_no_physics_flags(args)
    overrides, vary = _simulation_overrides(args)
    params = SimulationParams(**overrides)
    if args.movies or args.even_odd or args.frames is not None:
        if vary:
            raise CryodenError("ranges (LO:HI) of --dose/--pixel-size/--contrast-scale are for "
                               "plain noisy/clean pairs, not --movies/--even-odd")
        return _simulate_movies(args, params)
    bar = progress(args.n, "simulate", "micrograph")
    simulate_dataset(args.out_dir, args.n, args.size, args.seed, params,
                     progress=lambda done, total: bar.update(1), vary=vary)
    bar.close()
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


def _simulation_overrides(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(overrides, vary)``: the fixed simulation parameters given, and the LO:HI ranges."""
    given = {"dose": args.dose, "pixel_size": args.pixel_size,
             "contrast_scale": args.contrast_scale}
    overrides = {k: v for k, v in given.items() if isinstance(v, float)}
    vary = {k: v for k, v in given.items() if isinstance(v, tuple)}
    if args.clean_dose is not None:
        overrides["clean_dose"] = args.clean_dose
    if args.defocus is not None:
        low, high = args.defocus if isinstance(args.defocus, tuple) else (args.defocus,) * 2
        overrides.update(defocus_min=low, defocus_max=high)
    return overrides, vary


def _simulate_movies(args: argparse.Namespace, params: Any) -> int:
    from ..simulation.movies import simulate_movie_dataset

    if not (args.movies or args.even_odd):
        raise CryodenError("--frames is for --movies and/or --even-odd")
    if isinstance(args.frames, tuple) or (args.frames is not None
                                          and args.frames != int(args.frames)):
        raise CryodenError(f"--frames takes one whole number here (got {args.frames}); "
                           "ranges are for --physics")
    frames = 8 if args.frames is None else int(args.frames)
    bar = progress(args.n, "simulate", "movie")
    try:
        result = simulate_movie_dataset(
            args.out_dir, args.n, args.size, args.seed, params, frames=frames,
            movies=args.movies, even_odd=args.even_odd,
            progress=lambda done, total: bar.update(1))
    finally:
        bar.close()
    parts = (["movies/"] if args.movies else []) + (["even/", "odd/"] if args.even_odd else [])
    print(f"wrote {args.n} simulated {frames}-frame exposures of {args.size}x{args.size} px to "
          f"{args.out_dir}: {', '.join(parts)} and clean/ (noise-free, x{result.clean_scale:g}"
          f" of the truth); dose {params.dose} e/Å² in all, pixel {params.pixel_size} Å")
    return EXIT_OK


# -- split-frames -----------------------------------------------------------------------------
def add_split_frames(p: argparse.ArgumentParser) -> None:
    """Add the flags of ``cryoden split-frames`` to ``p``."""
    from ..io.eer import DEFAULT_EER_GROUPING

    p.add_argument("movies", type=Path, nargs="+", metavar="MOVIE",
                   help="movies (MRC or TIFF stacks of at least 2 frames, or EER) or folders "
                        "of them")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="writes DIR/even/NAME.mrc and DIR/odd/NAME.mrc (float32, pixel size "
                        "kept)")
    p.add_argument("--equal-halves", action="store_true",
                   help="leave out the last frame of movies with an odd number of frames, so "
                        "both sums hold the same dose")
    p.add_argument("--gain", type=Path, default=None, metavar="GAIN",
                   help="gain reference (MRC or TIFF) that multiplies every frame, as RELION and "
                        "MotionCor2 apply it")
    p.add_argument("--gain-rot", type=int, choices=(0, 1, 2, 3), default=0,
                   help="rotate the gain by this many quarter turns first (RELION's "
                        "--gain_rot, MotionCor2's -RotGain)")
    p.add_argument("--gain-flip", type=int, choices=(0, 1, 2), default=0,
                   help="then flip it: 1 upside down, 2 left to right (RELION's --gain_flip, "
                        "MotionCor2's -FlipGain)")
    p.add_argument("--eer-grouping", type=int, default=DEFAULT_EER_GROUPING, metavar="N",
                   help="EER movies: detector frames summed into one fraction before the "
                        "even/odd split (RELION's --eer_grouping; default "
                        f"{DEFAULT_EER_GROUPING}); frames after the last whole fraction are "
                        "left out")
    p.add_argument("--align", action="store_true",
                   help="shift the frames onto each other before summing (whole-frame motion, "
                        "torch-motion-correction; estimated on frames binned to ~3 Å/px)")
    p.add_argument("--patches", type=int, default=0, metavar="N",
                   help="with --align: also local motion, measured on an N x N grid of patches "
                        "(as MotionCor2's -Patch N N) and applied tile by tile")


def run_split_frames(args: argparse.Namespace) -> int:
    """Write the even and the odd frame sums of every movie given."""
    from ..data.align import split_aligned
    from ..errors import InputError
    from ..io.eer import EER_SUFFIXES, is_eer
    from ..io.formats import SUPPORTED_SUFFIXES
    from ..io.frames import read_gain, split_frames

    if args.gain is None and (args.gain_rot or args.gain_flip):
        raise InputError("split-frames: --gain-rot and --gain-flip need --gain")
    gain = None if args.gain is None else read_gain(args.gain, args.gain_rot, args.gain_flip)
    if args.eer_grouping < 1:
        raise InputError(f"split-frames: --eer-grouping must be at least 1, got "
                         f"{args.eer_grouping}")
    if args.patches and not args.align:
        raise InputError("split-frames: --patches needs --align")
    if args.patches < 0 or args.patches == 1:
        raise InputError(f"split-frames: local motion needs at least 2 x 2 patches, got "
                         f"{args.patches}")
    split = partial(split_aligned, patches=args.patches) if args.align else split_frames
    movies = expand_folders(args.movies, SUPPORTED_SUFFIXES + EER_SUFFIXES)
    bar = progress(len(movies), "split-frames", "movie")
    try:
        for movie in movies:
            if is_eer(movie):
                print(_eer_note(movie, args.eer_grouping))
            sums = split(movie, args.out, equal_halves=args.equal_halves, gain=gain,
                         eer_grouping=args.eer_grouping)
            bar.update(1)
            if sums.drift is not None:
                how = (f"local motion on {args.patches} x {args.patches} patches, "
                       if args.patches else "")
                print(f"{movie}: frames aligned, {how}largest shift {sums.drift:.1f} px from "
                      "the middle frame")
            if sums.n_even != sums.n_odd:
                print(f"note: {movie}: {sums.n_frames} frames, so the even sum holds "
                      f"{sums.n_even} and the odd {sums.n_odd} (--equal-halves drops the last)",
                      file=sys.stderr)
    finally:
        bar.close()
    applied = "" if args.gain is None else (
        f", each frame times the gain {args.gain} (rotation {args.gain_rot}, flip "
        f"{args.gain_flip})")
    print(f"wrote the even/odd frame sums of {len(movies)} movie(s) to {args.out / 'even'} and "
          f"{args.out / 'odd'}{applied}")
    return EXIT_OK


def _eer_note(movie: Path, grouping: int) -> str:
    """One line on how an EER movie is grouped into fractions."""
    from ..io.eer import read_eer_info

    info = read_eer_info(movie)
    dose = ("" if info.dose_per_frame is None
            else f", {info.dose_per_frame * grouping:.2f} e/Å² each")
    left = info.n_frames - info.fractions(grouping) * grouping
    return (f"{movie}: {info.n_frames} EER frames as {info.fractions(grouping)} fractions of "
            f"{grouping}{dose}" + (f" ({left} left out)" if left else ""))


# -- pack -------------------------------------------------------------------------------------
def add_pack(p: argparse.ArgumentParser) -> None:
    """Add the flags of ``cryoden pack`` to ``p``."""
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


def run_pack(args: argparse.Namespace) -> int:
    """Pack the folders' patches into a store and print its size and the speed."""
    from ..data.packed import pack

    noise_flags = {k: v for k, v in (("dose", args.dose), ("read_noise", args.read_noise),
                                     ("pixel_size", args.pixel_size)) if v is not None}
    if args.noisy is not None and noise_flags:
        raise CryodenError("--dose, --read-noise and --pixel-size are for clean-only stores "
                           "(without --noisy)")
    if args.noisy is None and args.dose is None:
        raise CryodenError("give --noisy DIR for a pair store, or --dose for a clean-only store")
    bars: list[Any] = []

    def step(done: int, total: int) -> None:
        if not bars:
            bars.append(progress(total, "pack", "micrograph"))
        bars[0].update(1)

    start = time.perf_counter()
    try:
        store = pack(args.noisy, args.clean, args.out, patch_size=args.patch_size,
                     normalization=args.normalization, noise=noise_flags or None,
                     overwrite=args.overwrite, progress=step)
    finally:
        for bar in bars:
            bar.close()
    seconds = time.perf_counter() - start
    print(f"packed {store.count} patches of {store.patch_size}x{store.patch_size} into "
          f"{args.out}: {store.nbytes / 1e9:.2f} GB in {seconds:.1f} s "
          f"({store.nbytes / 1e6 / max(seconds, 1e-9):.0f} MB/s)")
    return EXIT_OK
