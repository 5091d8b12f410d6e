"""The ``cryoden`` command line: :func:`main`, the table of commands and the error policy.

Each command lives in a module of this package that adds its flags and runs it, parsing and
delegating to the core: :mod:`.datasets` (``simulate``, ``split-frames``, ``pack``),
:mod:`.train`, :mod:`.adapt`, :mod:`.denoise`, :mod:`.evaluate` and :mod:`.weights`
(``export-raw``, ``import-raw``, ``check-weights``). Errors caused by the input
(:class:`~napari_cryoden.errors.CryodenError`, unreadable paths) print one line
``cryoden: error: …`` and exit with status 2, never a traceback. ``main(argv)`` returns the exit
status, so tests call it directly.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .. import __version__
from ..errors import CryodenError
from . import adapt, datasets, denoise, evaluate, train, weights
from ._common import EXIT_ERROR, EXIT_OK

__all__ = ["main", "build_parser", "Command", "COMMANDS"]


@dataclass(frozen=True)
class Command:
    """One ``cryoden`` command.

    Each command module provides ``add_NAME(parser)``, which adds the command's flags, and
    ``run_NAME(args) -> int``, which parses them into calls to the core and returns the exit
    status; errors the user can act on are raised, and :func:`main` prints them.
    """

    name: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    help: str


COMMANDS: tuple[Command, ...] = (
    Command("simulate", datasets.add_simulate, datasets.run_simulate,
            "Simulate noisy/clean micrograph pairs with known ground truth."),
    Command("train", train.add_train, train.run_train,
            "Train the denoiser on noisy/clean pairs, even/odd halves (--mode n2n) or noisy "
            "micrographs alone (--mode n2v); streams from disk."),
    Command("split-frames", datasets.add_split_frames, datasets.run_split_frames,
            "Sum the even and the odd frames of movies (for --mode n2n)."),
    Command("denoise", denoise.add_denoise, denoise.run_denoise,
            "Denoise micrographs with a trained model (tiled; any size)."),
    Command("evaluate", evaluate.add_evaluate, evaluate.run_evaluate,
            "Score a model against clean targets and/or without them (even/odd halves: "
            "split-frame SNR; picks: region-pair SNR): metrics, checklist, figures."),
    Command("export-raw", weights.add_export_raw, weights.run_export_raw,
            "Write a model as raw float32 files for the Fortran/cuDNN trainer."),
    Command("import-raw", weights.add_import_raw, weights.run_import_raw,
            "Read raw float32 weight files (any layout, or auto) into a model."),
    Command("check-weights", weights.add_check_weights, weights.run_check_weights,
            "Round-trip a model through every format and layout; pass/fail table."),
    Command("export-bmz", weights.add_export_bmz, weights.run_export_bmz,
            "Write a model as a BioImage Model Zoo package (.zip) for any BMZ consumer."),
    Command("pack", datasets.add_pack, datasets.run_pack,
            "Pack a dataset's patches into a float16 store for fast training."),
    Command("adapt", adapt.add_adapt, adapt.run_adapt,
            "Fine-tune a model on your own micrographs (self-supervised, time-boxed); "
            "keeps the start if it does not help."),
)
"""Every command, in the order ``cryoden --help`` lists them."""

_PATH_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` and return the exit status.

    Parameters
    ----------
    argv
        The arguments after ``cryoden`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 after a one-line ``cryoden: error: …`` on stderr, 130 when training
        was interrupted.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or EXIT_OK)
    except (CryodenError, OSError, FloatingPointError) as exc:
        print(f"cryoden: error: {_error_message(exc)}", file=sys.stderr)
        return EXIT_ERROR


def _error_message(exc: Exception) -> str:
    """Return what follows ``cryoden: error:`` for an error the user can act on."""
    if isinstance(exc, CryodenError) or not isinstance(exc, OSError):
        return str(exc)  # a CryodenError's message, or a FloatingPointError's
    if isinstance(exc, _PATH_ERRORS):
        return f"{exc.filename or ''}: {exc.strerror}"
    where = f"{exc.filename}: " if exc.filename else ""  # e.g. disk full while writing results
    return f"{where}{exc.strerror or exc}"


def build_parser() -> argparse.ArgumentParser:
    """Build the ``cryoden`` parser: one subcommand per entry of :data:`COMMANDS`.

    Returns
    -------
    argparse.ArgumentParser
        ``parse_args`` gives a namespace whose ``func`` runs the command.
    """
    parser = argparse.ArgumentParser(
        prog="cryoden", description="Train and run a cryo-EM micrograph denoiser.")
    parser.add_argument("--version", action="version", version=f"napari-cryoden {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        cmd = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(cmd)
        cmd.set_defaults(func=command.run)
    return parser


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
