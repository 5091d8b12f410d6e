"""The Train widget: pick data, adjust the generated settings form, train with a live loss plot.

The core's :func:`~napari_cryoden.training.loop.train` generator runs in a napari worker thread
(:mod:`.worker`). The worker forwards its events in small batches (at most every 50 ms,
so a fast CPU run cannot flood the main thread); a slot on the main thread updates the plot
(:mod:`.loss_plot`, redrawn at most every 200 ms), the progress bar and the status line. Stop
sets the ``stop`` event the core polls at every step; closing the widget or the viewer does the
same and waits (bounded) for the thread to end.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import QEvent, QObject, Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from napari_cryoden._qt._models import MODELS
from napari_cryoden._qt.train import layout
from napari_cryoden._qt.train.data_form import FolderPair, LayerPair
from napari_cryoden._qt.train.loss_plot import LossPlot
from napari_cryoden._qt.train.process import check_processes, new_job
from napari_cryoden._qt.train.progress import RunProgress
from napari_cryoden._qt.train.rows import ROWS, SettingsRows
from napari_cryoden._qt.train.worker import (
    SHUTDOWN_S,
    Job,
    PastCurves,
    default_run_dir,
    new_run_dir,
    resume_dir,
    shutdown_jobs,
)
from napari_cryoden.errors import CryodenError

if TYPE_CHECKING:
    import napari
    from magicgui.widgets import Container, FileEdit, SpinBox

    from napari_cryoden._qt.train.data_form import DataForm
    from napari_cryoden._qt.train.form import ConfigForm
    from napari_cryoden._qt.train.layout import DeviceLabel, LazySection
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

    # the settings rows, built in the event-loop turns after the panel opens (.rows)
    data: DataForm
    form: ConfigForm
    settings: Container[Any]
    advanced: Container[Any]
    advanced_section: LazySection
    run_folder: FileEdit
    processes: SpinBox
    device_label: DeviceLabel

    def __init__(self, viewer: napari.viewer.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.worker: Any = None
        self.run_dir: Path | None = None
        self._jobs: list[Job] = []
        self._outcome: str | None = None  # "finished", "stopped" or "failed" once known
        self._running = False
        column = self._build_shell()
        self.rows = SettingsRows(viewer, column, self._update_buttons)  # in the next turns
        self.destroyed.connect(  # closes over the thread-shared state only, not self
            lambda *_, jobs=self._jobs, idle=self.plot.idle: shutdown_jobs(jobs, idle))
        self._watched_window: QWidget | None = None  # the top-level window whose Close stops us

    def __getattr__(self, name: str) -> Any:
        """The settings rows (``data``, ``form``...); asked for before their event-loop turn
        (e.g. right after construction), they are built now."""
        rows = self.__dict__.get("rows")
        if name in ROWS and rows is not None:
            return getattr(rows.finish(), name)
        return super().__getattr__(name)  # type: ignore[misc]  # PyQt6 QObject has one

    # -- layout ---------------------------------------------------------------------------
    def _build_shell(self) -> QVBoxLayout:
        """The buttons, progress, status and plot; returns the column for the settings rows."""
        self.start_button, self.stop_button, self.resume_button = buttons = layout.run_buttons()
        row = QHBoxLayout()
        for button, slot in zip(buttons, (self.start, self.stop, self.resume), strict=True):
            button.clicked.connect(lambda *_, slot=slot: slot())
            button.setEnabled(False)  # Start/Resume: once the data rows can train
            row.addWidget(button)
        self.progress = QProgressBar()
        self.status = QLabel("Choose the data and press Start.")
        self.status.setWordWrap(True)
        self._progress = RunProgress(self.progress, self.status)
        self.plot = LossPlot(self.viewer)
        self.plot.setMinimumHeight(220)
        column = layout.scroll_column(self)  # scrolls instead of pushing the window off
        column.addLayout(row)
        for widget in (self.progress, self.status):
            column.addWidget(widget)
        column.addWidget(self.plot, stretch=1)
        return column

    def _set_running(self, running: bool) -> None:
        self._running = running
        self._update_buttons()
        self.stop_button.setEnabled(running)
        for part in (self.settings, self.advanced):
            part.enabled = not running

    def _update_buttons(self, *_: Any) -> None:  # Start/Resume: idle, data that can train
        for button in (self.start_button, self.resume_button):
            button.setEnabled(not self._running and self.rows.data.ok)

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
            run_dir = (resume_dir(self._chosen_folder() or self.run_dir, config.train.epochs)
                       if resume else new_run_dir(self._chosen_folder()))
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
        self.plot.set_mode(config.train.mode)
        self.plot.show_live()
        self.plot.request_redraw()
        self._progress.busy(f"Preparing data in {run_dir}…")  # until TrainStart
        self._set_running(True)
        worker.start()

    # -- slots on the main thread ---------------------------------------------------------
    def _on_events(self, events: list[Any]) -> None:
        from napari_cryoden.training import (
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
                self._progress.step(event)
                self.step_finished.emit(event)
            elif isinstance(event, TrainStart):
                self._progress.start(event)
            elif isinstance(event, PastCurves):
                self.plot.add_past(event)
            elif isinstance(event, EpochEnd):
                self.plot.add_epoch(event.epoch, event.train_loss, event.val_loss)
                self.status.setText(event.describe())
                self.epoch_finished.emit(event)
            elif isinstance(event, CheckpointSaved) and event.kind == "best":
                MODELS.add_training(event.path)  # "training" in its label until the end
            elif isinstance(event, TrainWarning):  # e.g. validation loss rising: say it loudly
                from napari.utils.notifications import show_warning

                show_warning(f"Training, epoch {event.epoch}: {event.message}")
                self.status.setText(f"Warning: {event.message}")
            elif isinstance(event, TrainEnd):
                self._outcome = "stopped" if event.stopped else "finished"
                self.status.setText(event.describe())
        self._progress.update()
        self.plot.request_redraw()

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
        if self._outcome is None:  # stopped between two yields: the core ended without TrainEnd
            self._outcome = "stopped"
            self.status.setText(f"Stopped: last weights and history are in {self.run_dir}.")
        if self.run_dir is not None:  # the run is over: its model is no longer "training"
            MODELS.end_training(self.run_dir / "best.safetensors")
        self._progress.finish(self._outcome)
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
        if window is not None and window is not self and window is not self._watched_window:
            window.installEventFilter(self)
            self._watched_window = window

    def eventFilter(self, obj: QObject | None, event: QEvent | None) -> bool:  # noqa: N802
        if event is not None and event.type() == QEvent.Type.Close:  # the viewer closes
            self.shutdown()
        return False

