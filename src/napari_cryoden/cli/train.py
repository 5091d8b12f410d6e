"""``cryoden train``: flags, the run folder, a torchrun launch, or the training events printed.

:func:`run_train` resolves the run folder, builds the config from the flags
(:func:`train_config`) and reads the data sources (``training_data``: bad input fails there,
before anything starts). Then it either launches itself under torchrun (``--ddp``/``--nproc``;
each rank gets :func:`rank_argv`) or iterates the core's training events, printing them and,
with ``--events``, writing them as JSON lines. Ctrl-C stops at the next step (exit 130).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any, TextIO

from ..config.flags import add_flags, config_from_args, config_to_argv
from ..config.sections import FIELDS, Config
from ..errors import InputError
from ..training.events import (
    CheckpointSaved,
    EpochEnd,
    TrainEnd,
    TrainStart,
    TrainStep,
    TrainWarning,
    to_json_line,
)
from ._common import EXIT_INTERRUPTED, EXIT_OK, add_halves_flags, halves_from_args, progress

__all__ = ["add_train", "run_train", "train_config", "rank_argv"]

EVEN_SUMS = "--even-sums"
"""The ranks' spelling of ``--even``: torchrun's parser takes ``--even`` for an abbreviation
of its ``--event-log-handler``."""
_SOURCE_FLAGS = (("store", "--store"), ("noisy", "--noisy"), ("clean", "--clean"),
                 ("even", EVEN_SUMS), ("odd", "--odd"), ("halves", "--halves"),
                 ("project", "--project"))
_MODE_NAMES = {"n2n": "Noise2Noise on even/odd halves", "n2v": "Noise2Void, no clean targets"}


def add_train(p: argparse.ArgumentParser) -> None:
    """Add the flags of ``cryoden train`` to ``p``: data, run, then every config field."""
    _add_source_flags(p)
    _add_run_flags(p)
    add_flags(p)


def _add_source_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--noisy", type=Path, help="folder of noisy micrographs")
    p.add_argument("--clean", type=Path,
                   help="folder of clean targets, paired with --noisy by file name")
    p.add_argument("--even", type=Path,
                   help="folder of even-frame sums (Noise2Noise; implies --mode n2n)")
    p.add_argument("--odd", type=Path,
                   help="folder of odd-frame sums, paired with --even by file name (a trailing "
                        "_EVN/_ODD is ignored)")
    p.add_argument(EVEN_SUMS, type=Path, dest="even", help=argparse.SUPPRESS)
    add_halves_flags(p, " (Noise2Noise)")
    p.add_argument("--store", type=Path,
                   help="a packed store (cryoden pack) instead of --noisy/--clean; validation "
                        "holds out --val-fraction of its micrographs")
    p.add_argument("--val-noisy", type=Path,
                   help="explicit validation folder (noisy); with --mode n2n/n2v an extra "
                        "clean set each epoch is also scored on")
    p.add_argument("--val-clean", type=Path, help="explicit validation folder (clean)")


def _add_run_flags(p: argparse.ArgumentParser) -> None:
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


def train_config(args: argparse.Namespace) -> Config:
    """Build the run config: the defaults, overridden by the flags given.

    With ``--init MODEL`` the architecture is that model's, overridden by the model flags
    given (a contradiction is a one-line :class:`~napari_cryoden.config.sections.ConfigError`).

    Parameters
    ----------
    args
        Parsed ``cryoden train`` arguments; ``--even`` without ``--mode`` means n2n.

    Returns
    -------
    Config
        The validated config.
    """
    from ..training.init_weights import adopt_init_architecture

    base = Config()
    halves = getattr(args, "even", None) or getattr(args, "halves", None)
    if halves is not None and getattr(args, "mode", None) is None:
        base = base.replace(train={"mode": "n2n"})  # --even/--odd, --halves mean Noise2Noise
    given = {spec.name: getattr(args, spec.name) for spec in FIELDS
             if spec.section == "model" and getattr(args, spec.name, None) is not None}
    return adopt_init_architecture(config_from_args(args, base), given)


def rank_argv(args: argparse.Namespace, config: Config) -> list[str]:
    """Return the ``train`` arguments each torchrun rank gets (no ``--ddp``/``--nproc``).

    Parameters
    ----------
    args
        Parsed ``cryoden train`` arguments, the run folder resolved.
    config
        The run config; every field is passed, so each rank trains exactly it.

    Returns
    -------
    list of str
        ``train --out RUN_DIR``, the data sources, ``--resume``/``--events`` if given, then
        the config's flags.
    """
    argv = ["train", "--out", str(args.out)]
    for name, flag in _SOURCE_FLAGS:
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


def run_train(args: argparse.Namespace) -> int:
    """Train as the flags say (or launch the ranks that do); return the exit status."""
    from ..data.sources import training_data
    from ..training import distributed
    from ._sources import sources_from_args

    _resolve_run_dir(args)
    halves = halves_from_args(args, "train")
    if halves is not None:  # the ranks get --even-sums/--odd, as if given so
        args.even, args.odd, args.halves = *halves, None
    config = train_config(args)
    data = training_data(sources_from_args(args), config)  # bad input fails here
    if (args.ddp or args.nproc is not None) and not distributed.launched():
        nproc = args.nproc or distributed.default_nproc(config.train.device)
        return distributed.launch(rank_argv(args, config), nproc)
    return _train_here(args, config, *data)


def _train_here(args: argparse.Namespace, config: Config, train: Any, val: Any,
                clean_val: Any) -> int:
    """Train in this process (one rank under torchrun), printing the events."""
    from ..training.loop import train as run_training

    source = (f"store {args.store}" if args.store is not None else
              f"{len(train)} train / {len(val)} val micrographs")
    if config.train.mode != "n2c":
        source += f" ({_MODE_NAMES[config.train.mode]}" + (
            f", {len(clean_val)} clean val micrographs)" if clean_val else ")")
    events = run_training(config, train, val, args.out, resume=args.resume,
                          clean_val_pairs=clean_val)
    return _follow(events, args, source)


def _follow(events: Generator[Any, None, None], args: argparse.Namespace, source: str) -> int:
    """Print (and with ``--events`` log) every event; Ctrl-C ends the run, saving first."""
    log, out = _open_event_log(args.events)
    printer = _EventPrinter(out, source)
    try:
        for event in events:
            if log is not None:
                log.write(to_json_line(event))
                log.flush()
            printer.show(event)
    except KeyboardInterrupt:
        printer.close_bar()
        events.close()  # saves history.json and last.safetensors; best.safetensors is kept
        if _rank() == 0:
            print(f"interrupted: history and last weights saved in {args.out}; "
                  f"resume with --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if log is not None and log is not sys.stdout:
            log.close()
    return EXIT_OK


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _open_event_log(target: str | None) -> tuple[TextIO | None, TextIO]:
    """Pick the streams for the ``--events`` lines and the usual lines, as ``(log, out)``.

    ``log`` is None when the events go nowhere (no ``--events``, or not rank 0), stdout for
    ``--events -``, else the named file, opened (its folder created); ``out`` is stderr when the
    events take stdout, else stdout.
    """
    if target is None or _rank() != 0:
        return None, sys.stdout
    if target == "-":
        return sys.stdout, sys.stderr
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("w", encoding="utf-8"), sys.stdout


class _EventPrinter:
    """Print the usual lines of a run as its training events arrive.

    The lines are the start, a progress bar per epoch, each epoch's end, best checkpoints,
    warnings (on stderr) and the end.
    """

    def __init__(self, out: TextIO, source: str) -> None:
        self.out, self.source = out, source
        self.bar: Any | None = None  # the epoch's tqdm bar

    def show(self, event: Any) -> None:
        if isinstance(event, TrainStart):
            print(_start_line(event, self.source), file=self.out)
        elif isinstance(event, TrainStep):
            if self.bar is None:
                self.bar = progress(event.steps_per_epoch, f"epoch {event.epoch}", "step")
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{event.loss:.5f}", refresh=False)
        elif isinstance(event, EpochEnd):
            self.close_bar()
            print(event.describe(), file=self.out)
        elif isinstance(event, TrainWarning):
            print(f"warning: epoch {event.epoch}: {event.message}", file=sys.stderr)
        elif isinstance(event, CheckpointSaved) and event.kind == "best":
            print(f"  ✓ Saved {event.path}", file=self.out)
        elif isinstance(event, TrainEnd) and event.rank == 0:
            print(event.describe(), file=self.out)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _start_line(e: TrainStart, source: str) -> str:
    where = e.device if e.world_size == 1 else f"{e.world_size} processes × {e.device}"
    dropped = (f" ({e.n_dropped_patches} dropped per epoch so ranks step together)"
               if e.n_dropped_patches else "")
    return (f"training on {where}: {source}, "
            f"{e.n_train_patches} train{dropped} / {e.n_val_patches} val patches, "
            f"{e.steps_per_epoch} steps per epoch of {e.batch_size} ({e.precision})")
