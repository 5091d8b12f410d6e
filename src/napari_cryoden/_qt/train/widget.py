"""The Train widget: pick data, adjust the generated settings form, train with a live loss plot.

The core's :func:`~napari_cryoden.training.loop.train` generator runs in a napari worker thread
(:mod:`.worker`). The worker forwards its events in small batches (at most every 50 ms,
so a fast CPU run cannot flood the main thread); a slot on the main thread updates the plot
(:mod:`.loss_plot`, redrawn at most every 200 ms), the progress bar and the status line. Stop
sets the ``stop`` event the core polls at every step; closing the widget or the viewer does the
same and waits (bounded) for the thread to end.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.types import FileDialogMode
from magicgui.widgets import Container, FileEdit, SpinBox
from qtpy.QtCore import QEvent, QObject, Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget
from superqt import QCollapsible

from napari_cryoden._qt._models import MODELS
from napari_cryoden._qt.train.form import ConfigForm, DataForm, FolderPair, LayerPair
from napari_cryoden._qt.train.loss_plot import LossPlot
from napari_cryoden._qt.train.process import check_processes, new_job
from napari_cryoden._qt.train.worker import (
    SHUTDOWN_S,
    Job,
    PastCurves,
    default_run_dir,
    epochs_done,
    shutdown_jobs,
)
from napari_cryoden.devices import describe_choice
from napari_cryoden.errors import CryodenError, InputError

if TYPE_CHECKING:
    import napari

    from napari_cryoden.config.sections import Config

__all__ = ["TrainWidget", "LossPlot", "default_run_dir"]


class TrainWidget(QWidget):
    """Train the denoiser on two Image layers or two folders, with a live loss plot.

    The ``mode`` setting chooses what the data rows ask for: noisy and clean (n2c), even and
    odd halves (n2n), or one noisy layer or folder (n2v).

    Parameters
    ----------
    viewer
        The napari viewer (injected by npe2).

    Attributes
    ----------
    worker
        The napari ``GeneratorWorker`` of the current or last run (None before the first).
    run_dir
        The current or last run folder.
    """

    step_finished = Signal(object)  # TrainStep, on the main thread
    epoch_finished = Signal(object)  # EpochEnd
    finished = Signal()  # the worker ended (finished, stopped or failed)

    def __init__(self, viewer: napari.viewer.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.worker: Any = None
        self.run_dir: Path | None = None
        self._jobs: list[Job] = []
        self._outcome: str | None = None  # "finished", "stopped" or "failed" once known
        self._progress_state: dict[str, Any] = {}
        self._build()
        self.destroyed.connect(  # closes over the thread-shared state only, not self
            lambda *_, jobs=self._jobs, idle=self.plot.idle: shutdown_jobs(jobs, idle))
        self._watched_window: QWidget | None = None  # the top-level window whose Close stops us
        self._set_running(False)

    # -- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.data = DataForm(self.viewer)
        self.form = ConfigForm()
        self.run_folder = FileEdit(mode=FileDialogMode.EXISTING_DIRECTORY, label="run folder")
        self.run_folder.tooltip = (
            "Where best.safetensors, last.safetensors and history.json go. Empty: a new folder "
            "under ~/.napari-cryoden/runs/ is created on Start. Resume continues the run in "
            "this folder (or the last run of this panel).")
        self.run_folder.line_edit.native.setPlaceholderText("a new folder on Start")
        self.processes = SpinBox(
            value=1, min=1, max=64, label="processes",
            tooltip="1: train here, in napari. N > 1: data-parallel training in N processes "
                    "(one per GPU; on the CPU, N processes) as a 'cryoden train --nproc N' "
                    "subprocess whose progress is shown here; 'batch size' is per process. "
                    "See docs/distributed.md.")
        self.device_label = QLabel()
        self.device_label.setToolTip("The device that will train ('device' setting).")
        self.form.widget("train.device").changed.connect(self._update_device)
        self.processes.changed.connect(self._update_device)
        self._update_device()
        self.settings: Container[Any] = Container(labels=True)
        self.advanced: Container[Any] = Container(labels=True)
        mode = self.form.widget("train.mode")  # first: it decides what the data rows ask for
        mode.changed.connect(self.data.set_mode)
        self.settings.extend([mode, *self.data.widgets,
                              *(w for w in self.form.basic if w is not mode), self.processes,
                              self.run_folder])
        self.advanced.extend(self.form.advanced)  # extend after init: labels get one width
        collapsible = QCollapsible("Advanced settings")
        collapsible.addWidget(self.advanced.native)
        collapsible.setToolTip("Model size, normalisation, streaming and random seed.")
        self.start_button, self.stop_button, self.resume_button = buttons = (
            QPushButton("Start"), QPushButton("Stop"), QPushButton("Resume"))
        self.start_button.setToolTip("Train a new model from scratch in a new run folder.")
        self.stop_button.setToolTip("Stop at the next step; the best and last weights and the "
                                    "history are kept in the run folder.")
        self.resume_button.setToolTip("Continue the run folder's last.safetensors up to "
                                      "'epochs' epochs in total.")
        row = QHBoxLayout()
        for button, slot in zip(buttons, (self.start, self.stop, self.resume), strict=True):
            button.clicked.connect(lambda *_, slot=slot: slot())
            row.addWidget(button)
        self.progress = QProgressBar()
        self.status = QLabel("Choose the data and press Start.")
        self.status.setWordWrap(True)
        self.plot = LossPlot(self.viewer)
        self.plot.setMinimumHeight(260)
        layout = QVBoxLayout(self)
        for widget in (self.settings.native, self.device_label, collapsible):
            layout.addWidget(widget)
        layout.addLayout(row)
        for widget in (self.progress, self.status):
            layout.addWidget(widget)
        layout.addWidget(self.plot, stretch=1)

    def _update_device(self, *_: Any) -> None:
        choice = self.form.widget("train.device").value
        where = describe_choice(choice)
        if self.processes.value > 1:
            where = f"{self.processes.value} processes, each on {where}"
        self.device_label.setText(f"Training runs on: {where}")

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        for part in (self.settings, self.advanced):
            part.enabled = not running

    # -- public API -----------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        """Whether a training run is in progress."""
        return any(not job.done.is_set() for job in self._jobs)

    def start(self) -> bool:
        """Train a new model; returns False (after a notification) when it cannot start."""
        return self._launch(resume=False)

    def resume(self) -> bool:
        """Continue the run folder's ``last.safetensors``; returns False when it cannot."""
        return self._launch(resume=True)

    def stop(self) -> None:
        """Ask the run to stop at the next step (it saves last weights and history first)."""
        for job in self._jobs:
            job.request_stop()
        if self.worker is not None:
            self.worker.quit()
        if self.is_running:
            self.status.setText("Stopping after the current step…")

    def shutdown(self, timeout_s: float = SHUTDOWN_S) -> None:
        """Stop and wait (at most ``timeout_s``) until no training thread is left."""
        shutdown_jobs(self._jobs, self.plot.idle, timeout_s)

    def loss_points(self) -> int:
        """How many points the loss plot shows (steps plus per-epoch points)."""
        return self.plot.points()

    # -- starting -------------------------------------------------------------------------
    def _launch(self, *, resume: bool) -> bool:
        from napari.utils.notifications import show_error, show_info

        if self.is_running:
            show_info("Training is already running.")
            return False
        try:
            config = self.form.config()
            source = self.data.selection()
            check_processes(source, config, self.processes.value)
            run_dir = self._resume_dir(config) if resume else self._new_run_dir()
        except CryodenError as exc:
            show_error(str(exc))
            return False
        run_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir = run_dir
        self._start_worker(config, source, run_dir, resume)
        return True

    def _chosen_folder(self) -> Path | None:
        text = self.run_folder.line_edit.value.strip()
        return Path(text).expanduser() if text else None

    def _new_run_dir(self) -> Path:
        chosen = self._chosen_folder()
        if chosen is None:
            return default_run_dir()
        if (chosen / "last.safetensors").exists():
            raise InputError(f"{chosen} already holds a training run: press Resume to continue "
                             "it, or choose an empty run folder")
        return chosen

    def _resume_dir(self, config: Config) -> Path:
        folder = self._chosen_folder() or self.run_dir
        if folder is None or not (folder / "last.safetensors").exists():
            raise InputError(f"{folder or 'no run folder'}: nothing to resume (no "
                             "last.safetensors); choose a run folder or press Start")
        done = epochs_done(folder)
        if done >= config.train.epochs:
            raise InputError(f"{folder.name} has already trained {done} epoch(s); raise "
                             f"'epochs' above {done} to continue it")
        return folder

    def _start_worker(self, config: Config, source: LayerPair | FolderPair, run_dir: Path,
                      resume: bool) -> None:
        job = new_job(source, config, run_dir, resume, self.processes.value)
        self._jobs[:] = [j for j in self._jobs if not j.done.is_set()] + [job]
        self.worker = worker = job.worker
        worker.yielded.connect(self._on_events)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._outcome = None
        self.plot.clear()
        self.plot.show_live()
        self.plot.request_redraw()
        self.progress.setRange(0, 0)  # busy until the first event tells the step count
        self.status.setText(f"Preparing data in {run_dir}…")
        self._set_running(True)
        worker.start()

    # -- slots on the main thread ---------------------------------------------------------
    def _on_events(self, events: list[Any]) -> None:
        from napari_cryoden.training.loop import (
            CheckpointSaved,
            EpochEnd,
            TrainEnd,
            TrainStart,
            TrainStep,
            TrainWarning,
        )

        for event in events:
            if isinstance(event, TrainStep):
                self.plot.add_step(event.epoch - 1 + event.step / event.steps_per_epoch,
                                   event.loss)
                self._progress_state.update(done=self._progress_state["done"] + 1, last=event)
                self.step_finished.emit(event)
            elif isinstance(event, TrainStart):
                self._on_train_start(event)
            elif isinstance(event, PastCurves):
                self.plot.add_past(event)
            elif isinstance(event, EpochEnd):
                self.plot.add_epoch(event.epoch, event.train_loss, event.val_loss)
                self.status.setText(event.describe())
                self.epoch_finished.emit(event)
            elif isinstance(event, CheckpointSaved) and event.kind == "best":
                MODELS.register(f"{event.path.parent.name} (training)", event.path)
            elif isinstance(event, TrainWarning):  # e.g. validation loss rising: say it loudly
                from napari.utils.notifications import show_warning

                show_warning(f"Training, epoch {event.epoch}: {event.message}")
                self.status.setText(f"Warning: {event.message}")
            elif isinstance(event, TrainEnd):
                self._outcome = "stopped" if event.stopped else "finished"
                self.status.setText(event.describe())
        self._update_progress()
        self.plot.request_redraw()

    def _on_train_start(self, event: Any) -> None:
        total = max(event.epochs - event.first_epoch + 1, 0) * event.steps_per_epoch
        self._progress_state = {"start": event, "t0": time.monotonic(), "done": 0,
                                "total": total, "last": None}
        self.progress.setRange(0, max(total, 1))
        where = (event.device if event.world_size == 1
                 else f"{event.world_size} processes × {event.device}")
        self.status.setText(f"Training on {where}: {event.n_train_patches} training / "
                            f"{event.n_val_patches} validation patches, "
                            f"{event.steps_per_epoch} steps per epoch.")

    def _update_progress(self) -> None:
        state = self._progress_state
        if not state or state["last"] is None:
            return
        done, total, step = state["done"], state["total"], state["last"]
        elapsed = time.monotonic() - state["t0"]
        eta = elapsed / done * max(total - done, 0)
        self.progress.setValue(min(done, total))
        self.progress.setFormat(f"epoch {step.epoch}/{state['start'].epochs} · step {step.step}/"
                                f"{step.steps_per_epoch} · ETA {_clock(eta)}")

    def _on_error(self, exc: BaseException) -> None:
        from napari.utils.notifications import show_error

        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if not isinstance(exc, CryodenError | FloatingPointError):
            text = f"{type(exc).__name__}: {text}"
        show_error(f"Training failed: {text}")
        self.status.setText(f"Training failed: {text}")
        self._outcome = "failed"

    def _on_finished(self) -> None:
        for job in self._jobs:
            job.close_if_abandoned()
        self.plot.show_interactive()
        if self.progress.maximum() == 0:  # never left "busy": failed while preparing
            self.progress.setRange(0, 1)
        if self._outcome is None:  # stopped between two yields: the core ended without TrainEnd
            self._outcome = "stopped"
            self.status.setText(f"Stopped: last weights and history are in {self.run_dir}.")
        state, text = self._progress_state, self._outcome
        if state.get("last") and self._outcome != "failed":
            text += f" in epoch {state['last'].epoch}/{state['start'].epochs}"
        self.progress.setFormat(text)
        self._set_running(False)
        self.finished.emit()

    # -- closing --------------------------------------------------------------------------
    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        self.shutdown()
        super().closeEvent(event)

    def event(self, event: QEvent | None) -> bool:
        if event is not None and event.type() == QEvent.Type.ParentChange:
            if self.parent() is None:  # napari's dock "x" un-parents without closing
                self.shutdown()
            else:
                self._watch_window()
        elif event is not None and event.type() == QEvent.Type.Show:
            self._watch_window()  # docked for good: the viewer's main window is known now
        return super().event(event)

    def _watch_window(self) -> None:
        """Stop training when the viewer's window closes (watch its Close event)."""
        window = self.window()
        if window is not self and window is not self._watched_window:
            window.installEventFilter(self)
            self._watched_window = window

    def eventFilter(self, obj: QObject | None, event: QEvent | None) -> bool:  # noqa: N802
        if event is not None and event.type() == QEvent.Type.Close:  # the viewer closes
            self.shutdown()
        return False


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
