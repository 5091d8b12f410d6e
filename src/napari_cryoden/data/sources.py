"""What a ``cryoden train`` run reads, from its flags: folders or a store, by training mode.

- ``n2c``: ``--noisy`` and ``--clean`` folders paired by name, or ``--store``;
- ``n2n``: ``--even`` and ``--odd`` folders paired by name (``_EVN``/``_ODD`` suffixes
  ignored), or a ``--store`` packed with the even sums as noisy and the odd sums as clean;
- ``n2v``: one ``--noisy`` folder, or ``--store``.

Validation holds out ``--val-fraction`` of the files (or of the store's micrographs); with
``n2c`` ``--val-noisy/--val-clean`` replace that split, with ``n2n``/``n2v`` they are an extra
clean set that each epoch is scored on (the held-out halves or blind spots still pick the best).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..config.sections import Config
from ..errors import CryodenError
from .pairs import find_mode_pairs, find_pairs, split_pairs

__all__ = ["training_data"]

_NEEDS = {"n2c": "--noisy and --clean folders", "n2n": "--even and --odd folders",
          "n2v": "a --noisy folder (without --clean)"}


def training_data(args: argparse.Namespace, config: Config) -> tuple[Any, Any, Any]:
    """``(train, val, clean_val)`` for :func:`~napari_cryoden.training.loop.train`; bad or
    contradictory flags raise a one-line :class:`CryodenError`."""
    mode = config.train.mode
    if (args.val_noisy is None) != (args.val_clean is None):
        raise CryodenError("give both --val-noisy and --val-clean, or neither")
    _check_sources(args, mode)
    if args.store is not None:
        train, val = _store_split(args, config)
    else:
        train, val = _folder_split(args, config)
    if args.val_noisy is None or mode == "n2c":
        return train, val, None
    return train, val, find_pairs(args.val_noisy, args.val_clean)


def _check_sources(args: argparse.Namespace, mode: str) -> None:
    given = {flag for flag in ("noisy", "clean", "even", "odd", "store")
             if getattr(args, flag, None) is not None}
    allowed = {"n2c": [{"noisy", "clean"}, {"store"}], "n2n": [{"even", "odd"}, {"store"}],
               "n2v": [{"noisy"}, {"store"}]}[mode]
    if given not in allowed:
        which = "" if mode == "n2c" else f" for --mode {mode}"
        hint = ("; --even/--odd are for --mode n2n" if given & {"even", "odd"} and mode != "n2n"
                else "; --mode n2v trains on noisy micrographs alone" if given == {"noisy"}
                else "")
        raise CryodenError(f"give either {_NEEDS[mode]}, or --store{which}{hint}")
    if args.store is not None and args.val_noisy is not None and mode == "n2c":
        raise CryodenError("--val-noisy/--val-clean do not combine with --store: the store "
                           "holds out --val-fraction of its micrographs")


def _store_split(args: argparse.Namespace, config: Config) -> tuple[Any, Any]:
    from ..training.loop import Packed
    from .packed import PackedStore

    store = PackedStore.open(args.store)
    if store.noise is not None and config.train.mode == "n2n":
        raise CryodenError(f"{args.store}: a clean-only store has no second noisy half for "
                           "--mode n2n; pack the even sums as --noisy and the odd as --clean")
    train_idx, val_idx = store.split(config.data.val_fraction, config.train.seed)
    return Packed(store, train_idx), Packed(store, val_idx)


def _folder_split(args: argparse.Namespace, config: Config) -> tuple[Any, Any]:
    mode = config.train.mode
    first, second = (args.even, args.odd) if mode == "n2n" else (args.noisy, args.clean)
    pairs = find_mode_pairs(mode, first, second)
    if mode == "n2c" and args.val_noisy is not None:
        return pairs, find_pairs(args.val_noisy, args.val_clean)
    return split_pairs(pairs, config.data.val_fraction, config.train.seed)
