"""The worker side of a Train widget run: its job, event forwarding and bounded shutdown.

:func:`run_events` runs in a napari worker thread: it prepares the pairs, iterates the core's
:func:`~napari_cryoden.training.loop.train` generator and yields its events in small batches (at
most every 50 ms, so a fast CPU run cannot flood the main thread). Nothing here touches a layer
or a widget; :func:`shutdown_jobs` stops the jobs and waits (bounded) for their threads to end.
Also the run's small Qt-free helpers: the default run folder, the epochs a run folder has done,
and the folder a Start or a Resume uses.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from napari_cryoden._qt.train.data_form import FolderPair, LayerPair, prepare_pairs
from napari_cryoden.errors import InputError

if TYPE_CHECKING:
    from napari_cryoden.config.sections import Config

__all__ = ["EventBatches", "Job", "PastCurves", "SHUTDOWN_S", "default_run_dir", "drive",
           "epochs_done", "import_triton_on_main_thread", "new_run_dir", "resume_dir", "run_events",
           "shutdown_jobs"]

_BATCH_S = 0.05  # the worker yields at most this often while steps stream in
SHUTDOWN_S = 10.0


def default_run_dir() -> Path:
    """A new, not yet created folder ``~/.napari-cryoden/runs/<timestamp>``."""
    root = Path.home() / ".napari-cryoden" / "runs"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = root / stamp, 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{n}"
    return path


def epochs_done(run_dir: Path) -> int:
    """The last epoch recorded in ``run_dir/history.json`` (0 without a readable history)."""
    try:
        history = json.loads((run_dir / "history.json").read_text())
        return max((int(e["epoch"]) for e in history.get("epochs", [])), default=0)
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def new_run_dir(chosen: Path | None) -> Path:
    """Give the folder of a new run: ``chosen``, or :func:`default_run_dir` when None.

    Raises
    ------
    InputError
        ``chosen`` already holds a run (a ``last.safetensors``).
    """
    if chosen is None:
        return default_run_dir()
    if (chosen / "last.safetensors").exists():
        raise InputError(f"{chosen} already holds a training run: press Resume to continue "
                         "it, or choose an empty run folder")
    return chosen


def resume_dir(folder: Path | None, epochs: int) -> Path:
    """Give the run folder to continue up to ``epochs`` epochs in total.

    Raises
    ------
    InputError
        No folder, no ``last.safetensors`` in it, or it has already trained ``epochs``.
    """
    if folder is None or not (folder / "last.safetensors").exists():
        raise InputError(f"{folder or 'no run folder'}: nothing to resume (no "
                         "last.safetensors); choose a run folder or press Start")
    done = epochs_done(folder)
    if done >= epochs:
        raise InputError(f"{folder.name} has already trained {done} epoch(s); raise "
                         f"'epochs' above {done} to continue it")
    return folder


@dataclass
class Job:
    """One training run's thread-shared state: the core's stop event and a done flag.

    ``process`` is the training subprocess of a run in several processes
    (:class:`.process.TrainProcess`), None otherwise.
    """

    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    worker: Any = None
    events: Generator[list[Any], None, None] | None = None
    process: Any = None

    def request_stop(self) -> None:
        """Ask the run to stop: the core's event, and SIGINT (once) to a subprocess."""
        self.stop.set()
        if self.process is not None:
            self.process.interrupt()

    def stopping(self) -> bool:
        if self.worker is not None and self.worker.abort_requested:
            self.stop.set()  # worker.quit() alone also stops the core cleanly
        return self.stop.is_set()

    def close_if_abandoned(self) -> None:
        """After the thread ended: a quit() seen between two yields (likely: the worker waits
        for the GIL right after emitting) leaves the events suspended; closing them lets the
        core save its last weights and history (a few small files) on this thread."""
        if not self.done.is_set() and self.events is not None and not (
                self.worker is not None and self.worker.is_running):
            self.events.close()
            self.done.set()


def run_events(job: Job, source: LayerPair | FolderPair, config: Config, run_dir: Path,
                resume: bool) -> Generator[list[Any], None, None]:
    """Worker body: prepare the pairs, then forward the core's events in time-sliced batches.

    Once stopping, nothing is yielded until the core has saved its last weights and history,
    so that ``worker.quit()`` (which acts at a yield) never cuts the core's shutdown short.
    """
    from contextlib import closing

    from napari_cryoden.training.loop import train

    batches = EventBatches(job)
    try:
        train_pairs, val_pairs = prepare_pairs(source, run_dir, config)
        batches.restart_clock()
        events = cast(Generator[Any, None, None], train(
            config, train_pairs, val_pairs, run_dir, stop=job.stop, resume=resume))
        with closing(events):
            for event in events:
                ready = batches.add(event)
                if ready:
                    yield ready
    finally:
        job.done.set()
    if batches.pending:
        yield batches.pending  # after done: a quit() here leaves nothing unsaved


class EventBatches:
    """The core's events grouped into the small batches the widget draws.

    A batch goes out at every event but a training step, at each epoch's first step, and at
    least every ``_BATCH_S`` seconds; a resumed run's earlier curves ride along with its
    ``TrainStart``. While the job is stopping, events are only collected.
    """

    def __init__(self, job: Job) -> None:
        self.job = job
        self.pending: list[Any] = []
        self.sent = time.monotonic()

    def restart_clock(self) -> None:
        self.sent = time.monotonic()

    def add(self, event: Any) -> list[Any] | None:
        """Take ``event``; the batch to yield now, if it is time for one."""
        from napari_cryoden.training.events import TrainStart, TrainStep

        self.pending.append(event)
        if isinstance(event, TrainStart) and event.first_epoch > 1:  # resumed
            self.pending.append(PastCurves.read(event.run_dir, event.first_epoch,
                                                event.steps_per_epoch))
        if self.job.stopping():
            return None
        if (not isinstance(event, TrainStep) or event.step == 1
                or time.monotonic() - self.sent >= _BATCH_S):
            ready, self.pending, self.sent = self.pending, [], time.monotonic()
            return ready
        return None


@dataclass(frozen=True)
class PastCurves:
    """The plot points of the epochs before a resumed run's first, read in the worker."""

    steps: list[tuple[float, float]]  # (epoch - 1 + step / steps_per_epoch, loss)
    epochs: list[tuple[int, float, float | None]]  # (epoch, train loss, val loss)

    @classmethod
    def read(cls, run_dir: Path, first_epoch: int, steps_per_epoch: int) -> PastCurves:
        try:
            history = json.loads((run_dir / "history.json").read_text())
        except (OSError, ValueError):
            return cls([], [])
        return cls([(s["epoch"] - 1 + s["step"] / steps_per_epoch, s["loss"])
                    for s in history.get("steps", []) if s["epoch"] < first_epoch],
                   [(e["epoch"], e["train_loss"], e.get("val_loss"))
                    for e in history.get("epochs", []) if e["epoch"] < first_epoch])


def drive(events: Iterator[list[Any]]) -> Iterator[list[Any]]:
    """The worker's generator function; the job keeps ``events`` to close it if abandoned."""
    yield from events


def import_triton_on_main_thread() -> None:
    """Import ``torch._dynamo``, and with it triton, now: call it on the main thread.

    ``torch.optim`` imports ``torch._dynamo``, which imports triton; triton's first import
    segfaults when it happens in a worker thread (seen with triton 3.9 + torch 2.13). So, when
    triton is installed, the job's starter calls this on the main thread before a training
    thread starts (:func:`.process.new_job`); later imports are free. Without triton it
    does nothing.
    """
    if importlib.util.find_spec("triton") is not None:  # pragma: no cover - depends on install
        import torch._dynamo  # noqa: F401


def shutdown_jobs(jobs: list[Job], plot_idle: threading.Event,
                  timeout_s: float = SHUTDOWN_S) -> None:
    """Stop every unfinished job and wait (at most ``timeout_s``) for the threads to end."""
    deadline = time.monotonic() + timeout_s
    for job in jobs:
        if job.done.is_set() and not (job.worker and job.worker.is_running):
            continue
        job.request_stop()
        if job.worker is not None:
            job.worker.quit()  # first: a worker not yet running will not start the generator
        while job.worker is not None and job.worker.is_running and time.monotonic() < deadline:
            job.done.wait(0.005)  # the core saves last weights and history, then returns
        job.close_if_abandoned()
    plot_idle.wait(max(deadline - time.monotonic(), 0))  # a preview frame being drawn
