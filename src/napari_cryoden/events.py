"""The progress events of training: small frozen dataclasses the CLI and the GUI consume.

:func:`napari_cryoden.training.train` yields them in this order: one :class:`TrainStart`, then
per epoch many :class:`TrainStep`, one :class:`EpochEnd` and one or two :class:`CheckpointSaved`,
and finally one :class:`TrainEnd`. A :class:`TrainWarning` may come after an :class:`EpochEnd` or,
when resuming, right after :class:`TrainStart`; consumers that do not know it may ignore it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["TrainStart", "TrainStep", "EpochEnd", "CheckpointSaved", "TrainWarning", "TrainEnd",
           "Event"]


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
    """Something looks wrong (see :mod:`napari_cryoden.guards`): the validation loss rose for
    several epochs, or resumed weights score worse than recorded. ``epoch`` is the epoch it
    concerns (the resumed one for the latter); ``message`` is one line for the user."""

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
