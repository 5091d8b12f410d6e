"""Training as a generator of small progress events; the CLI and the napari worker iterate it.

``train`` streams patches from disk (:class:`~napari_cryoden.data.stream.PatchStream`), steps
Adam on the MSE loss, validates after each epoch, and writes into the run folder:

- ``best.safetensors`` on a new best validation loss (the seed's "✓ Saved / New best!"),
- ``last.safetensors`` after every epoch and on stop (with the optimizer state, for resuming),
- ``history.json`` with every epoch's and every step's loss (and any ``warnings``).

Scramble guards (:mod:`napari_cryoden.evaluation.guards`) yield a :class:`TrainWarning` when the
validation loss rose for 3 consecutive epochs, and, on resume, when the loaded weights score more
than 20 %
worse on the validation set than the loss recorded with them.

Setting the ``stop`` event (or closing the generator) ends training at the next step; the
history and the last weights are saved first, the best checkpoint is never touched by a stop.

Started by ``torchrun`` (``WORLD_SIZE > 1``), ``train`` runs data-parallel
(:mod:`~napari_cryoden.training.distributed`): each rank streams its shard of every epoch,
gradients and losses are averaged over ranks, and only rank 0 writes files and yields progress
events; the
other ranks yield only :class:`TrainEnd`. See docs/distributed.md.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config.sections import Config
from ..data.packed import PackedStore
from ..data.packed_stream import PackedStream
from ..data.stream import Batch, PatchStream
from ..devices import device_name, resolve_device
from ..errors import InputError, SaveError
from ..evaluation.guards import resume_warning, val_rise_warning
from ..models.checkpoint import (
    atomic_write_bytes,
    load_checkpoint,
    load_extra_tensors,
    save_checkpoint,
)
from ..models.nets import build_model
from . import distributed, steps
from .distributed import World
from .events import CheckpointSaved, EpochEnd, Event, TrainEnd, TrainStart, TrainStep, TrainWarning
from .modes import ModeBatches
from .schedules import Schedule

__all__ = [
    "Packed", "TrainStart", "TrainStep", "EpochEnd", "CheckpointSaved", "TrainWarning",
    "TrainEnd", "Event", "train",
]

Pairs = Sequence[tuple[Path, Path]]


@dataclass(frozen=True)
class Packed:
    """Patches of a packed store (``cryoden pack``) as a training or validation set.

    ``indices`` selects patches (e.g. one side of :meth:`PackedStore.split`); None: all of them.
    """

    store: PackedStore
    indices: np.ndarray | None = None

    def __len__(self) -> int:
        return self.store.count if self.indices is None else len(self.indices)


Data = Pairs | Packed


def train(
    config: Config,
    train_pairs: Data,
    val_pairs: Data | None,
    run_dir: str | Path,
    *,
    stop: threading.Event | None = None,
    resume: bool = False,
    clean_val_pairs: Data | None = None,
) -> Iterator[Event]:
    """Train the model of ``config`` on noisy→clean pairs, yielding progress events.

    With ``config.train.mode`` ``n2n`` the pairs are (even, odd) halves of each exposure, with
    ``n2v`` (noisy, noisy): each file paired with itself (see :mod:`napari_cryoden.training.modes`).

    Parameters
    ----------
    config
        The run's configuration (model, data, train sections).
    train_pairs, val_pairs
        ``(noisy, clean)`` file pairs, or :class:`Packed` patches of a store (then the store's
        patch size replaces ``config.data.patch_size``); ``val_pairs`` may be empty or None
        (then the best checkpoint is chosen by training loss, and ``val_loss`` is ``None``).
    run_dir
        Folder for ``best.safetensors``, ``last.safetensors`` and ``history.json``.
    stop
        When set, training ends at the next step (after saving history and last weights). With
        several processes a stop set on any rank stops all of them at the same step.
    resume
        Continue from ``run_dir/last.safetensors``: weights, optimizer state, epoch count and
        history. Its config's model must match ``config``'s. Every rank loads it.
    clean_val_pairs
        ``n2n``/``n2v`` only: (noisy, clean) pairs with clean targets. Each epoch's model is also
        scored on them (``clean_val_loss``, ``clean_val_mse`` in the history and in
        :class:`EpochEnd`); the best checkpoint is still chosen by ``val_loss``.
    """
    if isinstance(train_pairs, Packed):
        config = config.replace(data={"patch_size": train_pairs.store.patch_size})
    world = distributed.join(resolve_device(config.train.device))
    run: _Run | None = None
    try:
        run = _Run(config, train_pairs, val_pairs, Path(run_dir), stop or threading.Event(),
                   world, clean_val_pairs)
        if resume:
            run.restore()
        for event in run.events():
            if world.is_main or isinstance(event, TrainEnd):
                yield event
    finally:
        if run is not None:
            run.net = run.model  # drop DDP, which holds the process group, before leaving
        del run
        distributed.leave(world)


class _Run:
    """State of one training run; ``events()`` drives it."""

    def __init__(self, config: Config, train_pairs: Data, val_pairs: Data | None, run_dir: Path,
                 stop: threading.Event, world: World, clean_val: Data | None = None) -> None:
        if not len(train_pairs):
            raise InputError("no training micrographs: the noisy/clean folders gave no pairs")
        self.config, self.stop, self.run_dir, self.world = config, stop, run_dir, world
        if world.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
        tc, dc = config.train, config.data
        self.device = world.device
        self.precision = tc.effective_precision if self.device.type == "cuda" else "fp32"
        if self.device.type == "cuda":
            steps.prepare_cuda(self.precision)
        self.model = build_model(config.model, seed=tc.seed).to(self.device)
        self.modes = ModeBatches(tc, self.device, world.rank)
        if clean_val is not None and tc.mode == "n2c":
            raise InputError("a clean validation set is for training without clean targets "
                             "(mode n2n or n2v); with n2c use the validation pairs")
        self.fused = (not self.modes.masked
                      and tc.fused and self.precision == "fp16" and self.device.type == "cuda"
                      and not world.enabled and _fused_supported(self.model))
        if steps.uses_channels_last(self.precision, self.device) and not self.fused:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.net = distributed.wrap_model(self.model, world)  # DDP when several ranks
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=tc.lr)
        self.batch_size = tc.batch_size or steps.choose_batch_size(
            self.model, dc.crop or dc.patch_size, self.precision, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.chunks = 1  # micro-batches per step; doubled on each out-of-memory error
        self._update = self._make_update()
        self.train_stream = self._stream(train_pairs, shuffle=True)
        if self.train_stream.n_patches == 0:
            raise InputError(f"too few training patches ({self.train_stream.n_dropped}) for "
                             f"{world.world_size} processes: use fewer or a smaller --patch-size")
        self.schedule = Schedule(tc, self.optimizer, len(self.train_stream))
        self.val_stream = (self._stream(val_pairs, shuffle=False)
                           if val_pairs is not None and len(val_pairs) else None)
        self.clean_val_stream = (self._stream(clean_val, shuffle=False)
                                 if clean_val is not None and len(clean_val) else None)
        self.first_epoch = 1
        self.global_step = 0
        self.history: dict[str, Any] = {"config": config.to_dict(), "epochs": [], "steps": [],
                                        "warnings": []}
        self.best_loss: float | None = None
        self.best_epoch: int | None = None
        self.pending: list[TrainWarning] = []  # yielded right after TrainStart

    def _make_update(self) -> steps.Step:
        """The step function: the fused Triton kernels, or PyTorch's (also after an OOM)."""
        if self.fused and self.chunks == 1:
            from ..kernels.train import make_fused_step

            return make_fused_step(self.model, self.optimizer)
        return steps.make_step(self.net, self.optimizer, self.precision, self.scaler,
                               chunks=self.chunks)

    def _stream(self, data: Data, *, shuffle: bool) -> PatchStream | PackedStream:
        """Batches of ``data``: streamed from a packed store or cut from micrograph files."""
        dc, tc, world = self.config.data, self.config.train, self.world
        common: dict[str, Any] = dict(
            batch_size=self.batch_size, shuffle=shuffle, seed=tc.seed, crop=dc.crop,
            reader_threads=dc.reader_threads, device=self.device, rank=world.rank,
            world_size=world.world_size)
        if isinstance(data, Packed):
            half = self.device.type == "cuda" and self.precision in ("fp16", "bf16")
            return PackedStream(data.store, data.indices, normalization=dc.normalization,
                                dtype=torch.float16 if half else torch.float32, **common)
        return PatchStream(list(data), patch_size=dc.patch_size, normalization=dc.normalization,
                           shuffle_buffer=dc.shuffle_buffer, **common)

    # -- resume -----------------------------------------------------------------------------
    def restore(self) -> None:
        last = self.run_dir / "last.safetensors"
        model, ckpt = load_checkpoint(last, device=self.device)
        if ckpt.config.model != self.config.model:
            raise InputError(f"{last}: its model ({ckpt.config.model}) differs from the "
                             f"requested one ({self.config.model})")
        self.model.load_state_dict(model.state_dict())
        _load_optimizer_state(self.optimizer, load_extra_tensors(last), self.device)
        history_path = self.run_dir / "history.json"
        if history_path.exists():
            self.history = json.loads(history_path.read_text())
            self.history["config"] = self.config.to_dict()
        done = int(ckpt.metadata.get("epoch") or 0)
        self.history["epochs"] = [e for e in self.history["epochs"] if e["epoch"] <= done]
        self.history["steps"] = [s for s in self.history["steps"] if s["epoch"] <= done]
        self.history["warnings"] = [w for w in self.history.get("warnings", [])
                                    if w["epoch"] <= done]
        self.first_epoch = done + 1
        self.global_step = self.history["steps"][-1]["global_step"] if self.history["steps"] else 0
        self.schedule.load_state(ckpt.metadata.get("schedule"), self.global_step)
        self.best_epoch = ckpt.metadata.get("best_epoch")
        self.best_loss = ckpt.metadata.get("best_val_loss")
        self._check_resumed(done, ckpt.metadata.get("val_loss"))

    def _check_resumed(self, epoch: int, recorded: float | None) -> None:
        """Guard: the restored weights should score on the validation set as recorded."""
        if self.val_stream is None or recorded is None:
            return
        measured, _ = self._validate()
        message = resume_warning(recorded, measured)
        if message is not None:
            self.pending.append(self._warning(epoch, message))

    def _warning(self, epoch: int, message: str) -> TrainWarning:
        self.history["warnings"].append({"epoch": epoch, "message": message})
        return TrainWarning(epoch=epoch, message=message)

    # -- the loop ---------------------------------------------------------------------------
    def events(self) -> Iterator[Event]:
        epochs = self.config.train.epochs
        yield TrainStart(device=device_name(self.device), epochs=epochs,
                         first_epoch=self.first_epoch, steps_per_epoch=len(self.train_stream),
                         n_train_patches=self.train_stream.n_patches_all_ranks,
                         n_val_patches=(self.val_stream.n_patches_all_ranks
                                        if self.val_stream else 0),
                         run_dir=self.run_dir, world_size=self.world.world_size,
                         n_dropped_patches=self.train_stream.n_dropped,
                         batch_size=self.batch_size, precision=self._precision_text())
        yield from self.pending
        completed = self.first_epoch - 1
        stopped = False
        try:
            for epoch in range(self.first_epoch, epochs + 1):
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
            self._save("last.safetensors", completed, with_optimizer=True, stopped=True)
            raise
        if stopped:
            yield from self._save_last(completed, stopped=True)
        distributed.save_rank_weights(self.model, self.world)
        yield TrainEnd(epochs_completed=completed, best_epoch=self.best_epoch,
                       best_val_loss=self.best_loss, stopped=stopped, run_dir=self.run_dir,
                       rank=self.world.rank)

    def _train_epoch(self, epoch: int) -> Iterator[Event]:
        """Yields steps; returns the epoch's mean loss, or None when stopped."""
        self.model.train()
        self.train_stream.set_epoch(epoch - 1)
        total, count, tick = 0.0, 0, time.perf_counter()
        with closing(iter(self.train_stream)) as batches:
            for step, batch in enumerate(batches, start=1):
                if self._stop_requested():
                    return None
                loss, n = yield from self._step_or_back_off(epoch, batch)
                self.global_step += 1
                self.schedule.after_step()
                total += loss * n
                count += n
                now = time.perf_counter()
                rate = n / max(now - tick, 1e-9)
                tick = now
                self.history["steps"].append({"epoch": epoch, "step": step,
                                              "global_step": self.global_step, "loss": loss})
                yield TrainStep(epoch=epoch, step=step, steps_per_epoch=len(self.train_stream),
                                global_step=self.global_step, loss=loss, patches_per_s=rate)
        if self._stop_requested():
            return None
        return total / max(count, 1)

    def _precision_text(self) -> str:
        return f"{self.precision}, fused Triton kernels" if self.fused else self.precision

    def _stop_requested(self) -> bool:
        """The stop flag, agreed by all ranks (one tiny all-reduce per step when distributed)."""
        return distributed.any_rank(self.stop.is_set(), self.world)

    def _step_or_back_off(self, epoch: int,
                          batch: Batch) -> Generator[Event, None, tuple[float, int]]:
        """:meth:`_step`; on out-of-memory, split batches into twice as many micro-batches (the
        same update, less memory) with a warning and redo the step. Returns its (loss, n)."""
        while True:
            try:
                return self._step(batch)
            except torch.cuda.OutOfMemoryError:
                pass  # handled outside the except block, so the failed step's tensors are freed
            size = batch.noisy.shape[0]
            if self.chunks >= size:
                raise InputError(f"out of memory training even one {batch.noisy.shape[-1]}² "
                                 f"patch at a time on {device_name(self.device)}: use a "
                                 f"smaller --crop or --patch-size")
            self.chunks *= 2
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            self._update = self._make_update()
            yield self._warning(epoch, f"out of memory at a batch of {size}: each batch now "
                                       f"runs as {self.chunks} micro-batches of about "
                                       f"{math.ceil(size / self.chunks)} (same updates, slower)")

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

        x, y, mask = self.modes.training(batch.noisy, batch.clean, self.global_step)
        self._update(x, y, before_update=check, **({} if mask is None else {"mask": mask}))
        return result[0], result[1]

    @torch.no_grad()
    def _validate(self, stream: PatchStream | PackedStream | None = None, *,
                  clean: bool = False) -> tuple[float | None, float | None]:
        """(loss, raw MSE) on the validation stream, the mode's way (n2n: against the held-out
        partner, n2v: at fixed blind spots); ``clean``: plain noisy→clean on ``stream``."""
        stream = stream if clean else self.val_stream
        if stream is None:
            return None, None
        self.model.eval()
        loss_sum, mse_sum, pixels = 0.0, 0.0, 0
        for index, batch in enumerate(stream):
            x, target, mask = ((batch.noisy, batch.clean, None) if clean
                               else self.modes.validation(batch.noisy, batch.clean, index))
            x = x if self.precision in ("fp16", "bf16") else x.float()
            with steps.autocast(self.precision, self.device):
                pred = self.model(x).float()
            target, scale = target.float(), batch.scale.view(-1, 1, 1, 1)
            if mask is not None:  # n2v: only the blind spots count
                pred, target, scale = pred[mask], target[mask], scale.expand(mask.shape)[mask]
            loss_sum += float(torch.nn.functional.mse_loss(pred, target, reduction="sum"))
            mse_sum += float((((pred - target) * scale) ** 2).sum())
            pixels += pred.numel()
        loss_sum, mse_sum, total = distributed.all_sum([loss_sum, mse_sum, pixels], self.world)
        return loss_sum / total, mse_sum / total

    def _end_epoch(self, epoch: int, train_loss: float, val_loss: float | None,
                   val_mse: float | None, seconds: float) -> Iterator[Event]:
        score = val_loss if val_loss is not None else train_loss
        is_best = self.best_loss is None or score < self.best_loss
        previous_best = self.best_loss, self.best_epoch
        if is_best:
            self.best_loss, self.best_epoch = score, epoch
        clean_loss, clean_mse = (self._validate(self.clean_val_stream, clean=True)
                                 if self.clean_val_stream is not None else (None, None))
        self.history["epochs"].append({"epoch": epoch, "train_loss": train_loss,
                                       "val_loss": val_loss, "val_mse": val_mse,
                                       "seconds": seconds, "best": is_best,
                                       "lr": self.schedule.lr})
        if self.modes.mode != "n2c":  # n2n/n2v: val_loss is against noisy targets
            self.history["epochs"][-1].update(clean_val_loss=clean_loss,
                                              clean_val_mse=clean_mse)
        yield EpochEnd(epoch=epoch, train_loss=train_loss, val_loss=val_loss, val_mse=val_mse,
                       is_best=is_best, seconds=seconds, clean_val_loss=clean_loss,
                       clean_val_mse=clean_mse)
        rise = val_rise_warning([e["val_loss"] for e in self.history["epochs"]])
        if rise is not None:
            yield self._warning(epoch, rise)
        final = epoch == self.config.train.epochs
        if is_best:
            try:
                path = self._save("best.safetensors", epoch, with_optimizer=False)
                yield CheckpointSaved(epoch=epoch, kind="best", path=path)
            except SaveError as exc:  # e.g. disk full: the old best is intact on disk
                self.best_loss, self.best_epoch = previous_best
                if final:
                    raise
                yield self._warning(epoch, f"{exc}; training goes on and saves again")
        try:
            yield from self._save_last(epoch, stopped=False)
        except SaveError as exc:
            if final:
                raise
            yield self._warning(epoch, f"{exc}; training goes on and saves again")

    def _save_last(self, epoch: int, *, stopped: bool) -> Iterator[Event]:
        path = self._save("last.safetensors", epoch, with_optimizer=True, stopped=stopped)
        yield CheckpointSaved(epoch=epoch, kind="last", path=path)

    def _save(self, name: str, epoch: int, *, with_optimizer: bool, stopped: bool = False) -> Path:
        """Write a checkpoint and the history (rank 0 only); returns the checkpoint's path."""
        if not self.world.is_main:
            return self.run_dir / name
        record = next((e for e in self.history["epochs"] if e["epoch"] == epoch), {})
        extra = _optimizer_tensors(self.optimizer) if with_optimizer else None
        resume_state = {"schedule": self.schedule.state()} if with_optimizer else {}
        path = save_checkpoint(
            self.run_dir / name, self.model, self.config, extra_tensors=extra,
            epoch=epoch, train_loss=record.get("train_loss"), val_loss=record.get("val_loss"),
            val_mse=record.get("val_mse"), best_epoch=self.best_epoch,
            best_val_loss=self.best_loss, stopped=stopped,
            epochs=[{k: e[k] for k in ("epoch", "train_loss", "val_loss", "val_mse")}
                    for e in self.history["epochs"]],
            **resume_state,
        )
        self._write_history(stopped)
        return path

    def _write_history(self, stopped: bool) -> None:
        self.history.update(best_epoch=self.best_epoch, best_val_loss=self.best_loss,
                            device=device_name(self.device), stopped=stopped,
                            world_size=self.world.world_size,
                            global_batch_size=self.world.world_size * self.batch_size,
                            batch_size=self.batch_size, precision=self._precision_text())
        text = json.dumps(self.history, indent=1, allow_nan=False, default=_json_default)
        atomic_write_bytes(self.run_dir / "history.json", text.encode())


def _fused_supported(model: torch.nn.Module) -> bool:
    from ..kernels.train import supports

    return supports(model)


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
    state_dict = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        prefix, index, key = name.split(".", 2)
        if prefix == "optim":
            state.setdefault(int(index), {})[key] = tensor if key == "step" else tensor.to(device)
    state_dict["state"] = state
    optimizer.load_state_dict(state_dict)
