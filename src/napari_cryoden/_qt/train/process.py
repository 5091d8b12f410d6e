"""A Train widget run in several processes: ``cryoden train --nproc N`` as a subprocess.

The widget prepares the data as for one process (layers are written to the run folder, folders
are used as they are), then starts ``python -m napari_cryoden.cli train … --events
RUN_DIR/events.jsonl … --nproc N`` in a new session, its output going to ``RUN_DIR/train.log``.
:func:`run_process_events` runs in the napari worker thread: it tails ``events.jsonl`` (written
by rank 0, one JSON object per line; parsed as data with :func:`json.loads`), turns the lines
back into the core's events and yields them in the same small batches as
:func:`.worker.run_events`, so the widget handles both alike. :func:`new_job` starts either.

Stop sends SIGINT once to the subprocess's process group (the launcher and torchrun, which
passes it on to every rank); the ranks save the last weights and the history and exit. If the
run has not ended :data:`STOP_GRACE_S` later it gets SIGTERM, then SIGKILL. Nothing here
touches Qt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_cryoden._qt.train.data_form import FolderPair, LayerPair, prepare_pairs
from napari_cryoden._qt.train.worker import (
    EventBatches,
    Job,
    drive,
    import_triton_on_main_thread,
    run_events,
)
from napari_cryoden.config.flags import config_to_argv
from napari_cryoden.errors import CryodenError, InputError

if TYPE_CHECKING:
    from napari_cryoden.config.sections import Config

__all__ = ["EVENTS_FILE", "LOG_FILE", "STOP_GRACE_S", "TrainProcess", "TrainProcessError",
           "check_processes", "new_job", "train_command", "run_process_events"]

EVENTS_FILE = "events.jsonl"
LOG_FILE = "train.log"
STOP_GRACE_S = 30.0  # after SIGINT, before SIGTERM
TERM_GRACE_S = 5.0  # after SIGTERM, before SIGKILL
_POLL_S = 0.05


class TrainProcessError(CryodenError):
    """The training subprocess exited with an error; the message is its last error line."""


def check_processes(source: LayerPair | FolderPair, config: Config, nproc: int) -> None:
    """Refuse what a multi-process run cannot train the way one process would.

    Layers in ``n2n``/``n2v`` mode with a validation strip have no ``cryoden train`` flags
    (the CLI holds out whole files there), so they need folders or 'validation fraction' 0.
    """
    if nproc > 1 and isinstance(source, LayerPair) and config.train.mode != "n2c" \
            and config.data.val_fraction > 0:
        raise InputError(f"{nproc} processes with layers in {config.train.mode} mode: set "
                         "'validation fraction' to 0, train from folders, or use 1 process")


def train_command(config: Config, source: LayerPair | FolderPair,
                  pairs: tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]],
                  run_dir: Path, resume: bool, nproc: int) -> list[str]:
    """The command line of the subprocess (``sys.executable -m napari_cryoden.cli train …``).

    ``pairs`` are what :func:`prepare_pairs` gave: for layers their folders are passed
    (the validation strip as ``--val-noisy/--val-clean``), for folders the folders themselves.
    The arguments are those ``cryoden train --nproc`` hands each rank (every config field as
    its flag, by :func:`~napari_cryoden.config.flags.config_to_argv`), then ``--nproc``.
    """
    mode = config.train.mode
    # --even-sums: the spelling of --even that torchrun's parser leaves alone (cli/train.py)
    first, second = (("--even-sums", "--odd") if mode == "n2n" else ("--noisy", "--clean"))
    if isinstance(source, FolderPair):
        dirs = [source.noisy_dir, source.clean_dir]
    else:
        train_pairs, val_pairs = pairs
        dirs = [train_pairs[0][0].parent, train_pairs[0][1].parent]
    argv = ["train", "--out", str(run_dir), first, str(dirs[0])]
    if mode != "n2v":
        argv += [second, str(dirs[1])]
    if isinstance(source, LayerPair) and pairs[1]:  # n2c only (check_processes)
        argv += ["--val-noisy", str(pairs[1][0][0].parent),
                 "--val-clean", str(pairs[1][0][1].parent)]
    if resume:
        argv.append("--resume")
    argv += ["--events", str(run_dir / EVENTS_FILE), *config_to_argv(config)]
    return [sys.executable, "-m", "napari_cryoden.cli", *argv, "--nproc", str(nproc)]


class TrainProcess:
    """The training subprocess (its own session: Stop signals the whole torchrun tree)."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        with log.open("w", encoding="utf-8") as out:
            self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        self._lock = threading.Lock()
        self.interrupted_at: float | None = None
        self._terminated = False

    def poll(self) -> int | None:
        """The exit status, or None while it runs."""
        return self.popen.poll()

    def interrupt(self) -> None:
        """SIGINT to the process group, once (a second one could cut the ranks' saving short)."""
        with self._lock:
            if self.interrupted_at is not None or self.poll() is not None:
                return
            self.interrupted_at = time.monotonic()
            self._signal(signal.SIGINT)

    def enforce_deadline(self) -> None:
        """After an interrupt: SIGTERM past :data:`STOP_GRACE_S`, SIGKILL past the next grace."""
        if self.interrupted_at is None or self.poll() is not None:
            return
        waited = time.monotonic() - self.interrupted_at
        if waited > STOP_GRACE_S + TERM_GRACE_S:
            self._kill_tree()
        elif waited > STOP_GRACE_S and not self._terminated:
            self._terminated = True
            self._signal(signal.SIGTERM)  # torchrun passes it on to the ranks

    def stop_and_wait(self) -> int:
        """Interrupt (if still running) and wait for the end, escalating as needed."""
        self.interrupt()
        while self.poll() is None:
            self.enforce_deadline()
            time.sleep(_POLL_S)
        return self.popen.returncode

    def failure_line(self) -> str:
        """The last ``cryoden: error:`` line of the log, else its last non-empty line."""
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("cryoden: error:")]
        return (errors or lines or [f"exit status {self.popen.returncode}"])[-1]

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _kill_tree(self) -> None:
        """SIGKILL the group and the ranks (torchrun starts each in a session of its own)."""
        pids: list[int] = []
        try:
            import psutil

            pids = [child.pid for child in psutil.Process(self.popen.pid).children(True)]
        except Exception:  # noqa: BLE001 - psutil absent or the process gone
            pass
        self._signal(signal.SIGKILL)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def follow(path: Path, process: TrainProcess) -> Iterator[Any]:
    """The events appended to ``path`` until ``process`` ends; None between reads (a tick)."""
    from napari_cryoden.training.events import from_json_line

    handle, pending = None, ""
    try:
        while True:
            ended = process.poll() is not None  # before the read: nothing written is missed
            if handle is None and path.exists():
                handle = path.open(encoding="utf-8")
            chunk = handle.read() if handle is not None else ""
            if chunk:
                *lines, pending = (pending + chunk).split("\n")
                for line in lines:
                    if line.strip():
                        yield from_json_line(line)
            if ended:
                return
            if not chunk:
                yield None
                time.sleep(_POLL_S)
    finally:
        if handle is not None:
            handle.close()


def run_process_events(job: Job, source: LayerPair | FolderPair, config: Config,
                       run_dir: Path, resume: bool,
                       nproc: int) -> Generator[list[Any], None, None]:
    """Worker body for ``nproc`` > 1: prepare the data, start the subprocess, follow its events.

    Batches are yielded as by :func:`.worker.run_events`; once stopping, nothing is
    yielded until the subprocess has ended. A non-zero exit that Stop did not cause raises
    :class:`TrainProcessError` with the run's last error line.
    """
    batches = EventBatches(job)
    process: TrainProcess | None = None
    try:
        pairs = prepare_pairs(source, run_dir, config)
        (run_dir / EVENTS_FILE).unlink(missing_ok=True)  # a resumed run's file starts afresh
        if job.stopping():
            return
        process = job.process = TrainProcess(
            train_command(config, source, pairs, run_dir, resume, nproc), run_dir / LOG_FILE)
        batches.restart_clock()
        for event in follow(run_dir / EVENTS_FILE, process):
            if job.stopping():
                process.interrupt()
                process.enforce_deadline()
            ready = batches.add(event) if event is not None else None
            if ready:
                yield ready
        status = process.stop_and_wait()
        if status != 0 and process.interrupted_at is None:
            raise TrainProcessError(process.failure_line())
    finally:
        if process is not None:
            process.stop_and_wait()  # closed early (viewer closing): the ranks save and exit
        job.done.set()
    if batches.pending:
        yield batches.pending


def new_job(source: LayerPair | FolderPair, config: Config, run_dir: Path, resume: bool,
            nproc: int = 1) -> Job:
    """Create a run's job; call it on the main thread, then start ``job.worker``.

    Parameters
    ----------
    source
        The chosen layers or folders.
    config
        The run's config.
    run_dir
        The run folder (created).
    resume
        Continue the run folder's ``last.safetensors``.
    nproc
        1: train in this process (:func:`.worker.run_events`); more:
        :func:`run_process_events` (a ``cryoden train --nproc`` subprocess).

    Returns
    -------
    Job
        With its napari worker created, not started.
    """
    from napari.qt.threading import create_worker

    import_triton_on_main_thread()  # before any training thread can import torch.optim
    job = Job()
    job.events = (run_events(job, source, config, run_dir, resume) if nproc <= 1 else
                  run_process_events(job, source, config, run_dir, resume, nproc))
    job.worker = create_worker(drive, job.events, _start_thread=False, _ignore_errors=True)
    return job
