"""The parameters of the exposure stage, and the values one micrograph draws from them.

:class:`ExposureParams` holds ranges and choices in the microscopist's units; each micrograph
draws one :class:`DrawnExposure` from them (its dose, frame count, detector, drift trajectory,
interpolation), which :func:`.exposure.expose_drawn` records as a movie.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...config.sections import ConfigError
from ._fields import fields_from_dict
from .detector import DETECTORS

__all__ = ["INTERPOLATIONS", "NORMALISATIONS", "DrawnExposure", "ExposureParams"]

NORMALISATIONS = ("power", "none")
"""How dose weights are normalised per frequency (see :class:`ExposureParams`)."""

INTERPOLATIONS = ("fourier", "bilinear", "bicubic")
"""How motion correction shifts each frame back: an exact phase shift, or resampling."""


@dataclass(frozen=True)
class ExposureParams:
    """How a noise-free image is recorded as a movie and made into sums; ranges are per micrograph.

    Attributes
    ----------
    dose : (float, float)
        Range of the total exposure, e⁻/Å² (drawn uniformly).
    frames : (int, int)
        Range of the frame count; the count drawn is rounded down to an even number so that the
        even and the odd sums have the same dose.
    detectors : tuple of str
        Detectors to choose from (uniformly), among :data:`.detector.DETECTORS`.
    voltage : float
        Acceleration voltage, kV (200 or 300): picks the MTF file and scales radiation damage.
    drift : (float, float)
        Range of the beam-induced whole-frame motion, Å: the length of its decaying early part.
    drift_decay : float
        Exposure over which the early motion's speed falls by e, e⁻/Å².
    jitter : float
        RMS per-frame random step of the trajectory on each axis, Å.
    alignment_error : float
        RMS error on each axis of the per-frame shift motion correction uses, Å (0: known).
    interpolations : tuple of str
        Interpolations to choose from (uniformly) for motion correction.
    dose_weighting : bool
        Whether the sums are dose-weighted (radiation damage happens regardless).
    weight_normalisation : str
        ``"power"``: each frequency's weights ``w_k`` scaled by ``√(K / Σ w_k²)`` (Grant &
        Grigorieff 2015 Eq. 9, as RELION's and MotionCor's dose weighting, times √K so that the
        mean stays put), which keeps the noise power of an unweighted sum and raises the
        high-frequency signal; ``"none"``: the exposure filters alone, which lowers the
        high-frequency noise and signal together.
    binning : float
        Fourier binning factor of the sums (≥ 1; non-integer factors crop to the nearest size).
    """

    dose: tuple[float, float] = (15.0, 60.0)
    frames: tuple[int, int] = (20, 60)
    detectors: tuple[str, ...] = ("k3", "k2", "falcon4ec")
    voltage: float = 300.0
    drift: tuple[float, float] = (1.0, 5.0)
    drift_decay: float = 4.0
    jitter: float = 0.1
    alignment_error: float = 0.1
    interpolations: tuple[str, ...] = INTERPOLATIONS
    dose_weighting: bool = True
    weight_normalisation: str = "power"
    binning: float = 1.0

    def __post_init__(self) -> None:
        _check_range("dose", self.dose, low=0.0, strict=True)
        _check_range("frames", self.frames, low=2.0, strict=False)
        _check_range("drift", self.drift, low=0.0, strict=False)
        _check_choices("detectors", self.detectors, tuple(DETECTORS))
        _check_choices("interpolations", self.interpolations, INTERPOLATIONS)
        if self.voltage not in (200.0, 300.0):
            raise ConfigError(f"exposure.voltage must be 200 or 300 kV, got {self.voltage}")
        if not self.drift_decay > 0:
            raise ConfigError(f"exposure.drift_decay must be > 0, got {self.drift_decay}")
        if self.weight_normalisation not in NORMALISATIONS:
            raise ConfigError(f"exposure.weight_normalisation must be one of "
                              f"{', '.join(NORMALISATIONS)}, got {self.weight_normalisation!r}")
        for name in ("jitter", "alignment_error"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"exposure.{name} must be >= 0, got {getattr(self, name)}")
        if not self.binning >= 1:
            raise ConfigError(f"exposure.binning must be >= 1, got {self.binning}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary of the fields (tuples become lists)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ExposureParams:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        return cls(**fields_from_dict(cls, values, "exposure"))

    def draw(self, rng: np.random.Generator, pixel_size: float) -> DrawnExposure:
        """Draw one micrograph's exposure: settings, then the drift and its estimate, in Å."""
        dose = float(rng.uniform(*self.dose))
        frames = max(2, 2 * (int(rng.integers(self.frames[0], self.frames[1] + 1)) // 2))
        detector = str(rng.choice(self.detectors))
        interpolation = str(rng.choice(self.interpolations))
        drift = float(rng.uniform(*self.drift))
        trajectory = drift_trajectory(rng, frames, dose, drift, self.drift_decay, self.jitter)
        estimate = trajectory + rng.normal(0.0, self.alignment_error, trajectory.shape)
        estimate[0] = trajectory[0]  # the reference frame is where it is
        weighting = self.weight_normalisation if self.dose_weighting else None
        return DrawnExposure(dose, frames, detector, self.voltage, interpolation, weighting,
                             self.binning, pixel_size, trajectory, estimate)


@dataclass(frozen=True)
class DrawnExposure:
    """One micrograph's exposure, as drawn by :meth:`ExposureParams.draw`.

    ``trajectory`` is the ``(frames, 2)`` (y, x) displacement of each frame, Å, frame 0 at the
    origin; ``estimate`` is what motion correction believes it to be; ``dose_weighting`` is the
    weights' normalisation, or None for a plain sum.
    """

    dose: float
    frames: int
    detector: str
    voltage: float
    interpolation: str
    dose_weighting: str | None
    binning: float
    pixel_size: float
    trajectory: np.ndarray
    estimate: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary of the values (arrays become nested lists)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def drift_trajectory(rng: np.random.Generator, frames: int, dose: float, drift: float,
                     decay: float, jitter: float) -> np.ndarray:
    """``(frames, 2)`` beam-induced whole-frame trajectory (y, x), Å, starting at the origin.

    The speed falls as ``exp(-exposure / decay)`` (most motion in the first few e⁻/Å²) and the
    early path, ``drift`` Å long, turns slowly (a random curvature); a random walk of
    ``jitter`` Å per frame and axis rides on it.
    """
    exposure = dose / frames * np.arange(frames - 1)  # at the start of each step
    speed = np.exp(-exposure / decay)
    steps = drift * speed / speed.sum()
    angle = rng.uniform(0, 2 * math.pi) + rng.normal(0, 0.5) * np.linspace(0, 1, frames - 1)
    moves = steps[:, None] * np.stack([np.sin(angle), np.cos(angle)], axis=1)
    moves += rng.normal(0.0, jitter, moves.shape)
    return np.concatenate([np.zeros((1, 2)), np.cumsum(moves, axis=0)])


def _check_range(name: str, bounds: tuple[float, float], low: float, strict: bool) -> None:
    if len(bounds) != 2 or not bounds[0] <= bounds[1]:
        raise ConfigError(f"exposure.{name}: range {bounds} must be (low, high) with low <= high")
    if (bounds[0] <= low) if strict else (bounds[0] < low):
        relation = ">" if strict else ">="
        raise ConfigError(f"exposure.{name} must be {relation} {low:g}, got {bounds[0]}")


def _check_choices(name: str, chosen: tuple[str, ...], known: tuple[str, ...]) -> None:
    if not chosen or set(chosen) - set(known):
        raise ConfigError(f"exposure.{name} must be among {', '.join(known)}, got {chosen}")


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    return list(value) if isinstance(value, tuple) else value
