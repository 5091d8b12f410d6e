"""The progress events of training: small frozen dataclasses the CLI and the GUI consume.

:func:`napari_cryoden.training.train` yields them in this order: one :class:`TrainStart`, then
per epoch many :class:`TrainStep`, one :class:`EpochEnd` and one or two :class:`CheckpointSaved`,
and finally one :class:`TrainEnd`. A :class:`TrainWarning` may come after an :class:`EpochEnd`,
after a step that ran out of memory, or right after :class:`TrainStart` (when resuming, or when a
packed store's patch size replaces the configured one); consumers that do not know it may ignore
it. ``napari_cryoden.training`` exports the event classes too; this module is their home.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["TrainStart", "TrainStep", "EpochEnd", "CheckpointSaved", "TrainWarning", "TrainEnd",
           "Event", "to_dict", "from_dict", "to_json_line", "from_json_line"]


@dataclass(frozen=True)
class TrainStart:
    """Sent once before the first step.

    With several processes ``n_train_patches`` counts all ranks' patches per epoch, and
    ``n_dropped_patches`` the (< ``world_size``) patches left out so that ranks step together.
    """

    device: str
    epochs: int
    first_epoch: int
    steps_per_epoch: int
    n_train_patches: int
    n_val_patches: int
    run_dir: Path
    world_size: int = 1
    n_dropped_patches: int = 0
    batch_size: int = 0
    precision: str = "fp32"


@dataclass(frozen=True)
class TrainStep:
    """One optimisation step; ``loss`` is the batch's MSE in normalised units.

    With several processes the batch is the union of the ranks' batches: ``loss`` is its mean
    and ``patches_per_s`` counts every rank's patches.
    """

    epoch: int
    step: int
    steps_per_epoch: int
    global_step: int
    loss: float
    patches_per_s: float


@dataclass(frozen=True)
class EpochEnd:
    """An epoch finished. ``val_mse`` is in raw intensity units, comparable to evaluation MSE.

    Training without clean targets (``n2n``, ``n2v``) validates against noisy targets (the
    held-out partner, or the blind spots); ``clean_val_loss``/``clean_val_mse`` are the scores
    on a clean validation set when one was given, else None.
    """

    epoch: int
    train_loss: float
    val_loss: float | None
    val_mse: float | None
    is_best: bool
    seconds: float
    clean_val_loss: float | None = None
    clean_val_mse: float | None = None

    def describe(self) -> str:
        """One line in the seed's words, e.g. ``Epoch 3: Train Loss 0.007008, Val Loss …``."""
        val = "n/a" if self.val_loss is None else f"{self.val_loss:.6f}"
        clean = ("" if self.clean_val_loss is None
                 else f", Clean Val Loss {self.clean_val_loss:.6f}")
        best = "  New best!" if self.is_best else ""
        return (f"Epoch {self.epoch}: Train Loss {self.train_loss:.6f}, Val Loss {val}{clean} "
                f"({self.seconds:.1f} s){best}")


@dataclass(frozen=True)
class CheckpointSaved:
    """A weight file was written (``kind`` is ``"best"`` or ``"last"``)."""

    epoch: int
    kind: str
    path: Path


@dataclass(frozen=True)
class TrainWarning:
    """Something looks wrong (see :mod:`napari_cryoden.evaluation.guards`).

    The validation loss rose for several epochs, or resumed weights score worse than recorded.
    ``epoch`` is the epoch it concerns (the resumed one for the latter); ``message`` is one line
    for the user.
    """

    epoch: int
    message: str


@dataclass(frozen=True)
class TrainEnd:
    """Training ended, either after the last epoch or because it was asked to stop.

    The only event that ranks other than 0 yield; ``rank`` says whose it is.
    """

    epochs_completed: int
    best_epoch: int | None
    best_val_loss: float | None
    stopped: bool
    run_dir: Path
    rank: int = 0

    def describe(self) -> str:
        """One line: how training ended and where the best checkpoint is."""
        state = "Stopped" if self.stopped else "Finished"
        if self.best_epoch is None:
            return f"{state} after {self.epochs_completed} epoch(s); no checkpoint yet"
        return (f"{state} after {self.epochs_completed} epoch(s); best epoch {self.best_epoch} "
                f"(loss {self.best_val_loss:.6f}) in {self.run_dir / 'best.safetensors'}")


Event = TrainStart | TrainStep | EpochEnd | CheckpointSaved | TrainWarning | TrainEnd


_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    TrainStart, TrainStep, EpochEnd, CheckpointSaved, TrainWarning, TrainEnd)}


def to_dict(event: Event) -> dict[str, Any]:
    """``event`` as a JSON-safe dict: ``{"event": "TrainStep", <its fields>}``.

    Paths become strings and NaN/Inf floats become None (JSON ``null``).
    """
    out: dict[str, Any] = {"event": type(event).__name__}
    for f in fields(event):
        value = getattr(event, f.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, float) and not math.isfinite(value):
            value = None
        out[f.name] = value
    return out


def from_dict(data: dict[str, Any]) -> Event:
    """Rebuild the event that :func:`to_dict` gave ``data`` for; unknown keys are ignored.

    Raises ``ValueError`` for an unknown ``"event"`` name or a missing field. A ``null`` where
    the event needs a float (e.g. a NaN loss) becomes NaN again.
    """
    cls = _TYPES.get(str(data.get("event")))
    if cls is None:
        raise ValueError(f"not a training event: {data.get('event')!r}")
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue  # fields with defaults may be absent (an older writer)
        value = data[f.name]
        if f.type == "Path":
            value = Path(value)
        elif f.type == "float" and value is None:
            value = math.nan
        values[f.name] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise ValueError(f"{cls.__name__}: {exc}") from None


def to_json_line(event: Event) -> str:
    """One line of JSON (ending in a newline) for ``event``: the ``--events`` file format."""
    return json.dumps(to_dict(event), allow_nan=False) + "\n"


def from_json_line(line: str) -> Event:
    """Parse one ``--events`` line into its event (data only: read with :func:`json.loads`).

    Raises ``ValueError`` for a line that is not such an event.
    """
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("an events line must be a JSON object")
    return from_dict(data)
