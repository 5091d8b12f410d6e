"""Scramble guards: the seed's "lessons learned", checked automatically.

The seed's scrambled weights showed three symptoms that nobody was warned about: a *negative*
correlation with the target (physically impossible for a working denoiser), a result worse than
doing nothing (the noisy input), and a validation loss that got worse with more training. These
functions turn each symptom into a one-line warning; evaluation puts them in its report,
training yields them as :class:`~napari_cryoden.training.events.TrainWarning`, ``import-raw``
prints them. All are pure functions of numbers, so the napari widgets can call them too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .pixels import compare

__all__ = ["VAL_RISE_EPOCHS", "VAL_RISE_MARGIN", "RESUME_TOLERANCE", "output_warnings",
           "report_warnings", "image_warnings", "val_rise_warning", "resume_warning",
           "format_warnings"]

VAL_RISE_EPOCHS = 3  # consecutive epochs of rising validation loss before a warning
VAL_RISE_MARGIN = 3.0  # the rise must exceed this many deviations of epoch-to-epoch noise
RESUME_TOLERANCE = 0.20  # resumed weights may score this much worse than recorded


def output_warnings(corr: float | None, mse: float | None, noisy_mse: float | None = None,
                    noisy_corr: float | None = None) -> list[str]:
    """Warnings about a denoiser's output scored against its target.

    Parameters
    ----------
    corr, mse
        Pearson r and MSE of the output against the target (all pixels).
    noisy_mse, noisy_corr
        The same scores of the noisy input itself (the identity "denoiser"), if known.

    Returns
    -------
    list of str
        Empty for a plausible denoiser; else one message per symptom: r <= 0 (or undefined
        because the output is flat), and a result worse than the identity: a higher MSE or a
        lower correlation than the noisy input's. (The ideal denoiser E[clean | noisy] has the
        highest correlation with the target of any function of the noisy image, so a working
        one never correlates less than the input does.)
    """
    warnings = []
    if corr is None or not math.isfinite(corr):
        warnings.append("Pearson r of the output is undefined (the output is flat or not "
                        "finite): the weights or the normalisation are wrong")
    elif corr <= 0:
        warnings.append(f"Pearson r = {corr:.3f} <= 0: physically impossible for a working "
                        "denoiser; the weights are scrambled (wrong raw layout?) or belong to "
                        "another normalisation")
    worse = []
    mse, noisy_mse = _finite(mse), _finite(noisy_mse)
    if mse is not None and noisy_mse is not None and mse > noisy_mse * (1 + _SLACK):
        worse.append(f"MSE {mse:.4g} vs {noisy_mse:.4g}")
    corr, noisy_corr = _finite(corr), _finite(noisy_corr)
    if corr is not None and noisy_corr is not None and corr < noisy_corr - _SLACK:
        worse.append(f"Pearson r {corr:.3f} vs {noisy_corr:.3f}")
    if worse:
        warnings.append(f"the model is worse than the identity ({'; '.join(worse)} for the "
                        "noisy input itself): the weights are scrambled, untrained, or used "
                        "with the wrong normalisation")
    return warnings


_SLACK = 1e-3  # rounding in the normalise → denoise → invert round trip is not "worse"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def report_warnings(report: Mapping[str, Any]) -> list[str]:
    """:func:`output_warnings` of an evaluation report (its ``pooled`` and noisy baseline)."""
    pooled = report.get("pooled") or {}
    noisy = ((report.get("baselines") or {}).get("noisy") or {}).get("pooled") or {}
    return output_warnings(pooled.get("corr"), pooled.get("mse"), noisy.get("mse"),
                           noisy.get("corr"))


def image_warnings(denoised: np.ndarray, clean: np.ndarray,
                   noisy: np.ndarray | None = None) -> list[str]:
    """Return the :func:`output_warnings` of one denoised image against its clean target.

    This is for views that hold the images, like the napari widgets.

    Parameters
    ----------
    denoised, clean
        The denoiser's output and its clean target, of one shape.
    noisy
        The noisy input, when given: its own scores are the baseline the output must beat.

    Returns
    -------
    list of str
        The warnings, empty when the output looks sound.
    """
    model = compare(denoised, clean)
    base = compare(noisy, clean) if noisy is not None else {}
    return output_warnings(model["corr"], model["mse"], base.get("mse"), base.get("corr"))


def val_rise_warning(val_losses: Sequence[float | None], epochs: int = VAL_RISE_EPOCHS,
                     margin: float = VAL_RISE_MARGIN) -> str | None:
    """Return a warning when the validation loss has risen for ``epochs`` epochs, beyond noise.

    It fires once per streak, at the epoch where the streak of rises reaches ``epochs``, and only
    if the rise is larger than the epoch-to-epoch noise of the validation loss: the loss over the
    streak and the loss above the best earlier epoch must both exceed ``margin`` times the
    standard deviation of a difference of two epochs' losses. That noise is read from the
    curve's second differences (robustly: their median absolute value), which a steady trend
    leaves at zero. A small validation set gives a jittery curve on which three rises in a row
    are common (the old rule, rises alone, fired 5-8 times in such runs); a run that diverges or
    overfits rises steadily and is flagged.

    Parameters
    ----------
    val_losses
        The validation losses of every epoch so far, oldest first; None where an epoch had none.
    epochs
        The length of the streak of rises that warns.
    margin
        How many standard deviations of epoch-to-epoch noise the rise must exceed.

    Returns
    -------
    str or None
        The warning, or None.
    """
    values = [v for v in val_losses if v is not None and math.isfinite(v)]
    streak = 0
    for before, after in zip(values, values[1:], strict=False):
        streak = streak + 1 if after > before else 0
    if streak != epochs:
        return None
    threshold = margin * _epoch_noise(values)
    rise, above_best = values[-1] - values[-1 - epochs], values[-1] - min(values[:-1])
    if rise <= threshold or above_best <= threshold:
        return None
    tail = " → ".join(f"{v:.6g}" for v in values[-epochs - 1:])
    return (f"validation loss rose for {epochs} consecutive epochs ({tail}), more than its "
            "epoch-to-epoch noise: overfitting, a too-high learning rate, or scrambled "
            "weights; best.safetensors keeps the best epoch")


def _epoch_noise(values: Sequence[float]) -> float:
    """Return the deviation of a difference of two epochs' losses, from the second differences.

    For losses ``trend + e`` with independent ``e`` of deviation σ and a trend straight over
    three epochs, a second difference has deviation σ·√6; its median absolute value is
    0.6745 of that. A difference of two losses has deviation σ·√2. Zero with fewer than three
    values.
    """
    second = np.diff(np.asarray(values, np.float64), 2)
    if second.size == 0:
        return 0.0
    sigma = float(np.median(np.abs(second))) / 0.6745 / math.sqrt(6)
    return sigma * math.sqrt(2)


def resume_warning(recorded: float | None, measured: float | None,
                   tolerance: float = RESUME_TOLERANCE) -> str | None:
    """Return a warning when loaded weights score worse than the loss recorded with them.

    Parameters
    ----------
    recorded
        The validation loss in the checkpoint's metadata.
    measured
        The loss of the loaded weights on the current validation set.
    tolerance
        Relative excess of ``measured`` over ``recorded`` beyond which the weights are not the
        ones that earned the record.

    Returns
    -------
    str or None
        The warning, or None (also when either loss is unknown).
    """
    if recorded is None or measured is None or not math.isfinite(recorded):
        return None
    if math.isfinite(measured) and measured <= recorded * (1.0 + tolerance):
        return None
    return (f"the loaded weights give val loss {measured:.6g}, worse than the {recorded:.6g} "
            f"recorded with them (> {tolerance:.0%}): scrambled or mismatched weights, or a "
            "different validation set")


def format_warnings(warnings: Sequence[str]) -> str:
    """Format the warnings as loud lines for a terminal: a banner, then ``warning: …`` per item.

    No warnings give an empty string.
    """
    if not warnings:
        return ""
    bar = "!" * 78
    lines = [bar, "!! THIS MODEL LOOKS BROKEN — do not trust its output", bar]
    lines += [f"warning: {w}" for w in warnings]
    return "\n".join([*lines, bar])
