"""The library of real atomic models shipped in ``structures/`` (see its ``index.json``).

Each model holds the heavy atoms of one PDB entry (no hydrogens, waters or ions), centred on its
centre of mass; ``scripts/make_atomic_models.py`` builds the library and records where each
entry came from. Loading needs numpy only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from ...config.sections import ConfigError

__all__ = ["AtomicModel", "load_structure", "structure_index", "structure_names"]

LIBRARY = Path(__file__).resolve().parent / "structures"


@dataclass(frozen=True)
class AtomicModel:
    """The heavy atoms of one structure.

    Attributes
    ----------
    name : str
        Its name in the library, e.g. ``ribosome_6zu5``.
    elements : numpy.ndarray
        ``(n,)`` upper-case element symbols (``"C"``, ``"MG"``…).
    xyz : numpy.ndarray
        ``(n, 3)`` float32 coordinates, Å, about the centre of mass.
    b_factors : numpy.ndarray
        ``(n,)`` float32 isotropic B-factors, Å².
    mass_kda : float
        Mass of the atoms, kDa.
    radius : float
        Distance of the farthest atom from the centre, Å.
    """

    name: str
    elements: np.ndarray
    xyz: np.ndarray
    b_factors: np.ndarray
    mass_kda: float
    radius: float


@cache
def structure_index() -> dict[str, dict[str, object]]:
    """Provenance record of each model (PDB ID, title, method, source, atoms, mass), by name."""
    document = json.loads((LIBRARY / "index.json").read_text(encoding="utf-8"))
    return {record["name"]: record for record in document["structures"]}


def structure_names() -> tuple[str, ...]:
    """Names of the models in the library, largest first."""
    return tuple(structure_index())


@cache
def load_structure(name: str) -> AtomicModel:
    """Read the model ``name`` from the library (cached).

    Raises
    ------
    ConfigError
        ``name`` is not in the library.
    """
    if name not in structure_index():
        raise ConfigError(f"physics: unknown structure {name!r} "
                          f"(the library has {', '.join(structure_names())})")
    with np.load(LIBRARY / f"{name}.npz", allow_pickle=False) as data:
        elements = data["element_table"][data["element"]]
        xyz = data["xyz"].astype(np.float32) * np.float32(data["xyz_scale"])
        b_factors = data["b_factor"].astype(np.float32)
    record = structure_index()[name]
    return AtomicModel(name, elements, xyz, b_factors, float(record["mass_kda"]),  # type: ignore[arg-type]
                       float(np.linalg.norm(xyz, axis=1).max()))
