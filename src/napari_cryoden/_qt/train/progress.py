"""The Train widget's progress bar and status line: steps done, ETA, and how a run ended."""

from __future__ import annotations

import time
from typing import Any

from qtpy.QtWidgets import QLabel, QProgressBar

__all__ = ["RunProgress"]


class RunProgress:
    """Counts a run's steps into a progress bar (with an ETA) and words its start and end.

    Parameters
    ----------
    bar
        The progress bar: busy until the run starts, then steps done of the run's total.
    status
        The status line.
    """

    def __init__(self, bar: QProgressBar, status: QLabel) -> None:
        self.bar, self.status = bar, status
        self.start_event: Any = None  # TrainStart
        self.last: Any = None  # the last TrainStep
        self._t0, self._done, self._total = 0.0, 0, 0

    def busy(self, text: str) -> None:
        """Show a busy bar and ``text`` until the run's start is known."""
        self.bar.setRange(0, 0)
        self.status.setText(text)

    def start(self, event: Any) -> None:
        """Take the run's ``TrainStart``: the total steps and what trains on what."""
        self.start_event, self.last = event, None
        self._t0, self._done = time.monotonic(), 0
        self._total = max(event.epochs - event.first_epoch + 1, 0) * event.steps_per_epoch
        self.bar.setRange(0, max(self._total, 1))
        where = (event.device if event.world_size == 1
                 else f"{event.world_size} processes × {event.device}")
        self.status.setText(f"Training on {where}: {event.n_train_patches} training / "
                            f"{event.n_val_patches} validation patches, "
                            f"{event.steps_per_epoch} steps per epoch.")

    def step(self, event: Any) -> None:
        """Count one ``TrainStep``."""
        self._done += 1
        self.last = event

    def update(self) -> None:
        """Show the steps done, the epoch and step, and the ETA."""
        if self.last is None:
            return
        done, total, step = self._done, self._total, self.last
        eta = (time.monotonic() - self._t0) / done * max(total - done, 0)
        self.bar.setValue(min(done, total))
        self.bar.setFormat(f"epoch {step.epoch}/{self.start_event.epochs} · step {step.step}/"
                           f"{step.steps_per_epoch} · ETA {clock(eta)}")

    def finish(self, outcome: str) -> None:
        """Word how the run ended (``"finished"``, ``"stopped"`` or ``"failed"``) in the bar."""
        if self.bar.maximum() == 0:  # never left "busy": failed while preparing
            self.bar.setRange(0, 1)
        text = outcome
        if self.last is not None and outcome != "failed":
            text += f" in epoch {self.last.epoch}/{self.start_event.epochs}"
        self.bar.setFormat(text)


def clock(seconds: float) -> str:
    """Format a duration as ``m:ss`` or ``h:mm:ss``.

    Parameters
    ----------
    seconds
        The duration.

    Returns
    -------
    str
        E.g. ``"4:05"`` or ``"1:02:03"``.
    """
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
