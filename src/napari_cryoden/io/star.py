"""Micrograph lists in RELION STAR files, in and out (no torch here).

RELION 3.1-5 lists micrographs in the ``data_micrographs`` table of e.g.
``CtfFind/job003/micrographs_ctf.star`` (``_rlnMicrographName``), beside a ``data_optics``
table; RELION 3.0 and cryoSPARC exports converted by ``csparc2star.py`` have one table. Names
are relative to the **project folder**, where RELION runs, not to the STAR file's folder.

:func:`read_micrograph_star` reads the list and resolves the names: against ``project`` when
given, else against the one folder at or above the STAR file in which the first name exists
(the project folder of a RELION job's output); a name found under two such folders, or under
none, is an error that asks for the project folder. :func:`write_denoised_star` writes the same
tables with ``_rlnMicrographName`` replaced by the denoised files' paths and every other column
and table kept as written (values are read and written back as text).

A cryoSPARC ``.cs`` file (a numpy structured array, e.g. ``exposures.cs`` of a Patch CTF job)
is read the same way from its ``micrograph_blob/path`` field, relative to the cryoSPARC project
folder; what is written back is then a STAR file (``_rlnMicrographName`` and, where the ``.cs``
has it, ``_rlnMicrographPixelSize``), since cryoSPARC imports micrographs as files. A ``.cs``
in cryoSPARC's newer compressed format, which ``numpy.load`` cannot read, is refused with the
advice to export a STAR file.

:func:`read_halves_star` reads the even/odd frame sums a STAR file lists in
``_rlnMicrographNameEven``/``_rlnMicrographNameOdd`` (RELION 5 writes them when motion
correction saves even/odd sums, e.g. in its tilt-series STAR files), resolved the same way, for
Noise2Noise training and split-frame SNR.

Read and written with the ``starfile`` package. A bad file raises
:class:`~napari_cryoden.errors.InputError` with one line naming it and the problem.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .atomic import atomic_path
from .formats import output_suffix

__all__ = ["HALVES_COLUMNS", "MICROGRAPH_COLUMN", "MicrographStar", "denoised_paths",
           "read_halves_star", "read_micrograph_star", "write_denoised_star"]

MICROGRAPH_COLUMN = "rlnMicrographName"
"""The column (``_rlnMicrographName`` in the file) that names each micrograph."""
HALVES_COLUMNS = ("rlnMicrographNameEven", "rlnMicrographNameOdd")
"""The columns that name each micrograph's even and odd frame sums (RELION 5)."""


@dataclass(frozen=True)
class MicrographStar:
    """A STAR file's micrographs: where they are, and the tables to write back."""

    path: Path
    """The STAR file."""
    project: Path
    """The folder relative names are resolved against (absolute)."""
    block: str
    """The name of the table that holds ``_rlnMicrographName`` (``micrographs``, or ``""``)."""
    names: list[str]
    """The names as written, one per row of that table."""
    files: list[Path]
    """The names resolved (absolute paths)."""
    tables: dict[str, Any]
    """Every table of the file (pandas DataFrames of text), in order."""

    @property
    def output_name(self) -> str:
        """The name of the list written back: the file's own, or ``NAME.star`` for a ``.cs``."""
        return self.path.stem + ".star" if self.path.suffix.lower() == ".cs" else self.path.name

    def relative(self, file: Path) -> Path:
        """``file``'s path under the project folder, or just its name when it lies outside."""
        try:
            return file.relative_to(self.project)
        except ValueError:
            return Path(file.name)


def read_micrograph_star(path: str | os.PathLike[str],
                         project: str | os.PathLike[str] | None = None) -> MicrographStar:
    """Read the micrograph list of a STAR file and find every micrograph.

    Parameters
    ----------
    path
        The STAR file.
    project
        The folder the names are relative to (RELION's project folder); None: the one folder at
        or above the STAR file in which the first name exists.

    Raises
    ------
    InputError
        The file cannot be read, has no ``_rlnMicrographName`` column or no rows, the project
        folder cannot be told, or a micrograph is missing (the first missing one is named).
    """
    path = Path(path)
    tables = _read_cs(path) if path.suffix.lower() == ".cs" else _read_text_tables(path)
    blocks = [name for name, table in tables.items()
              if hasattr(table, "columns") and MICROGRAPH_COLUMN in table.columns]
    if not blocks:
        raise InputError(f"{path}: no table with _rlnMicrographName (not a micrograph list)")
    block = "micrographs" if "micrographs" in blocks else blocks[0]
    names = [str(n) for n in tables[block][MICROGRAPH_COLUMN]]
    if not names:
        raise InputError(f"{path}: the micrograph table has no rows")
    root = _project(path, names[0], project)
    files = [_resolve(root, name) for name in names]
    for name, file in zip(names, files, strict=True):
        if not file.is_file():
            raise InputError(f"{path}: micrograph {name} not found (looked for {file})")
    return MicrographStar(path, root, block, names, files, tables)


def read_halves_star(path: str | os.PathLike[str], project: str | os.PathLike[str] | None = None,
                     ) -> list[tuple[Path, Path]]:
    """Read the even/odd frame sums a STAR file lists and find every one.

    The first table with both :data:`HALVES_COLUMNS` is read (``micrographs`` first when it
    has them); rows whose even or odd name is empty or ``None`` (halves not saved) are left
    out. Names are resolved as in :func:`read_micrograph_star`.

    Returns
    -------
    list of (Path, Path)
        ``(even, odd)`` per row, absolute paths, in the file's order.

    Raises
    ------
    InputError
        The file cannot be read, has no such columns or no row with both names, the project
        folder cannot be told, or a sum is missing (the first missing one is named).
    """
    path = Path(path)
    tables = _read_text_tables(path)
    blocks = [name for name, table in tables.items()
              if hasattr(table, "columns") and all(c in table.columns for c in HALVES_COLUMNS)]
    if not blocks:
        raise InputError(f"{path}: no _rlnMicrographNameEven/_rlnMicrographNameOdd columns (no "
                         "even/odd sums listed; give their folder as --halves instead)")
    table = tables["micrographs" if "micrographs" in blocks else blocks[0]]
    rows = [(str(e), str(o)) for e, o in zip(*(table[c] for c in HALVES_COLUMNS), strict=True)
            if str(e).strip() not in ("", "None") and str(o).strip() not in ("", "None")]
    if not rows:
        raise InputError(f"{path}: no row names both an even and an odd sum")
    root = _project(path, rows[0][0], project)
    pairs = [(_resolve(root, e), _resolve(root, o)) for e, o in rows]
    for row, pair in zip(rows, pairs, strict=True):
        for name, file in zip(row, pair, strict=True):
            if not file.is_file():
                raise InputError(f"{path}: frame sum {name} not found (looked for {file})")
    return pairs


def denoised_paths(star: MicrographStar, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Where each micrograph's denoised file goes: its path under the project, under ``out_dir``.

    The folder tree is kept (``MotionCorr/job002/Movies/a.mrc`` →
    ``OUT/MotionCorr/job002/Movies/a.mrc``); TIFF inputs become ``.mrc``.
    """
    out = Path(out_dir)
    return [out / star.relative(file).with_suffix(output_suffix(file)) for file in star.files]


def write_denoised_star(star: MicrographStar, outputs: Sequence[Path],
                        path: str | os.PathLike[str]) -> Path:
    """Write ``star``'s tables to ``path`` with the micrograph names replaced by ``outputs``.

    A new name is relative to the project folder when the output lies inside it (the usual
    RELION case: the output folder is a job folder of the same project), else absolute.
    The file is written whole to a temporary name and then renamed
    (:func:`~napari_cryoden.io.atomic.atomic_path`), so a failed write leaves no half file and
    an earlier file of that name intact.
    """
    import starfile

    path = Path(path)
    if len(outputs) != len(star.names):
        raise ValueError("one output per micrograph")
    resolved = [o.resolve() for o in outputs]
    names = [str(o.relative_to(star.project)) if o.is_relative_to(star.project) else str(o)
             for o in resolved]
    tables = {k: (t.copy() if hasattr(t, "copy") else t) for k, t in star.tables.items()}
    tables[star.block][MICROGRAPH_COLUMN] = names
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        starfile.write(tables, temporary)
    return path


def _read_cs(path: Path) -> dict[str, Any]:
    """Return a cryoSPARC ``.cs`` file's micrographs as one STAR table (loads no pickles)."""
    import pandas as pd

    if not path.is_file():
        raise InputError(f"{path}: no such cryoSPARC file")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: not a numpy-format cryoSPARC .cs file ({exc}); export the "
                         "exposures as a STAR file (csparc2star.py) instead"
                         .splitlines()[0]) from None
    fields = data.dtype.names or ()
    if "micrograph_blob/path" not in fields:
        raise InputError(f"{path}: no micrograph_blob/path field (not a micrograph/exposure "
                         "list)")
    table = {MICROGRAPH_COLUMN: [_text(v) for v in data["micrograph_blob/path"]]}
    if "micrograph_blob/psize_A" in fields:
        table["rlnMicrographPixelSize"] = [f"{float(v):.6f}"
                                           for v in data["micrograph_blob/psize_A"]]
    return {"micrographs": pd.DataFrame(table)}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_text_tables(path: Path) -> dict[str, Any]:
    """Every table of the STAR file, values as text (so they are written back unchanged)."""
    import starfile

    if not path.is_file():
        raise InputError(f"{path}: no such STAR file")
    try:
        columns = sorted(set(re.findall(r"^_(\S+)", path.read_text(), re.MULTILINE)))
        return dict(starfile.read(path, always_dict=True, parse_as_string=columns))
    except Exception as exc:  # starfile raises many kinds on malformed files
        raise InputError(f"{path}: not a readable STAR file ({exc})".splitlines()[0]) from None


def _project(path: Path, first: str, given: str | os.PathLike[str] | None) -> Path:
    """Return ``given``, or the one folder at or above ``path`` that holds ``first``."""
    if given is not None:
        root = Path(given).resolve()
        if not root.is_dir():
            raise InputError(f"{given}: no such project folder")
        return root
    if Path(first).is_absolute():
        return path.resolve().parent
    here = path.resolve().parent
    found = [d for d in (here, *here.parents) if (d / first).is_file()]
    if not found:
        raise InputError(f"{path}: micrograph {first} is in no folder at or above the STAR "
                         "file; give the project folder its paths start from")
    if len(found) > 1:
        raise InputError(f"{path}: micrograph {first} exists under both {found[0]} and "
                         f"{found[1]}; give the project folder its paths start from")
    return found[0]


def _resolve(root: Path, name: str) -> Path:
    """``name`` as an absolute path (relative names under ``root``)."""
    file = Path(name)
    return file if file.is_absolute() else root / file
