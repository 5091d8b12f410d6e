"""Weight interop commands: ``export-raw``, ``import-raw``, ``check-weights``, ``export-bmz``.

Each has ``add_NAME(parser)`` and ``run_NAME(args) -> exit status`` (see :class:`.main.Command`).
The raw layouts and the scramble guards are in docs/weight-interop.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config.sections import Config
from ..errors import CryodenError
from ._common import EXIT_ERROR, EXIT_OK, print_warnings

__all__ = ["add_export_raw", "run_export_raw", "add_import_raw", "run_import_raw",
           "add_check_weights", "run_check_weights", "add_export_bmz", "run_export_bmz"]

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


# -- export-raw -------------------------------------------------------------------------------
def add_export_raw(p: argparse.ArgumentParser) -> None:
    """Add the flags of ``cryoden export-raw`` to ``p``."""
    p.add_argument("model", type=Path, metavar="MODEL", help="a .safetensors weight file")
    p.add_argument("out_dir", type=Path, metavar="DIR", help="folder for the raw files")
    p.add_argument("--layout", default="oihw", help=_LAYOUT_HELP + " (default oihw)")
    _add_name_flags(p)


def run_export_raw(args: argparse.Namespace) -> int:
    """Write the model's weights as raw float32 files in ``--layout``."""
    from ..interop.raw import SIDECAR, export_raw, resolve_layout

    written = export_raw(args.model, args.out_dir, args.layout, _raw_names(args))
    print(f"wrote {len(written)} little-endian float32 files in layout {args.layout} "
          f"({resolve_layout(args.layout)}, C order) and {SIDECAR} to {args.out_dir}")
    return EXIT_OK


# -- import-raw -------------------------------------------------------------------------------
def add_import_raw(p: argparse.ArgumentParser) -> None:
    """Add the flags of ``cryoden import-raw`` to ``p``."""
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


def run_import_raw(args: argparse.Namespace) -> int:
    """Read raw weight files into a weight file; rank the layouts, score on validation data."""
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
    print_warnings(result.warnings)
    return EXIT_OK


def _import_model(args: argparse.Namespace) -> Any:
    given = {k: v for k, v in (("channels", args.channels), ("depth", args.depth),
                               ("kernel_size", args.kernel_size)) if v is not None}
    return Config.from_dict({"model": given}).model if given else None


# -- check-weights ----------------------------------------------------------------------------
def add_check_weights(p: argparse.ArgumentParser) -> None:
    """Add the flags of ``cryoden check-weights`` to ``p``."""
    p.add_argument("model", type=Path, metavar="MODEL", help="a .safetensors weight file")


def run_check_weights(args: argparse.Namespace) -> int:
    """Round-trip the model through every format and layout; exit 2 unless all match."""
    from ..interop.raw import check_roundtrips, format_roundtrips
    from ..models.checkpoint import load_checkpoint

    model, ckpt = load_checkpoint(args.model)
    rows = check_roundtrips(model, ckpt.config)
    print(format_roundtrips(rows))
    return EXIT_OK if all(r.passed for r in rows if r.expect_equal) else EXIT_ERROR


# -- export-bmz -------------------------------------------------------------------------------
def add_export_bmz(p: argparse.ArgumentParser) -> None:
    """Add the flags of ``cryoden export-bmz`` to ``p``."""
    p.add_argument("model", metavar="MODEL",
                   help="a .safetensors weight file or a shipped model's name")
    p.add_argument("out", type=Path, metavar="OUT.zip", help="the package to write")
    p.add_argument("--name", default=None, help="the package's name (default: napari-cryoden "
                                                "MODEL)")
    p.add_argument("--sample", type=Path, default=None, metavar="MICROGRAPH",
                   help="a micrograph (MRC/TIFF, 2D) for the test tensors, e.g. a crop of your "
                        "own (default: a simulated 256 x 256 micrograph)")


def run_export_bmz(args: argparse.Namespace) -> int:
    """Write the BioImage Model Zoo package and say what it holds."""
    from ..errors import InputError
    from ..interop.bmz import export_bmz
    from ..io.images import read_image, read_info

    sample, pixel = None, None
    if args.sample is not None:
        sample = read_image(args.sample)[0]
        if sample.ndim != 2:
            raise InputError(f"{args.sample}: the sample must be one 2D micrograph, got shape "
                             f"{sample.shape}")
        pixel = read_info(args.sample).recorded_pixel_size
    written = export_bmz(args.model, args.out, name=args.name, sample=sample,
                         pixel_size=pixel)
    print(f"wrote {written} ({written.stat().st_size / 1e6:.2f} MB): rdf.yaml, TorchScript "
          "weights with the model's normalisation inside, README, test input and output; "
          f"check it with: bioimageio test {written}")
    return EXIT_OK
