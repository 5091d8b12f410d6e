"""Learning-rate schedules of a training run (``TrainConfig.schedule``).

- ``constant``: Adam at ``lr`` throughout (the seed's choice).
- ``cosine``: after every optimisation step the rate is set to
  ``lr · (1 + cos(π · t / T)) / 2``, ``t`` the steps done, ``T = epochs · steps_per_epoch``: it
  falls from ``lr`` to 0 at the run's last step. A closed form of ``t``, so a resumed run lands on
  the same rates as an uninterrupted one.
- ``plateau``: at the end of each epoch the validation loss (the training loss without
  validation) is compared with the best so far (as ``torch.optim.lr_scheduler.ReduceLROnPlateau``,
  mode ``min``, relative threshold 1e-4); after more than ``plateau_patience`` epochs without a
  new best the rate is halved and the count restarts.

The state (steps done at the last epoch's end, the rate, the plateau's best and count) is a small
JSON object that ``training`` stores in ``last.safetensors``'s metadata under ``"schedule"`` and
hands back on resume (:meth:`Schedule.load_state`).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..config.sections import TrainConfig

__all__ = ["PLATEAU_FACTOR", "PLATEAU_THRESHOLD", "Schedule"]

PLATEAU_FACTOR = 0.5
"""The plateau schedule multiplies the rate by this when the loss stalls."""
PLATEAU_THRESHOLD = 1e-4
"""A loss counts as a new best when below ``best · (1 - PLATEAU_THRESHOLD)``."""


class Schedule:
    """Sets ``optimizer``'s learning rate as the run goes; see the module docstring.

    Call :meth:`after_step` after every optimisation step and :meth:`end_epoch` after every
    validation; :attr:`lr` is the rate the next step uses.
    """

    def __init__(self, config: TrainConfig, optimizer: torch.optim.Optimizer,
                 steps_per_epoch: int) -> None:
        self.kind, self.base_lr = config.schedule, config.lr
        self.patience = config.plateau_patience
        self.optimizer = optimizer
        self.total_steps = max(1, config.epochs * steps_per_epoch)
        self.step = 0  # optimisation steps done
        self.epoch_step = 0  # steps done when the last epoch ended (what a resume restarts from)
        self.best: float | None = None
        self.bad_epochs = 0
        self._set(self.base_lr)

    @property
    def lr(self) -> float:
        """The learning rate the next step uses."""
        return float(self.optimizer.param_groups[0]["lr"])

    def after_step(self) -> None:
        """One optimisation step was done."""
        self.step += 1
        if self.kind == "cosine":
            self._set(self._cosine(self.step))

    def end_epoch(self, loss: float) -> None:
        """Record that an epoch ended with this validation (or training) loss."""
        self.epoch_step = self.step
        if self.kind != "plateau" or not math.isfinite(loss):
            return
        if self.best is None or loss < self.best * (1.0 - PLATEAU_THRESHOLD):
            self.best, self.bad_epochs = loss, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self._set(self.lr * PLATEAU_FACTOR)
            self.bad_epochs = 0

    def state(self) -> dict[str, Any]:
        """JSON-able state as of the last epoch's end, for ``last.safetensors``."""
        lr = self._cosine(self.epoch_step) if self.kind == "cosine" else self.lr
        return {"kind": self.kind, "step": self.epoch_step, "lr": lr, "best": self.best,
                "bad_epochs": self.bad_epochs}

    def load_state(self, state: Any, steps_done: int) -> None:
        """Continue from a saved :meth:`state`.

        ``steps_done`` are the steps of the completed epochs. A state of another schedule (or
        none) starts this one at ``steps_done``, from ``lr``.
        """
        self.step = self.epoch_step = steps_done
        if isinstance(state, dict) and state.get("kind") == self.kind:
            self.step = self.epoch_step = _count(state.get("step"), steps_done)
            best = state.get("best")
            self.best = float(best) if isinstance(best, int | float) and _is_number(best) else None
            self.bad_epochs = _count(state.get("bad_epochs"), 0)
            if self.kind == "plateau" and _is_number(state.get("lr")) and state["lr"] >= 0:
                self._set(float(state["lr"]))
        if self.kind == "cosine":
            self._set(self._cosine(self.step))

    def _cosine(self, step: int) -> float:
        progress = min(step, self.total_steps) / self.total_steps
        return self.base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))

    def _set(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _count(value: Any, default: int) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else default
