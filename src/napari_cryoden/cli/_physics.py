"""``cryoden simulate --physics``: the physics-grade simulator's flags and their run."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from ..errors import CryodenError
from ._common import EXIT_OK, progress

__all__ = ["add_physics_flags", "check_no_physics_flags", "physics_params", "run_physics"]


def add_physics_flags(p: argparse.ArgumentParser) -> None:
    """Add the flags only ``--physics`` reads."""
    g = p.add_argument_group("physics-grade mode (--physics; docs/simulator.md)")
    g.add_argument("--physics", action="store_true",
                   help="real atomic models (ttsim3d), torch-ctf, a detector, drifting movies, "
                        "motion correction and dose weighting; writes noisy/ (the sum), clean/ "
                        "(its truth), picks/, and with --even-odd even/, odd/, clean_even/, "
                        "clean_odd/")
    g.add_argument("--shape", type=_shape, default=None, metavar="NYxNX",
                   help="micrograph shape before binning, e.g. 4092x5760 (K3); default --size")
    g.add_argument("--detector", default=None, metavar="NAME[,NAME]",
                   help="detectors drawn from per micrograph: k3, k2, falcon4ec (default all)")
    g.add_argument("--binning", type=float, default=None,
                   help="Fourier-bin the sums by this factor (default 1: none)")
    g.add_argument("--no-dose-weighting", action="store_true",
                   help="plain sums instead of dose-weighted ones")
    g.add_argument("--structures", default=None, metavar="NAME[,NAME]",
                   help="atomic models to place (default: the whole library)")
    g.add_argument("--particle-density", type=float, default=None, metavar="N",
                   help="mean particles per 10⁶ Å² (default 10; about 60 fills a micrograph "
                        "with particles, as a crowded grid)")
    g.add_argument("--device", default="cpu",
                   help="where ttsim3d, projections and the CTF run: cpu (default), cuda")
    g.add_argument("--workers", type=int, default=1,
                   help="processes writing micrographs in parallel (the files do not depend "
                        "on it; default 1)")


def _shape(text: str) -> tuple[int, int]:
    try:
        ny, nx = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NYxNX, e.g. 4092x5760, got {text!r}") from None
    return ny, nx


def _span(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    return (float(value[0]), float(value[1])) if isinstance(value, tuple) else (value, value)


def physics_params(args: argparse.Namespace) -> Any:
    """Build :class:`~..simulation.physics.dataset.PhysicsParams` from the flags."""
    from ..simulation.physics.dataset import PhysicsParams
    from ..simulation.physics.exposure_params import ExposureParams
    from ..simulation.physics.specimen_params import SpecimenParams

    specimen: dict[str, Any] = {"pixel_size": _span(args.pixel_size),
                                "defocus": _span(args.defocus)}
    if args.particle_density is not None:
        specimen["particle_density"] = args.particle_density
    if args.structures:
        names = tuple(s.strip() for s in args.structures.split(",") if s.strip())
        specimen.update(structures=names, weights=(1.0,) * len(names))
    frames = _span(args.frames)
    exposure: dict[str, Any] = {
        "dose": _span(args.dose), "binning": args.binning,
        "frames": None if frames is None else (int(frames[0]), int(frames[1])),
        "detectors": None if not args.detector else tuple(
            d.strip() for d in args.detector.split(",") if d.strip())}
    if args.no_dose_weighting:
        exposure["dose_weighting"] = False
    return PhysicsParams(
        dataclasses.replace(SpecimenParams(), **{k: v for k, v in specimen.items()
                                                 if v is not None}),
        dataclasses.replace(ExposureParams(), **{k: v for k, v in exposure.items()
                                                 if v is not None}))


def run_physics(args: argparse.Namespace) -> int:
    """Write a physics-grade dataset as the flags say."""
    from ..simulation.physics.dataset import simulate_physics_dataset

    if args.contrast_scale is not None or args.clean_dose is not None:
        raise CryodenError("--contrast-scale and --clean-dose are for the cartoon simulator, "
                           "not --physics")
    if args.workers < 1:
        raise CryodenError(f"--workers must be >= 1 (got {args.workers})")
    params = physics_params(args)
    shape = args.shape or (args.size, args.size)
    bar = progress(args.n, "simulate", "micrograph")
    try:
        simulate_physics_dataset(args.out_dir, args.n, shape, args.seed, params,
                                 even_odd=args.even_odd, movies=args.movies, device=args.device,
                                 workers=args.workers, progress=lambda done, total: bar.update(1))
    finally:
        bar.close()
    spec, expo = params.specimen, params.exposure
    parts = ["noisy/", "clean/ (truth)", "picks/"] + (
        ["even/", "odd/", "clean_even/", "clean_odd/"] if args.even_odd else []) + (
        ["movies/"] if args.movies else [])
    print(f"wrote {args.n} physics-grade micrographs of {shape[0]}x{shape[1]} px to "
          f"{args.out_dir}: {', '.join(parts)}; pixel {spec.pixel_size[0]:g}-"
          f"{spec.pixel_size[1]:g} Å, dose {expo.dose[0]:g}-{expo.dose[1]:g} e/Å² in "
          f"{expo.frames[0]}-{expo.frames[1]} frames, detectors {', '.join(expo.detectors)}")
    return EXIT_OK


def check_no_physics_flags(args: argparse.Namespace) -> None:
    """Refuse flags of the physics-grade mode given without ``--physics``."""
    given = [flag for flag, value in (("--shape", args.shape), ("--detector", args.detector),
                                      ("--binning", args.binning),
                                      ("--structures", args.structures),
                                      ("--particle-density", args.particle_density))
             if value is not None]
    given += ["--no-dose-weighting"] if args.no_dose_weighting else []
    given += ["--workers"] if args.workers != 1 else []
    given += ["--device"] if args.device != "cpu" else []
    if given:
        raise CryodenError(f"{', '.join(given)}: only with --physics")
