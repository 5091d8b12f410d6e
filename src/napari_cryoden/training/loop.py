"""Training as a generator of small progress events; the CLI and the napari worker iterate it.

``train`` streams patches from disk (:class:`~napari_cryoden.data.stream.PatchStream`), steps
Adam on the MSE loss, validates after each epoch, and writes into the run folder:

- ``best.safetensors`` on a new best validation loss (the seed's "✓ Saved / New best!"),
- ``last.safetensors`` after every epoch and on stop (with the optimizer state, for resuming),
- ``history.json`` with every epoch's and every step's loss (and any ``warnings``).

Scramble guards (:mod:`napari_cryoden.evaluation.guards`) yield a :class:`TrainWarning` when the
validation loss rose for 3 consecutive epochs by more than its epoch-to-epoch noise, and, on
resume, when the loaded weights score more than 20 % worse on the validation set than the loss
recorded with them.

Setting the ``stop`` event (or closing the generator) ends training at the next step; the
history and the last weights are saved first, the best checkpoint is never touched by a stop.

Started by ``torchrun`` (``WORLD_SIZE > 1``), ``train`` runs data-parallel
(:mod:`~napari_cryoden.training.distributed`): each rank streams its shard of every epoch,
gradients and losses are averaged over ranks, and only rank 0 writes files and yields progress
events; the other ranks yield only :class:`TrainEnd`. See docs/distributed.md.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import torch

from ..config.sections import Config
from ..data.batches import Batch
from ..data.packed import Packed
from ..devices import device_name, resolve_device
from ..errors import InputError, SaveError
from ..evaluation.guards import resume_warning, val_rise_warning
from ..evaluation.report import validation_gaussian
from . import distributed
from .checkpointing import Checkpointer, Record
from .distributed import World
from .events import EpochEnd, Event, TrainEnd, TrainStart, TrainStep
from .modes import ModeBatches
from .pixel_range import training_pixel_range
from .schedules import Schedule
from .setup import Data, Engine, Stream, open_streams, store_patch_size_note
from .validation import validate

__all__ = ["Data", "train"]


def train(
    config: Config,
    train_pairs: Data,
    val_pairs: Data | None,
    run_dir: str | Path,
    *,
    stop: threading.Event | None = None,
    resume: bool = False,
    clean_val_pairs: Data | None = None,
) -> Generator[Event, None, None]:
    """Train the model of ``config`` on noisy→clean pairs, yielding progress events.

    With ``config.train.mode`` ``n2n`` the pairs are (even, odd) halves of each exposure, with
    ``n2v`` (noisy, noisy): each file paired with itself (see :mod:`napari_cryoden.training.modes`).

    Parameters
    ----------
    config
        The run's configuration (model, data, train sections).
    train_pairs, val_pairs
        ``(noisy, clean)`` file pairs, or :class:`Packed` patches of a store (then the store's
        patch size replaces ``config.data.patch_size``, with a :class:`TrainWarning` when they
        differ); ``val_pairs`` may be empty or None (then the best checkpoint is chosen by
        training loss, and ``val_loss`` is ``None``).
    run_dir
        Folder for ``best.safetensors``, ``last.safetensors`` and ``history.json``.
    stop
        When set, training ends at the next step (after saving history and last weights). With
        several processes a stop set on any rank stops all of them at the same step.
    resume
        Continue from ``run_dir/last.safetensors``: weights, optimizer state, epoch count and
        history. Its config's model must match ``config``'s. Every rank loads it. It takes
        precedence over ``config.train.init``, which only a new run loads
        (:mod:`~napari_cryoden.training.init_weights`).
    clean_val_pairs
        ``n2n``/``n2v`` only: (noisy, clean) pairs with clean targets. Each epoch's model is also
        scored on them (``clean_val_loss``, ``clean_val_mse`` in the history and in
        :class:`EpochEnd`); the best checkpoint is still chosen by ``val_loss``.
    """
    note = store_patch_size_note(config, train_pairs)
    if isinstance(train_pairs, Packed):
        config = config.replace(data={"patch_size": train_pairs.store.patch_size})
    world = distributed.join(resolve_device(config.train.device))
    run: _Run | None = None
    try:
        run = _Run(config, train_pairs, val_pairs, Path(run_dir), stop or threading.Event(),
                   world, clean_val_pairs)
        if resume:  # the run's own last weights win over train.init
            run.restore()
        elif config.train.init:
            run.files.start_from_init()
        if note is not None:
            run.record.pending.insert(0, run.record.warn(run.record.first_epoch - 1, note))
        for event in run.events():
            if world.is_main or isinstance(event, TrainEnd):
                yield event
    finally:
        if run is not None:
            run.engine.net = run.engine.model  # drop DDP, which holds the process group
        del run
        distributed.leave(world)


class _Run:
    """State of one training run; ``events()`` drives it."""

    def __init__(self, config: Config, train_pairs: Data, val_pairs: Data | None, run_dir: Path,
                 stop: threading.Event, world: World, clean_val: Data | None = None) -> None:
        if not len(train_pairs):
            raise InputError("no training micrographs: the noisy/clean folders gave no pairs")
        if clean_val is not None and config.train.mode == "n2c":
            raise InputError("a clean validation set is for training without clean targets "
                             "(mode n2n or n2v); with n2c use the validation pairs")
        self.config, self.stop, self.run_dir, self.world = config, stop, run_dir, world
        if world.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
        self.modes = ModeBatches(config.train, world.device, world.rank)
        self.engine = Engine.build(config, world, self.modes)
        self.model = self.engine.model
        self._update = self.engine.make_update()
        streams = open_streams(config, self.engine, world, train_pairs, val_pairs, clean_val)
        self.train_stream, self.val_stream = streams.train, streams.val
        self.clean_val_stream = streams.clean_val
        self.schedule = Schedule(config.train, self.engine.optimizer, len(self.train_stream))
        self.record = Record.new(config)
        self.files = Checkpointer(run_dir, config, world, self.engine, self.schedule,
                                  self.record, training_pixel_range(train_pairs))
        if world.is_main:  # the evaluation's Gaussian baseline, chosen on the validation set
            targets = val_pairs if config.train.mode == "n2c" else clean_val
            self.files.gaussian_baseline = validation_gaussian(targets)

    def restore(self) -> None:
        """Continue from ``last.safetensors``; check the weights score as recorded."""
        done, recorded = self.files.restore()
        if self.val_stream is None or recorded is None:
            return
        measured, _ = self._validate()
        message = resume_warning(recorded, measured)
        if message is not None:
            self.record.pending.append(self.record.warn(done, message))

    # -- the loop ---------------------------------------------------------------------------
    def events(self) -> Generator[Event, None, None]:
        """Train epoch by epoch, yielding progress events; save last weights when stopped."""
        epochs, record, engine = self.config.train.epochs, self.record, self.engine
        yield TrainStart(device=device_name(engine.device), epochs=epochs,
                         first_epoch=record.first_epoch, steps_per_epoch=len(self.train_stream),
                         n_train_patches=self.train_stream.n_patches_all_ranks,
                         n_val_patches=(self.val_stream.n_patches_all_ranks
                                        if self.val_stream else 0),
                         run_dir=self.run_dir, world_size=self.world.world_size,
                         n_dropped_patches=self.train_stream.n_dropped,
                         batch_size=engine.batch_size, precision=engine.precision_text())
        yield from record.pending
        completed = record.first_epoch - 1
        stopped = False
        try:
            for epoch in range(record.first_epoch, epochs + 1):
                start = time.perf_counter()
                train_loss = yield from self._train_epoch(epoch)
                if train_loss is None:
                    stopped = True
                    break
                val_loss, val_mse = self._validate()
                self.schedule.end_epoch(train_loss if val_loss is None else val_loss)
                completed = epoch
                yield from self._end_epoch(epoch, train_loss, val_loss, val_mse,
                                           time.perf_counter() - start)
        except (GeneratorExit, KeyboardInterrupt):  # closed by the consumer (napari worker.quit(),
            # Ctrl-C in the CLI between steps) or Ctrl-C inside a step (every rank under torchrun)
            self.files.save("last.safetensors", completed, with_optimizer=True, stopped=True)
            raise
        if stopped:
            yield from self.files.save_last(completed, stopped=True)
        distributed.save_rank_weights(self.model, self.world)
        yield TrainEnd(epochs_completed=completed, best_epoch=record.best_epoch,
                       best_val_loss=record.best_loss, stopped=stopped, run_dir=self.run_dir,
                       rank=self.world.rank)

    def _train_epoch(self, epoch: int) -> Generator[Event, None, float | None]:
        """Yield steps; return the epoch's mean loss, or None when stopped."""
        self.model.train()
        self.train_stream.set_epoch(epoch - 1)
        record = self.record
        total, count, tick = 0.0, 0, time.perf_counter()
        with closing(iter(self.train_stream)) as batches:
            for step, batch in enumerate(batches, start=1):
                if self._stop_requested():
                    return None
                loss, n = yield from self._step_or_back_off(epoch, batch)
                record.global_step += 1
                self.schedule.after_step()
                total += loss * n
                count += n
                now = time.perf_counter()
                rate = n / max(now - tick, 1e-9)
                tick = now
                record.history["steps"].append({"epoch": epoch, "step": step,
                                                "global_step": record.global_step, "loss": loss})
                yield TrainStep(epoch=epoch, step=step, steps_per_epoch=len(self.train_stream),
                                global_step=record.global_step, loss=loss, patches_per_s=rate)
        if self._stop_requested():
            return None
        return total / max(count, 1)

    def _stop_requested(self) -> bool:
        """Read the stop flag, agreed by all ranks (one tiny all-reduce per step if distributed)."""
        return distributed.any_rank(self.stop.is_set(), self.world)

    def _step_or_back_off(self, epoch: int,
                          batch: Batch) -> Generator[Event, None, tuple[float, int]]:
        """Run :meth:`_step`, halving the micro-batches on out-of-memory.

        On out-of-memory, split batches into twice as many micro-batches (the same update, less
        memory) with a warning and redo the step. Returns its (loss, n).
        """
        while True:
            try:
                return self._step(batch)
            except torch.cuda.OutOfMemoryError:
                pass  # handled outside the except block, so the failed step's tensors are freed
            message = self.engine.split_batches(batch.noisy.shape[0], batch.noisy.shape[-1])
            self._update = self.engine.make_update()
            yield self.record.warn(epoch, message)

    def _step(self, batch: Batch) -> tuple[float, int]:
        """One update; returns the mean loss and the patch count of the (global) batch."""
        result: list[Any] = []

        def check(loss: torch.Tensor) -> None:  # after backward, before the update
            n = batch.noisy.shape[0]
            if self.world.enabled:  # DDP averaged the gradients over ranks in backward
                loss_sum, count = distributed.all_sum([loss.double() * n, n], self.world)
                mean, n = loss_sum / count, int(count)
            else:
                mean = float(loss)
            if not math.isfinite(mean):  # on every rank alike
                raise FloatingPointError(
                    "training loss became NaN/Inf: lower --lr or use --normalization meanstd")
            result[:] = [mean, n]

        x, y, mask = self.modes.training(batch.noisy, batch.clean, self.record.global_step)
        self._update(x, y, before_update=check, **({} if mask is None else {"mask": mask}))
        return result[0], result[1]

    def _validate(self, stream: Stream | None = None, *,
                  clean: bool = False) -> tuple[float | None, float | None]:
        """Return (loss, raw MSE) on the validation stream, the mode's way.

        n2n scores against the held-out partner, n2v at fixed blind spots; ``clean``: plain
        noisy→clean on ``stream``.
        """
        stream = stream if clean else self.val_stream
        if stream is None:
            return None, None
        return validate(self.engine, stream, None if clean else self.modes, self.world)

    def _end_epoch(self, epoch: int, train_loss: float, val_loss: float | None,
                   val_mse: float | None, seconds: float) -> Iterator[Event]:
        """Record the epoch, yield its end, warn of a rising loss and save the checkpoints."""
        record = self.record
        score = val_loss if val_loss is not None else train_loss
        is_best = record.best_loss is None or score < record.best_loss
        previous_best = record.best_loss, record.best_epoch
        if is_best:
            record.best_loss, record.best_epoch = score, epoch
        clean_loss, clean_mse = (self._validate(self.clean_val_stream, clean=True)
                                 if self.clean_val_stream is not None else (None, None))
        record.history["epochs"].append({"epoch": epoch, "train_loss": train_loss,
                                         "val_loss": val_loss, "val_mse": val_mse,
                                         "seconds": seconds, "best": is_best,
                                         "lr": self.schedule.lr})
        if self.modes.mode != "n2c":  # n2n/n2v: val_loss is against noisy targets
            record.history["epochs"][-1].update(clean_val_loss=clean_loss,
                                                clean_val_mse=clean_mse)
        yield EpochEnd(epoch=epoch, train_loss=train_loss, val_loss=val_loss, val_mse=val_mse,
                       is_best=is_best, seconds=seconds, clean_val_loss=clean_loss,
                       clean_val_mse=clean_mse)
        rise = val_rise_warning([e["val_loss"] for e in record.history["epochs"]])
        if rise is not None:
            yield record.warn(epoch, rise)
        if is_best:
            yield from self.files.save_best(epoch, previous_best)
        try:
            yield from self.files.save_last(epoch, stopped=False)
        except SaveError as exc:
            if epoch == self.config.train.epochs:
                raise
            yield record.warn(epoch, f"{exc}; training goes on and saves again")
