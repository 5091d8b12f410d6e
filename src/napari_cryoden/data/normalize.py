"""Per-micrograph intensity normalisation, fitted on the noisy micrograph and inverted on outputs.

Training and inference both call :func:`fit_normalizer` on the noisy micrograph (or slice), so a
micrograph is normalised identically by both. Statistics come from a deterministic subsample of
rows, so fitting a memory-mapped 4k × 4k micrograph reads at most ~256 rows of it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..config.sections import NORMALIZATIONS, ConfigError
from ..errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["Normalizer", "fit_normalizer", "MAX_FIT_ROWS"]

MAX_FIT_ROWS = 256
"""At most this many rows (every k-th, all columns) are read to fit a normaliser."""

_PERCENTILES = (0.5, 99.5)
_FLOAT32_EPS = float(np.finfo(np.float32).eps)  # a smaller spread is rounding, not signal

ArrayT = TypeVar("ArrayT", np.ndarray, "torch.Tensor")


@dataclass(frozen=True)
class Normalizer:
    """An affine intensity map: ``apply(x) = (x - offset) / scale``.

    Attributes
    ----------
    mode : str
        How it was fitted: ``"none"``, ``"meanstd"`` or ``"percentile"``.
    offset : float
        Subtracted first (the mean, or the 0.5th percentile).
    scale : float
        Divided by next (the standard deviation, or the 0.5–99.5 percentile range); > 0.
    """

    mode: str = "none"
    offset: float = 0.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in NORMALIZATIONS:
            raise ConfigError(
                f"normalization: {self.mode!r} is not one of {', '.join(NORMALIZATIONS)}"
            )
        if not (math.isfinite(self.offset) and math.isfinite(self.scale) and self.scale > 0):
            raise ConfigError(
                f"normalization: offset {self.offset} and scale {self.scale} must be finite, "
                "scale > 0"
            )

    def apply(self, x: ArrayT) -> ArrayT:
        """Map raw intensities to normalised ones (numpy array or torch tensor, dtype kept)."""
        return (x - self.offset) / self.scale

    def invert(self, y: ArrayT) -> ArrayT:
        """Map normalised intensities (e.g. the network's output) back to raw ones."""
        return y * self.scale + self.offset

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, as stored in checkpoint metadata."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalizer:
        """Inverse of :meth:`to_dict`; raises :class:`ConfigError` on unknown keys or bad values."""
        unknown = set(data) - {"mode", "offset", "scale"}
        if unknown:
            raise ConfigError(f"normalization: unknown key(s) {', '.join(sorted(unknown))}")
        try:
            offset, scale = float(data.get("offset", 0.0)), float(data.get("scale", 1.0))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"normalization: bad offset or scale ({exc})") from None
        return cls(str(data.get("mode", "none")), offset, scale)


def fit_normalizer(image: np.ndarray, mode: str, name: str | None = None) -> Normalizer:
    """Fit a normaliser to one 2D micrograph (in any real dtype, memory-mapped is fine).

    Parameters
    ----------
    image : numpy.ndarray
        ``(ny, nx)``; only every k-th row is read, with k chosen so that at most
        :data:`MAX_FIT_ROWS` rows are, always starting at row 0.
    mode : str
        ``"none"`` (identity), ``"meanstd"`` (mean 0, std 1) or ``"percentile"``
        (0.5th and 99.5th percentiles to 0 and 1).
    name : str, optional
        The micrograph's file name, for error messages.

    Raises
    ------
    InputError
        The micrograph is not 2D, is empty, is constant (or varies only at float32 rounding
        level) or holds NaN/inf, so it cannot be normalised; the message starts with ``name``.
    """
    if mode not in NORMALIZATIONS:
        raise ConfigError(f"normalization: {mode!r} is not one of {', '.join(NORMALIZATIONS)}")
    if mode == "none":
        return Normalizer()
    label = name or "micrograph"
    if image.ndim != 2:
        raise InputError(f"{label}: expected a 2D micrograph, got shape {tuple(image.shape)} "
                         "(pass one z-slice of a stack or volume at a time)")
    if image.size == 0:
        raise InputError(f"{label}: empty image (shape {tuple(image.shape)})")
    sample = _row_subsample(image)
    if not np.isfinite(sample).all():
        raise InputError(f"{label}: contains NaN or infinite values: cannot normalise")
    if sample.min() == sample.max():
        raise InputError(f"{label}: constant image: cannot normalise (std = 0)")
    if mode == "meanstd":
        mean, std = float(sample.mean()), float(sample.std())
        if not std > _FLOAT32_EPS * abs(mean):
            raise InputError(f"{label}: nearly constant image: cannot normalise (std {std:.3g} "
                             f"is below float32 precision at mean {mean:.6g})")
        return Normalizer(mode, mean, std)
    low, high = (float(v) for v in np.percentile(sample, _PERCENTILES))
    if not high - low > _FLOAT32_EPS * max(abs(low), abs(high)):
        raise InputError(
            f"{label}: nearly constant image: cannot normalise (0.5-99.5 percentile range = 0)"
        )
    return Normalizer(mode, low, high - low)


def _row_subsample(image: np.ndarray) -> np.ndarray:
    """Every k-th row as float64 (exact for every MRC/TIFF pixel type), <= MAX_FIT_ROWS rows."""
    step = max(1, math.ceil(image.shape[0] / MAX_FIT_ROWS))
    return np.asarray(image[::step], dtype=np.float64)
