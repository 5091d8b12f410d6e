"""Every way files become training pairs, and the split of pairs into training and validation.

- :func:`find_pairs`: a noisy and a clean folder, paired by name stem (``noisy/a.mrc`` with
  ``clean/a.mrc``);
- :func:`find_half_pairs`: the even and odd frame sums of one set of movies, paired by name less
  MotionCor2's ``_EVN``/``_ODD`` (or ``_even``/``_odd``) suffix (:func:`half_stem`); one folder
  holding both (MotionCor2, RELION 5) works too, and :func:`halves_folders` finds the halves of
  a motion-correction program's output folder by the field's conventions;
- :func:`single_pairs`: single noisy micrographs, each paired with itself (Noise2Void);
- :func:`find_mode_pairs`: the one of these a training mode (``train.mode``) reads;
- :func:`split_pairs`: whole files held out for validation, chosen by seed.

Every problem is a one-line :class:`~napari_cryoden.errors.InputError` naming the folder or files.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import InputError
from ..io.images import list_images

__all__ = ["Pair", "Pairs", "find_half_pairs", "find_mode_pairs", "find_pairs", "half_stem",
           "halves_folders", "micrograph_name", "single_pairs", "split_half", "split_pairs",
           "TooFewPairs"]

Pair = tuple[Path, Path]
"""A (noisy, clean) pair of files; also used for (even, odd) halves."""
Pairs = list[Pair]

_HALF_SUFFIX = re.compile(r"(?:\A|[_.-])(evn|odd|even)\Z", re.IGNORECASE)
_HALVES = {"evn": "even", "even": "even", "odd": "odd"}


def find_pairs(
    noisy_dir: str | os.PathLike[str], clean_dir: str | os.PathLike[str], *,
    labels: tuple[str, str] = ("noisy", "clean"), key: Callable[[Path], str] | None = None,
) -> Pairs:
    """Pair the files of two folders by name stem (``noisy/a.mrc`` with ``clean/a.mrc``).

    Parameters
    ----------
    noisy_dir, clean_dir
        The two folders of micrographs.
    labels
        What the two sides are called in error messages (e.g. ``("even", "odd")``).
    key
        Maps a file to the name it pairs by (default: its stem).

    Returns
    -------
    list of (Path, Path)
        The pairs, sorted by name.

    Raises
    ------
    InputError
        A folder is missing or empty, or some files have no partner (the first few are named).
    """
    return _pair_files(list_images(noisy_dir), list_images(clean_dir), (noisy_dir, clean_dir),
                       labels, key)


def _pair_files(noisy_files: list[Path], clean_files: list[Path],
                folders: tuple[str | os.PathLike[str], str | os.PathLike[str]],
                labels: tuple[str, str], key: Callable[[Path], str] | None) -> Pairs:
    """Pair two lists of files by ``key`` (default: stem); see :func:`find_pairs`."""
    noisy_dir, clean_dir = folders
    noisy = _by_stem(noisy_files, key)
    clean = _by_stem(clean_files, key)
    only_noisy = [noisy[s] for s in sorted(set(noisy) - set(clean))]
    only_clean = [clean[s] for s in sorted(set(clean) - set(noisy))]
    if only_noisy or only_clean:
        parts = [
            f"only in {folder}: {_first_few(files)}"
            for folder, files in ((noisy_dir, only_noisy), (clean_dir, only_clean)) if files
        ]
        raise InputError(f"{labels[0]} and {labels[1]} files do not pair by name; "
                         + "; ".join(parts))
    return [(noisy[stem], clean[stem]) for stem in sorted(noisy)]


def half_stem(path: str | os.PathLike[str]) -> str:
    """Return the name an even/odd half pairs by: its stem less the half's suffix.

    The suffix is a trailing ``_EVN``, ``_ODD``, ``_even`` or ``_odd`` (MotionCor2's
    ``-SplitSum`` names), so ``a_EVN.mrc`` pairs with ``a_ODD.mrc``.

    Parameters
    ----------
    path
        A file of either half.

    Returns
    -------
    str
        The shared name stem.
    """
    return _HALF_SUFFIX.sub("", Path(path).stem)


def split_half(name: str) -> tuple[str, str] | None:
    """Split a micrograph's name into the name its halves share and the half it is.

    The same rule as :func:`half_stem`, applied to a name rather than a file (a napari layer's
    name, say): ``"mic_01_EVN"`` gives ``("mic_01", "even")``, ``"mic_01_odd"`` gives
    ``("mic_01", "odd")``, and ``"odd"`` alone ``("", "odd")``.

    Parameters
    ----------
    name
        The name, without a file suffix.

    Returns
    -------
    tuple of (str, str) or None
        ``(shared name, "even" or "odd")``, or None when the name does not end in a half's suffix.
    """
    match = _HALF_SUFFIX.search(name)
    if match is None:
        return None
    return name[:match.start()], _HALVES[match.group(1).lower()]


def micrograph_name(path: str | os.PathLike[str]) -> str:
    """Return what to call a micrograph file: its stem, with the half if only its folder says it.

    Warp keeps the halves as ``average/even/NAME.mrc`` and ``average/odd/NAME.mrc``: the same
    stem twice. Such a file is called ``NAME_even`` / ``NAME_odd``, so a napari layer's name
    tells the halves apart by :func:`split_half`'s rule. Other files keep their stem.
    """
    path = Path(path)
    folder = path.parent.name.lower()
    if folder in ("even", "odd") and split_half(path.stem) is None:
        return f"{path.stem}_{folder}"
    return path.stem


def find_half_pairs(even_dir: str | os.PathLike[str],
                    odd_dir: str | os.PathLike[str]) -> Pairs:
    """Pair the even and odd frame sums of two folders by name (see :func:`half_stem`).

    A file whose name says it is the other half (``a_ODD.mrc`` among the even sums) is left
    out. When both folders are the same one (MotionCor2 and RELION write ``a_EVN.mrc`` and
    ``a_ODD.mrc`` beside the full sum ``a.mrc``), only files named as a half are paired.

    Parameters
    ----------
    even_dir, odd_dir
        The folders of the even and of the odd frame sums.

    Returns
    -------
    list of (Path, Path)
        ``(even, odd)`` pairs, sorted by name.

    Raises
    ------
    InputError
        A folder is missing or empty, holds no halves, or some files have no partner (the
        first few are named).
    """
    same = Path(even_dir).resolve() == Path(odd_dir).resolve()
    evens = _halves_in(even_dir, "even", named_only=same)
    odds = _halves_in(odd_dir, "odd", named_only=same)
    return _pair_files(evens, odds, (even_dir, odd_dir), ("even", "odd"), half_stem)


def halves_folders(folder: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Return the even and the odd folder of a motion-correction output folder.

    ``folder/even`` and ``folder/odd`` when both exist (Warp's ``average/``, WarpTools'
    ``warp_frameseries/average/``, ``cryoden split-frames``' output), else ``folder`` twice
    (MotionCor2 and RELION 5 write ``NAME_EVN``/``NAME_ODD`` beside ``NAME``; see
    :func:`find_half_pairs`).

    Raises
    ------
    InputError
        ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder of even/odd frame sums")
    even, odd = folder / "even", folder / "odd"
    return (even, odd) if even.is_dir() and odd.is_dir() else (folder, folder)


def single_pairs(noisy_dir: str | os.PathLike[str]) -> Pairs:
    """Pair each micrograph of a folder with itself, the stream's input for ``n2v``.

    Parameters
    ----------
    noisy_dir
        The folder of noisy micrographs.

    Returns
    -------
    list of (Path, Path)
        ``(file, file)`` for every micrograph, sorted by name.

    Raises
    ------
    InputError
        The folder is missing or holds no micrographs.
    """
    return [(path, path) for path in list_images(noisy_dir)]


def find_mode_pairs(mode: str, first: str | os.PathLike[str],
                    second: str | os.PathLike[str] | None) -> Pairs:
    """Find the file pairs a training mode reads.

    Parameters
    ----------
    mode
        ``"n2c"``, ``"n2n"`` or ``"n2v"`` (``train.mode``).
    first, second
        (noisy, clean) folders for n2c, (even, odd) folders for n2n, one noisy folder for n2v
        (``second`` is then ignored).

    Returns
    -------
    list of (Path, Path)
        The pairs (:func:`find_pairs`, :func:`find_half_pairs` or :func:`single_pairs`).

    Raises
    ------
    InputError
        As the function of the mode does.
    """
    if mode == "n2v":
        return single_pairs(first)
    if second is None:
        raise ValueError(f"mode {mode!r} needs two folders")
    return find_half_pairs(first, second) if mode == "n2n" else find_pairs(first, second)


def split_pairs(
    pairs: Sequence[Pair], val_fraction: float, seed: int
) -> tuple[Pairs, Pairs]:
    """Hold out whole files for validation, chosen by seed; returns ``(train, val)``.

    ``round(val_fraction * n)`` files (at least 1, at most n - 1) go to validation. Which ones
    depends only on the seed and the noisy file names, not on the order of ``pairs``; both lists
    keep the input order. ``val_fraction == 0`` gives an empty validation list.

    Parameters
    ----------
    pairs
        The pairs to split.
    val_fraction
        The fraction of files to hold out, in [0, 1).
    seed
        Chooses which files.

    Returns
    -------
    train, val : list of (Path, Path)
        The training and the validation pairs.

    Raises
    ------
    TooFewPairs
        ``val_fraction > 0`` but only one pair is given (an :class:`InputError`).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    pairs = list(pairs)
    if val_fraction == 0.0:
        return pairs, []
    if len(pairs) < 2:
        raise TooFewPairs(
            f"only {len(pairs)} micrograph pair: cannot hold out a validation file; "
            "give more files or explicit --val-noisy/--val-clean folders"
        )
    n_val = min(max(round(val_fraction * len(pairs)), 1), len(pairs) - 1)
    ranked = sorted(range(len(pairs)), key=lambda i: (_draw(seed, pairs[i][0]), i))
    val_indices = set(ranked[:n_val])
    train = [p for i, p in enumerate(pairs) if i not in val_indices]
    val = [p for i, p in enumerate(pairs) if i in val_indices]
    return train, val


class TooFewPairs(InputError):
    """Too few pairs to hold out a validation file (:func:`split_pairs`).

    The Train widget words it for its own controls.
    """


def _draw(seed: int, path: Path) -> bytes:
    """Return a pseudo-random sort key of a file for ``seed``.

    It depends on the seed and the file's name only, so it is stable across runs, platforms and
    folders.
    """
    return hashlib.blake2b(f"{seed}\0{Path(path).name}".encode(), digest_size=8).digest()


def _halves_in(folder: str | os.PathLike[str], half: str, named_only: bool) -> list[Path]:
    """Return the images of ``folder`` that may be ``half`` sums (only named ones if asked)."""
    files = list_images(folder)
    kept = []
    for file in files:
        split = split_half(file.stem)
        named = None if split is None or not split[0] else split[1]
        if named == half or (named is None and not named_only):
            kept.append(file)
    if not kept:
        raise InputError(f"{folder}: no {half} frame sums in it (named NAME_EVN/NAME_ODD or "
                         "NAME_even/NAME_odd, or in folders even/ and odd/)")
    return kept


def _by_stem(files: list[Path], key: Callable[[Path], str] | None = None) -> dict[str, Path]:
    by_stem: dict[str, Path] = {}
    for file in files:
        stem = key(file) if key is not None else file.stem
        if stem in by_stem:
            raise InputError(f"{by_stem[stem]} and {file.name} have the same name stem")
        by_stem[stem] = file
    return by_stem


def _first_few(files: list[Path], n: int = 3) -> str:
    names = ", ".join(f.name for f in files[:n])
    return names + (f" (+{len(files) - n} more)" if len(files) > n else "")
