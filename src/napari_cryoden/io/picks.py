"""Particle picks: RELION STAR, EMAN ``.box`` and plain ``.coord`` files (no torch here).

Every reader returns :class:`Picks` per micrograph, with particle **centres** in pixels of the
micrograph: ``x`` the column and ``y`` the row of the array as read from the MRC file (row 0 is
the file's first line), 0-based.

- ``.star`` (RELION): ``_rlnCoordinateX`` / ``_rlnCoordinateY`` are centres. With a
  ``_rlnMicrographName`` column the file may hold several micrographs (matched by stem);
  without one, the file's stem names its micrograph. Read with the ``starfile`` package.
- ``.box`` (EMAN1, also written by crYOLO and Topaz): ``x y w h`` per line, the box's corner
  of lowest x and y ("lower-left" in EMAN's y-up view), so the centre is ``(x + w/2, y + h/2)``.
- ``.coord``: ``x y`` centres per line, whitespace-separated; more columns (e.g. a score) are
  ignored; blank lines and lines starting with ``#`` are skipped.

A bad file raises :class:`~napari_cryoden.errors.InputError` with one line naming it and the
problem. :func:`write_picks` writes the same three formats, so that a file written and read
back gives the same centres.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["PICK_SUFFIXES", "Picks", "read_picks", "list_pick_files", "match_picks",
           "write_picks"]

PICK_SUFFIXES = (".star", ".box", ".coord")


@dataclass(frozen=True)
class Picks:
    """The picked particle centres of one micrograph (``xy``: ``(n, 2)`` x, y in px)."""

    micrograph: str
    xy: np.ndarray
    box_size: float | None = None
    source: Path | None = None

    def __len__(self) -> int:
        """Return the number of picks."""
        return int(self.xy.shape[0])


def read_picks(path: str | os.PathLike[str]) -> dict[str, Picks]:
    """Read one pick file; return its picks keyed by micrograph stem.

    Raises
    ------
    InputError
        Unknown suffix, unreadable file, missing columns, non-numbers or no picks at all.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PICK_SUFFIXES:
        raise InputError(f"{path}: not a pick file (expected one of {', '.join(PICK_SUFFIXES)})")
    if not path.is_file():
        raise InputError(f"{path}: no such pick file")
    if suffix == ".star":
        found = _read_star(path)
    else:
        rows = _numeric_rows(path, 4 if suffix == ".box" else 2)
        box = rows[:, 2:4]
        xy = rows[:, :2] + box / 2 if suffix == ".box" else rows[:, :2]
        size = float(np.median(box.mean(axis=1))) if suffix == ".box" else None
        found = {path.stem: Picks(path.stem, xy, size, path)}
    if not any(len(p) for p in found.values()):
        raise InputError(f"{path}: no picks in the file")
    return found


def write_picks(path: str | os.PathLike[str], xy: np.ndarray,
                box_size: float | None = None) -> Path:
    """Write particle centres ``xy`` (``(n, 2)``: x column, y row, px) as a pick file.

    ``.star``: one table with ``_rlnCoordinateX``/``_rlnCoordinateY`` (a RELION coordinate
    file for one micrograph); ``.box``: ``x y w h`` with the box's corner, ``w = h =
    box_size`` (required); ``.coord``: ``x y`` per line. Written whole or not at all.

    Raises
    ------
    InputError
        Another suffix, ``xy`` not ``(n, 2)`` finite numbers, or ``.box`` without a positive
        box size.
    """
    from .atomic import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PICK_SUFFIXES:
        raise InputError(f"{path}: picks are written as {', '.join(PICK_SUFFIXES)}")
    xy = np.asarray(xy, np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or not np.isfinite(xy).all():
        raise InputError(f"{path}: picks must be (x, y) pairs of finite numbers, got an array "
                         f"of shape {xy.shape}")
    if suffix == ".box" and not (box_size is not None and box_size > 0):
        raise InputError(f"{path}: a .box file needs the box size (the points' size)")
    with atomic_path(path) as temporary:
        if suffix == ".star":
            import pandas as pd
            import starfile

            starfile.write({"": pd.DataFrame({"rlnCoordinateX": xy[:, 0],
                                              "rlnCoordinateY": xy[:, 1]})}, temporary)
        elif suffix == ".box":
            assert box_size is not None
            corner = xy - box_size / 2
            lines = [f"{x:.2f}\t{y:.2f}\t{box_size:g}\t{box_size:g}" for x, y in corner]
            temporary.write_text("\n".join(lines) + "\n")
        else:
            lines = ["# x y: particle centres, px (column, row from the file's first line)"]
            lines += [f"{x:.2f}\t{y:.2f}" for x, y in xy]
            temporary.write_text("\n".join(lines) + "\n")
    return path


def _numeric_rows(path: Path, columns: int) -> np.ndarray:
    rows = []
    for number, line in enumerate(_text(path).splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        try:
            values = [float(v) for v in fields[:columns]]
        except ValueError:
            raise InputError(f"{path}: line {number} is not numbers: {line.strip()[:60]!r}") \
                from None
        if len(values) < columns or not np.isfinite(values).all():
            raise InputError(f"{path}: line {number} needs {columns} finite numbers, got "
                             f"{line.strip()[:60]!r}")
        rows.append(values)
    return np.asarray(rows, np.float64).reshape(-1, columns)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read it as text ({exc.__class__.__name__})") from None


def _read_star(path: Path) -> dict[str, Picks]:
    import starfile

    try:
        blocks = starfile.read(path, always_dict=True)
    except Exception as exc:  # starfile raises many kinds on malformed files
        raise InputError(f"{path}: not a readable STAR file ({exc})".splitlines()[0]) from None
    tables = [t for t in blocks.values() if hasattr(t, "columns")
              and {"rlnCoordinateX", "rlnCoordinateY"} <= set(t.columns)]
    if not tables:
        raise InputError(f"{path}: no table with _rlnCoordinateX and _rlnCoordinateY")
    table = tables[0]
    try:
        xy = table[["rlnCoordinateX", "rlnCoordinateY"]].to_numpy(np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{path}: _rlnCoordinateX/Y hold values that are not numbers") from None
    if not np.isfinite(xy).all():
        raise InputError(f"{path}: _rlnCoordinateX/Y hold values that are not finite numbers")
    if "rlnMicrographName" not in table.columns:
        return {path.stem: Picks(path.stem, xy, None, path)}
    names = [Path(str(n)).stem for n in table["rlnMicrographName"]]
    return {stem: Picks(stem, xy[[n == stem for n in names]], None, path)
            for stem in dict.fromkeys(names)}


def list_pick_files(path: str | os.PathLike[str]) -> list[Path]:
    """Return the pick file ``path``, or the pick files of folder ``path`` sorted by name."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in PICK_SUFFIXES)
        if not files:
            raise InputError(f"{path}: no pick files ({', '.join(PICK_SUFFIXES)}) in the folder")
        return files
    if not path.exists():
        raise InputError(f"{path}: no such pick file or folder")
    return [path]


def match_picks(path: str | os.PathLike[str],
                micrographs: Sequence[str | os.PathLike[str]]) -> dict[str, Picks]:
    """Read the picks of a file or folder and match them to micrographs by stem.

    A micrograph ``mic_0001.mrc`` takes the picks named ``mic_0001`` (a pick file's stem, or a
    STAR file's ``_rlnMicrographName`` stem), or failing that those whose name starts with
    its stem followed by ``_`` (e.g. ``mic_0001_autopick.star``).

    Returns
    -------
    dict
        Micrograph stem → its :class:`Picks`; micrographs without picks are left out.

    Raises
    ------
    InputError
        A pick file is bad, or no micrograph has picks (the first names of both are given).
    """
    found: dict[str, Picks] = {}
    for file in list_pick_files(path):
        found.update(read_picks(file))
    matched = {}
    for stem in (Path(m).stem for m in micrographs):
        key = stem if stem in found else next(
            (k for k in sorted(found) if k.startswith(stem + "_")), None)
        if key is not None:
            matched[stem] = found[key]
    if not matched:
        raise InputError(f"{path}: no picks match the micrographs by name (picks for "
                         f"{', '.join(sorted(found)[:3])}; micrographs "
                         f"{', '.join(Path(m).stem for m in list(micrographs)[:3])})")
    return matched
