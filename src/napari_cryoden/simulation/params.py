"""The physical parameters of a simulated exposure and their checks.

:class:`SimulationParams` holds the microscope, specimen and detector parameters of
:mod:`.micrographs` in the microscopist's units; :data:`HIGH_CONTRAST` is the demo's specimen;
:func:`check_ranges` checks the per-micrograph ranges of ``simulate_dataset(vary=...)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..config.sections import ConfigError

__all__ = ["HIGH_CONTRAST", "PARTICLE_KINDS", "SimulationParams", "check_ranges"]

PARTICLE_KINDS = ("proteasome", "globular", "elongated")


@dataclass(frozen=True)
class SimulationParams:
    """Physical parameters of a simulated exposure. Units are the microscopist's.

    Attributes
    ----------
    pixel_size : float
        Å per pixel.
    dose : float
        Electron dose of the noisy micrograph, e⁻/Å²; sets the shot noise.
    clean_dose : float or None
        None: the clean target is noise-free. A dose (e⁻/Å²): the clean target is itself a noisy
        micrograph at that dose, as in the seed's protocol; the noise-free one is then ``truth``.
    read_noise : float
        Standard deviation of additive Gaussian detector noise, in clean-image units.
    voltage : float
        Acceleration voltage, kV.
    cs : float
        Spherical aberration, mm.
    amplitude_contrast : float
        Fraction of amplitude contrast (0–1).
    b_factor : float
        B-factor of the CTF envelope exp(-B k²/4), Å².
    defocus_min, defocus_max : float
        Range of the per-micrograph defocus (underfocus positive), µm.
    astigmatism : float
        Largest defocus difference between the astigmatic axes, µm.
    transmission : float
        Mean fraction of incident electrons reaching the detector through the ice: the clean
        micrograph's mean away from carbon (the seed's data have a mean of 0.69).
    particle_density : float
        Mean number of particles per 10⁶ Å² (a 1000 Å square); the count is Poisson.
    particle_kinds : tuple of str
        Which of :data:`PARTICLE_KINDS` appear.
    particle_weights : tuple of float
        Relative abundance of each kind in ``particle_kinds``.
    min_separation : float
        Smallest centre distance of two particles, as a fraction of their summed radii.
    ice_thickness : float
        Mean ice thickness, Å.
    ice_thickness_variation : float
        Standard deviation of the smooth ice-thickness variation, relative to the mean.
    ice_texture : float
        RMS phase (rad) of the vitreous ice's structural noise at a 2 Å correlation length.
    carbon_edge_probability : float
        Chance that a micrograph shows carbon film beyond the edge of its hole.
    carbon_thickness : float
        Thickness of the carbon film, Å.
    contrast_scale : float
        Multiplies every phase shift (particles, ice, carbon): 1 is physical, with a per-pixel
        signal-to-noise ratio near 0.01 as in real data; larger values make structure plainer.
    """

    pixel_size: float = 1.0
    dose: float = 20.0
    clean_dose: float | None = None
    read_noise: float = 0.01
    voltage: float = 300.0
    cs: float = 2.7
    amplitude_contrast: float = 0.07
    b_factor: float = 80.0
    defocus_min: float = 0.8
    defocus_max: float = 2.5
    astigmatism: float = 0.05
    transmission: float = 0.69
    particle_density: float = 20.0
    particle_kinds: tuple[str, ...] = PARTICLE_KINDS
    particle_weights: tuple[float, ...] = (0.7, 0.2, 0.1)
    min_separation: float = 0.8
    ice_thickness: float = 300.0
    ice_thickness_variation: float = 0.2
    ice_texture: float = 0.01
    carbon_edge_probability: float = 0.25
    carbon_thickness: float = 150.0
    contrast_scale: float = 1.0

    def __post_init__(self) -> None:
        positive = ["pixel_size", "dose", "voltage", "transmission", "ice_thickness"]
        for name in [*positive, "contrast_scale"]:
            if not getattr(self, name) > 0:
                raise ConfigError(f"simulation.{name} must be > 0, got {getattr(self, name)}")
        if self.clean_dose is not None and not self.clean_dose > 0:
            raise ConfigError(f"simulation.clean_dose must be > 0 or None, got {self.clean_dose}")
        if not 0 < self.defocus_min <= self.defocus_max:
            raise ConfigError(
                f"simulation.defocus range must satisfy 0 < min <= max, "
                f"got {self.defocus_min}..{self.defocus_max} µm"
            )
        if not 0 <= self.amplitude_contrast < 1 or self.transmission > 1:
            raise ConfigError("simulation.amplitude_contrast must be in [0, 1), transmission <= 1")
        unknown = set(self.particle_kinds) - set(PARTICLE_KINDS)
        if unknown or len(self.particle_weights) != len(self.particle_kinds):
            raise ConfigError(
                f"simulation.particle_kinds must be among {PARTICLE_KINDS} with one weight each, "
                f"got {self.particle_kinds} / {self.particle_weights}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary of the fields."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SimulationParams:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"simulation: unknown parameter(s) {', '.join(unknown)}")
        plain: dict[str, Any] = {k: _from_json(v) for k, v in values.items()}
        return cls(**plain)


#: The demo's specimen: particle contrast ×20 at 100 e/Å². At physical contrast a single frame's
#: per-pixel SNR is ≈ 0.01 and a wide Gaussian blur beats a 7-px receptive field; here local
#: structure is learnable in minutes, so the sample data, the demo and the quality test use it.
HIGH_CONTRAST = SimulationParams(contrast_scale=20.0, dose=100.0)


def check_ranges(vary: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """``vary`` checked: known numeric fields of SimulationParams, ``low <= high``."""
    numeric = {f.name for f in dataclasses.fields(SimulationParams)
               if f.type in ("float", float)} - {"clean_dose"}
    for name, bounds in vary.items():
        if name not in numeric:
            raise ConfigError(f"simulation: cannot vary {name!r} (numeric fields: "
                              f"{', '.join(sorted(numeric))})")
        low, high = bounds
        if not low <= high:
            raise ConfigError(f"simulation.{name}: range {low}:{high} must have low <= high")
    return {name: (float(low), float(high)) for name, (low, high) in vary.items()}



def _jsonable(value: Any) -> Any:
    """Return a field value as JSON holds it (tuples become lists)."""
    return list(value) if isinstance(value, tuple) else value


def _from_json(value: Any) -> Any:
    """Return a field value read from JSON (lists become tuples)."""
    return tuple(value) if isinstance(value, list) else value
