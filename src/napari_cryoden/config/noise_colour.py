"""The value of ``train.noise_colour``: a range of Gaussian σ (px) that colours training noise.

Kept apart from :mod:`.sections` so the parsing is one small, tested function;
:attr:`~.sections.TrainConfig.noise_colour_range` calls it and turns its ``ValueError`` into a
:class:`~.sections.ConfigError`.
"""

from __future__ import annotations

__all__ = ["MAX_NOISE_COLOUR", "parse_noise_colour"]

MAX_NOISE_COLOUR = 4.0
"""The largest σ (px) accepted: far beyond the correlation length of any detector's noise."""


def parse_noise_colour(text: str) -> tuple[float, float] | None:
    """Parse ``"LO:HI"`` (or one number ``"S"``, meaning ``S:S``), σ in px, into ``(LO, HI)``.

    Parameters
    ----------
    text
        The field's value; empty (or blank) means off.

    Returns
    -------
    tuple of float or None
        None when off: empty, or ``HI`` = 0 (every patch's noise stays white).

    Raises
    ------
    ValueError
        Not numbers, ``LO > HI``, or outside ``0..MAX_NOISE_COLOUR``; one line.
    """
    if not text.strip():
        return None
    try:
        parts = [float(part) for part in text.split(":")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or not 0 <= parts[0] <= parts[1] <= MAX_NOISE_COLOUR:
        raise ValueError(f"train.noise_colour: {text!r} is not LO:HI with "
                         f"0 <= LO <= HI <= {MAX_NOISE_COLOUR:g} (Gaussian σ in px)")
    return None if parts[1] == 0 else (parts[0], parts[1])
