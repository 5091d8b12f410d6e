"""What a training run writes and reads back: checkpoints, ``history.json``, resume state.

:class:`Record` is what a run has done so far (history, best score, where it resumes);
:class:`Checkpointer` writes it with the weights (rank 0 only) and restores it from
``last.safetensors`` and ``history.json`` on resume.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config.sections import Config
from ..devices import device_name
from ..errors import InputError, SaveError
from ..models.checkpoint import (
    atomic_write_bytes,
    load_checkpoint,
    load_extra_tensors,
    save_checkpoint,
)
from .distributed import World
from .events import CheckpointSaved, Event, TrainWarning
from .init_weights import load_init_weights
from .schedules import Schedule
from .setup import Engine

__all__ = ["Checkpointer", "Record"]


@dataclass
class Record:
    """What a run has done so far: its history, best score and where it goes on.

    ``history`` is what ``history.json`` holds: ``config``, ``epochs``, ``steps`` and
    ``warnings`` (plus a summary written with it).
    """

    history: dict[str, Any]
    best_loss: float | None = None
    best_epoch: int | None = None
    first_epoch: int = 1
    global_step: int = 0
    pending: list[TrainWarning] = field(default_factory=list)  # yielded after TrainStart

    @classmethod
    def new(cls, config: Config) -> Record:
        """Return the record of a run that has not started.

        Parameters
        ----------
        config
            The run's configuration, recorded in the history.

        Returns
        -------
        Record
            Empty epochs, steps and warnings.
        """
        return cls({"config": config.to_dict(), "epochs": [], "steps": [], "warnings": []})

    def warn(self, epoch: int, message: str) -> TrainWarning:
        """Record a warning in the history and return its event.

        Parameters
        ----------
        epoch
            The epoch it concerns.
        message
            One line for the user.

        Returns
        -------
        TrainWarning
            The event to yield.
        """
        self.history["warnings"].append({"epoch": epoch, "message": message})
        return TrainWarning(epoch=epoch, message=message)

    def keep_until(self, done: int) -> None:
        """Drop what the history holds of epochs after ``done`` (a resumed run redoes them)."""
        self.history["epochs"] = [e for e in self.history["epochs"] if e["epoch"] <= done]
        self.history["steps"] = [s for s in self.history["steps"] if s["epoch"] <= done]
        self.history["warnings"] = [w for w in self.history.get("warnings", [])
                                    if w["epoch"] <= done]
        self.first_epoch = done + 1
        self.global_step = (self.history["steps"][-1]["global_step"]
                            if self.history["steps"] else 0)


@dataclass
class Checkpointer:
    """Writes a run's checkpoints and history into ``run_dir``, and reads them back."""

    run_dir: Path
    config: Config
    world: World
    engine: Engine
    schedule: Schedule
    record: Record
    pixel_size_range: tuple[float, float] | None = None  # Å, from the training data's headers
    init: dict[str, str] | None = None  # the model train.init loaded (InitModel.record)
    gaussian_baseline: dict[str, Any] | None = None  # width chosen on the validation set

    def save(self, name: str, epoch: int, *, with_optimizer: bool,
             stopped: bool = False) -> Path:
        """Write a checkpoint and the history (rank 0 only).

        Parameters
        ----------
        name
            ``best.safetensors`` or ``last.safetensors``.
        epoch
            The epoch the weights are from.
        with_optimizer
            Also save the optimizer and schedule state (for resuming).
        stopped
            Training was asked to stop.

        Returns
        -------
        Path
            The checkpoint's path (also on other ranks, which write nothing).
        """
        if not self.world.is_main:
            return self.run_dir / name
        record, engine = self.record, self.engine
        epochs = record.history["epochs"]
        done: dict[str, Any] = next((e for e in epochs if e["epoch"] == epoch), {})
        extra = _optimizer_tensors(engine.optimizer) if with_optimizer else None
        resume_state = {"schedule": self.schedule.state()} if with_optimizer else {}
        path = save_checkpoint(
            self.run_dir / name, engine.model, self.config, extra_tensors=extra,
            epoch=epoch, train_loss=done.get("train_loss"), val_loss=done.get("val_loss"),
            val_mse=done.get("val_mse"), best_epoch=record.best_epoch,
            best_val_loss=record.best_loss, stopped=stopped,
            pixel_size_range=self.pixel_size_range,
            **({} if self.init is None else {"init": self.init}),
            **({} if self.gaussian_baseline is None
               else {"gaussian_baseline": self.gaussian_baseline}),
            epochs=[{k: e[k] for k in ("epoch", "train_loss", "val_loss", "val_mse")}
                    for e in epochs],
            **resume_state,
        )
        self.write_history(stopped)
        return path

    def save_best(self, epoch: int,
                  previous_best: tuple[float | None, int | None]) -> Iterator[Event]:
        """Save the best weights; on a failed save keep the previous best (intact on disk).

        Parameters
        ----------
        epoch
            The new best epoch.
        previous_best
            ``(best_loss, best_epoch)`` before it, restored when the save fails.

        Yields
        ------
        Event
            :class:`CheckpointSaved`, or a :class:`TrainWarning` when the save failed before
            the last epoch (at the last epoch the :class:`SaveError` propagates).
        """
        try:
            path = self.save("best.safetensors", epoch, with_optimizer=False)
            yield CheckpointSaved(epoch=epoch, kind="best", path=path)
        except SaveError as exc:  # e.g. disk full: the old best is intact on disk
            self.record.best_loss, self.record.best_epoch = previous_best
            if epoch == self.config.train.epochs:
                raise
            yield self.record.warn(epoch, f"{exc}; training goes on and saves again")

    def save_last(self, epoch: int, *, stopped: bool) -> Iterator[Event]:
        """Save the last weights with the optimizer state (for resuming).

        Yields
        ------
        CheckpointSaved
            The last checkpoint was written.
        """
        path = self.save("last.safetensors", epoch, with_optimizer=True, stopped=stopped)
        yield CheckpointSaved(epoch=epoch, kind="last", path=path)

    def write_history(self, stopped: bool) -> None:
        """Write ``history.json`` with a summary of the run (NaN/Inf become null)."""
        engine, world = self.engine, self.world
        self.record.history.update(
            best_epoch=self.record.best_epoch, best_val_loss=self.record.best_loss,
            device=device_name(engine.device), stopped=stopped, world_size=world.world_size,
            global_batch_size=world.world_size * engine.batch_size,
            batch_size=engine.batch_size, precision=engine.precision_text())
        text = json.dumps(self.record.history, indent=1, allow_nan=False, default=_json_default)
        atomic_write_bytes(self.run_dir / "history.json", text.encode())

    def start_from_init(self) -> None:
        """Load the weights of ``train.init`` into the model and record where they came from."""
        init = load_init_weights(self.engine.model, self.config).record()
        self.init = self.record.history["init"] = init

    def restore(self) -> tuple[int, float | None]:
        """Load weights, optimizer, schedule and history of ``run_dir/last.safetensors``.

        Returns
        -------
        tuple
            The epochs done and the validation loss recorded with the weights (or None).

        Raises
        ------
        InputError
            The checkpoint's model differs from the configured one.
        """
        last = self.run_dir / "last.safetensors"
        engine, record = self.engine, self.record
        model, ckpt = load_checkpoint(last, device=engine.device)
        if ckpt.config.model != self.config.model:
            raise InputError(f"{last}: its model ({ckpt.config.model}) differs from the "
                             f"requested one ({self.config.model})")
        engine.model.load_state_dict(model.state_dict())
        _load_optimizer_state(engine.optimizer, load_extra_tensors(last), engine.device)
        history_path = self.run_dir / "history.json"
        if history_path.exists():
            record.history = json.loads(history_path.read_text())
            record.history["config"] = self.config.to_dict()
        done = int(ckpt.metadata.get("epoch") or 0)
        record.keep_until(done)
        self.schedule.load_state(ckpt.metadata.get("schedule"), record.global_step)
        record.best_epoch = ckpt.metadata.get("best_epoch")
        self.init = ckpt.metadata.get("init")  # what the run started from, if not random
        record.best_loss = ckpt.metadata.get("best_val_loss")
        return done, ckpt.metadata.get("val_loss")


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Adam's per-parameter state as flat named tensors (safetensors holds no pickles)."""
    out: dict[str, torch.Tensor] = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(float(value))
            out[f"optim.{index}.{key}"] = tensor.float() if key == "step" else tensor
    return out


def _load_optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                          device: torch.device) -> None:
    """Put the tensors of :func:`_optimizer_tensors` back into ``optimizer``."""
    state_dict = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        prefix, index, key = name.split(".", 2)
        if prefix == "optim":
            state.setdefault(int(index), {})[key] = tensor if key == "step" else tensor.to(device)
    state_dict["state"] = state
    optimizer.load_state_dict(state_dict)
