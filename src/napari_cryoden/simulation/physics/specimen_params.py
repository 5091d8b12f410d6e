"""What the specimen stage simulates: microscope, ice, particles, as per-micrograph ranges."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ...config.sections import ConfigError
from ._fields import fields_from_dict
from .structures import structure_names

__all__ = ["SpecimenParams"]

_RANGES = ("pixel_size", "defocus", "astigmatism", "ice_thickness")


@dataclass(frozen=True)
class SpecimenParams:
    """Parameters of the specimen stage, in the microscopist's units.

    Each ``(low, high)`` range is drawn uniformly once per micrograph.

    Attributes
    ----------
    pixel_size : (float, float)
        Å per pixel of the micrograph, 0.5–4 (unless the caller gives one).
    defocus : (float, float)
        Defocus, µm, underfocus positive.
    astigmatism : (float, float)
        Difference of the defocus along the two astigmatic axes, µm (the axis at a uniform angle).
    ice_thickness : (float, float)
        Mean ice thickness, Å; sets the transmission exp(-t / 3500 Å) and the ice's noise.
    ice_thickness_variation : float
        Standard deviation of the smooth thickness variation across the field, relative.
    ice_texture : float
        RMS phase (rad) of the ice's structural noise at 300 Å of ice (scales as √thickness).
    particle_density : float
        Mean number of particles per 10⁶ Å²; the count is Poisson, overlaps are rejected.
    structures : tuple of str
        Atomic models from the library (:func:`.structures.structure_names`).
    weights : tuple of float
        Relative abundance of each structure.
    min_separation : float
        Smallest centre distance of two particles, as a fraction of their summed radii.
    carbon_edge_probability, carbon_thickness : float
        Chance of a carbon edge in view; the film's thickness, Å.
    voltage, cs, amplitude_contrast, b_factor : float
        kV; mm; fraction in [0, 1); Å² of the CTF's envelope exp(-B k²/4).
    """

    pixel_size: tuple[float, float] = (0.5, 4.0)
    defocus: tuple[float, float] = (0.5, 3.0)
    astigmatism: tuple[float, float] = (0.0, 0.1)
    ice_thickness: tuple[float, float] = (200.0, 800.0)
    ice_thickness_variation: float = 0.1
    ice_texture: float = 0.01
    particle_density: float = 10.0
    structures: tuple[str, ...] = ("ribosome_6zu5", "tric_4v8r", "ruvab_7pbl", "dengue_e_7cth",
                                   "glua3_ntd_3p3w", "enolase_3enl")
    weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    min_separation: float = 0.9
    carbon_edge_probability: float = 0.25
    carbon_thickness: float = 150.0
    voltage: float = 300.0
    cs: float = 2.7
    amplitude_contrast: float = 0.07
    b_factor: float = 80.0

    def __post_init__(self) -> None:
        for name in _RANGES:
            low, high = getattr(self, name)
            if not 0 <= low <= high or (name != "astigmatism" and not low > 0):
                raise ConfigError(f"specimen.{name} must be a range 0 < low <= high, "
                                  f"got {low}..{high}")
        for name in ("voltage", "cs", "particle_density", "min_separation"):
            if not getattr(self, name) >= (0 if name in ("cs", "particle_density") else 1e-9):
                raise ConfigError(f"specimen.{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.amplitude_contrast < 1 or not 0 <= self.carbon_edge_probability <= 1:
            raise ConfigError("specimen.amplitude_contrast must be in [0, 1) and "
                              "carbon_edge_probability in [0, 1]")
        unknown = sorted(set(self.structures) - set(structure_names()))
        if unknown or len(self.weights) != len(self.structures) or not self.structures:
            raise ConfigError(f"specimen.structures must be among {', '.join(structure_names())}"
                              f" with one weight each, got {self.structures} / {self.weights}")
        if min(self.weights) < 0 or not sum(self.weights) > 0:
            raise ConfigError(f"specimen.weights must be >= 0 and not all 0, got {self.weights}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary of the fields (tuples become lists)."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SpecimenParams:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        return cls(**fields_from_dict(cls, values, "specimen"))
