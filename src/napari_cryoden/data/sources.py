"""What a training run reads: folders or a store, by training mode (:class:`TrainSources`).

- ``n2c``: ``noisy`` and ``clean`` folders paired by name, or a ``store``;
- ``n2n``: ``even`` and ``odd`` folders paired by name (``_EVN``/``_ODD`` suffixes ignored), or
  a ``store`` packed with the even sums as noisy and the odd sums as clean;
- ``n2v``: one ``noisy`` folder, or a ``store``.

Validation holds out ``data.val_fraction`` of the files (or of the store's micrographs); with
``n2c`` ``val_noisy``/``val_clean`` replace that split, with ``n2n``/``n2v`` they are an extra
clean set that each epoch is scored on (the held-out halves or blind spots still pick the best).
The CLI builds the sources from its flags (``cryoden train --noisy …``) and the Train widget
from its folder choices; error messages name the CLI's flags.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.sections import Config
from ..errors import CryodenError
from .pairs import Pairs, find_mode_pairs, find_pairs, split_pairs

__all__ = ["TrainSources", "training_data"]

_NEEDS = {"n2c": "--noisy and --clean folders", "n2n": "--even and --odd folders (or --halves)",
          "n2v": "a --noisy folder (without --clean)"}
_ALLOWED = {"n2c": [{"noisy", "clean"}, {"store"}], "n2n": [{"even", "odd"}, {"halves"}, {"store"}],
            "n2v": [{"noisy"}, {"store"}]}
_READ = ("noisy", "clean", "even", "odd", "halves", "store")  # training reads (not validation)


@dataclass(frozen=True)
class TrainSources:
    """The folders (or packed store) a training run reads; None where not given.

    Which combination a run needs depends on its mode (see the module docstring);
    :meth:`check` says what is wrong with one. Strings are taken as paths.
    """

    noisy: Path | None = None
    clean: Path | None = None
    even: Path | None = None
    odd: Path | None = None
    halves: Path | None = None
    """A STAR file listing even/odd sums (``_rlnMicrographNameEven/Odd``; n2n)."""
    project: Path | None = None
    """The folder ``halves``' names are relative to (None: found by the STAR reader)."""
    store: Path | None = None
    val_noisy: Path | None = None
    val_clean: Path | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, f.name, Path(value))

    @classmethod
    def for_mode(cls, mode: str, first: str | os.PathLike[str],
                 second: str | os.PathLike[str] | None) -> TrainSources:
        """Name two folders by what they hold in ``mode``.

        Parameters
        ----------
        mode
            ``"n2c"``, ``"n2n"`` or ``"n2v"``.
        first, second
            The noisy and clean folders (n2c), the even and odd folders (n2n), or one noisy
            folder and None (n2v).

        Returns
        -------
        TrainSources
            ``even``/``odd`` for n2n, ``noisy``/``clean`` otherwise.
        """
        if mode == "n2n":
            return cls(even=Path(first), odd=None if second is None else Path(second))
        return cls(noisy=Path(first), clean=None if second is None else Path(second))

    def check(self, mode: str) -> None:
        """Refuse a combination that does not fit ``mode``.

        Parameters
        ----------
        mode
            The run's ``train.mode``.

        Raises
        ------
        CryodenError
            One line naming the problem (in the CLI's flags): a validation folder without its
            partner, the wrong folders for the mode, or validation folders with an n2c store.
        """
        if (self.val_noisy is None) != (self.val_clean is None):
            raise CryodenError("give both --val-noisy and --val-clean, or neither")
        given = {name for name in _READ if getattr(self, name) is not None}
        if given not in _ALLOWED[mode]:
            which = "" if mode == "n2c" else f" for --mode {mode}"
            hint = ("; --even/--odd are for --mode n2n" if given & {"even", "odd"} and mode != "n2n"
                    else "; --halves is for --mode n2n" if "halves" in given and mode != "n2n"
                    else "; --mode n2v trains on noisy micrographs alone" if given == {"noisy"}
                    else "")
            raise CryodenError(f"give either {_NEEDS[mode]}, or --store{which}{hint}")
        if self.store is not None and self.val_noisy is not None and mode == "n2c":
            raise CryodenError("--val-noisy/--val-clean do not combine with --store: the store "
                               "holds out --val-fraction of its micrographs")

    def folders(self, mode: str) -> tuple[Path | None, Path | None]:
        """Give the two training folders of ``mode``: (even, odd) for n2n, else (noisy, clean).

        Parameters
        ----------
        mode
            The run's ``train.mode``.

        Returns
        -------
        tuple of (Path or None, Path or None)
            The folders, in the order :func:`~.pairs.find_mode_pairs` takes them.
        """
        return (self.even, self.odd) if mode == "n2n" else (self.noisy, self.clean)


def training_data(sources: TrainSources, config: Config) -> tuple[Any, Any, Pairs | None]:
    """Give the ``(train, val, clean_val)`` data of :func:`~napari_cryoden.training.loop.train`.

    Parameters
    ----------
    sources
        The folders or store to read.
    config
        The run's config: ``train.mode``, ``data.val_fraction`` and ``train.seed`` are used.

    Returns
    -------
    train, val
        File pairs (:func:`~.pairs.find_mode_pairs` split by :func:`~.pairs.split_pairs`, or
        the explicit n2c validation folders), or the store's training and validation parts.
    clean_val
        The clean validation pairs of an n2n/n2v run, else None.

    Raises
    ------
    CryodenError
        Bad or contradictory sources (:meth:`TrainSources.check`), unpaired or missing files,
        or too few files to hold one out; one line.
    """
    mode = config.train.mode
    sources.check(mode)
    if sources.store is not None:
        train, val = _store_split(sources.store, config)
    else:
        train, val = _folder_split(sources, config)
    if sources.val_noisy is None or sources.val_clean is None or mode == "n2c":
        return train, val, None  # check() refused one validation folder without the other
    return train, val, find_pairs(sources.val_noisy, sources.val_clean)


def _store_split(path: Path, config: Config) -> tuple[Any, Any]:
    from .packed import Packed, PackedStore

    store = PackedStore.open(path)
    if store.noise is not None and config.train.mode == "n2n":
        raise CryodenError(f"{path}: a clean-only store has no second noisy half for "
                           "--mode n2n; pack the even sums as --noisy and the odd as --clean")
    train_idx, val_idx = store.split(config.data.val_fraction, config.train.seed)
    return Packed(store, train_idx), Packed(store, val_idx)


def _folder_split(sources: TrainSources, config: Config) -> tuple[Pairs, Pairs]:
    mode = config.train.mode
    if sources.halves is not None:  # n2n from a STAR file (TrainSources.check)
        from ..io.star import read_halves_star

        pairs = read_halves_star(sources.halves, sources.project)
    else:
        first, second = sources.folders(mode)
        assert first is not None  # TrainSources.check
        pairs = find_mode_pairs(mode, first, second)
    if mode == "n2c" and sources.val_noisy is not None:
        assert sources.val_clean is not None
        return pairs, find_pairs(sources.val_noisy, sources.val_clean)
    return split_pairs(pairs, config.data.val_fraction, config.train.seed)
