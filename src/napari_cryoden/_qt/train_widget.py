"""The Train widget: pick data, adjust the generated settings form, train with a live loss plot.

The core's :func:`~napari_cryoden.training.train` generator runs in a napari worker thread. The
worker forwards its events in small batches (at most every 50 ms, so a fast CPU run cannot flood
the main thread); a slot on the main thread updates the plot (redrawn at most every 200 ms), the
progress bar and the status line. Stop sets the ``stop`` event the core polls at every step;
closing the widget or the viewer does the same and waits (bounded) for the thread to end.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from magicgui.types import FileDialogMode
from magicgui.widgets import Container, FileEdit
from qtpy.QtCore import QEvent, QObject, QTimer, Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget
from superqt import QCollapsible

from napari_cryoden._qt._models import MODELS
from napari_cryoden._qt._train_form import (
    ConfigForm,
    DataForm,
    FolderPair,
    LayerPair,
    prepare_pairs,
)
from napari_cryoden._qt.canvas import FigureCanvasWidget, apply_theme
from napari_cryoden.errors import CryodenError, InputError

if TYPE_CHECKING:
    import napari

    from napari_cryoden.config import Config

__all__ = ["TrainWidget", "LossPlot", "device_description", "default_run_dir"]

_BATCH_S = 0.05  # the worker yields at most this often while steps stream in
_REDRAW_MS = 200
_SHUTDOWN_S = 10.0


def default_run_dir() -> Path:
    """A new, not yet created folder ``~/.napari-cryoden/runs/<timestamp>``."""
    root = Path.home() / ".napari-cryoden" / "runs"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = root / stamp, 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{n}"
    return path


def device_description(choice: str) -> str:
    """What ``train.device = choice`` will run on, e.g. ``"CPU (8 threads)"`` (imports torch)."""
    import torch

    from napari_cryoden.training import select_device

    try:
        device = select_device(choice)
    except InputError:
        return f"{choice}: not available on this machine"
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"


# -- the worker side ------------------------------------------------------------------------
@dataclass
class _Job:
    """One training run's thread-shared state: the core's stop event and a done flag."""

    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    worker: Any = None
    events: Generator[list[Any], None, None] | None = None

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


def _run_events(job: _Job, source: LayerPair | FolderPair, config: Config, run_dir: Path,
                resume: bool) -> Generator[list[Any], None, None]:
    """Worker body: prepare the pairs, then forward the core's events in time-sliced batches.

    Once stopping, nothing is yielded until the core has saved its last weights and history,
    so that ``worker.quit()`` (which acts at a yield) never cuts the core's shutdown short.
    """
    from contextlib import closing

    from napari_cryoden.training import TrainStart, TrainStep, train

    batch: list[Any] = []
    try:
        train_pairs, val_pairs = prepare_pairs(source, run_dir, config)
        sent = time.monotonic()
        events = cast(Generator[Any, None, None], train(
            config, train_pairs, val_pairs, run_dir, stop=job.stop, resume=resume))
        with closing(events):
            for event in events:
                batch.append(event)
                if isinstance(event, TrainStart) and event.first_epoch > 1:  # resumed
                    batch.append(_PastCurves.read(event.run_dir, event.first_epoch,
                                                  event.steps_per_epoch))
                if job.stopping():
                    continue
                if (not isinstance(event, TrainStep) or event.step == 1
                        or time.monotonic() - sent >= _BATCH_S):
                    yield batch
                    batch, sent = [], time.monotonic()
    finally:
        job.done.set()
    if batch:
        yield batch  # after done: a quit() here leaves nothing unsaved


@dataclass(frozen=True)
class _PastCurves:
    """The plot points of the epochs before a resumed run's first, read in the worker."""

    steps: list[tuple[float, float]]  # (epoch - 1 + step / steps_per_epoch, loss)
    epochs: list[tuple[int, float, float | None]]  # (epoch, train loss, val loss)

    @classmethod
    def read(cls, run_dir: Path, first_epoch: int, steps_per_epoch: int) -> _PastCurves:
        try:
            history = json.loads((run_dir / "history.json").read_text())
        except (OSError, ValueError):
            return cls([], [])
        return cls([(s["epoch"] - 1 + s["step"] / steps_per_epoch, s["loss"])
                    for s in history.get("steps", []) if s["epoch"] < first_epoch],
                   [(e["epoch"], e["train_loss"], e.get("val_loss"))
                    for e in history.get("epochs", []) if e["epoch"] < first_epoch])


def _drive(events: Iterator[list[Any]]) -> Iterator[list[Any]]:
    """The worker's generator function; the widget keeps ``events`` to close it if abandoned."""
    yield from events


def _shutdown(jobs: list[_Job], plot_idle: threading.Event,
              timeout_s: float = _SHUTDOWN_S) -> None:
    """Stop every unfinished job and wait (at most ``timeout_s``) for the threads to end."""
    deadline = time.monotonic() + timeout_s
    for job in jobs:
        if job.done.is_set() and not (job.worker and job.worker.is_running):
            continue
        job.stop.set()
        if job.worker is not None:
            job.worker.quit()  # first: a worker not yet running will not start the generator
        while job.worker is not None and job.worker.is_running and time.monotonic() < deadline:
            job.done.wait(0.005)  # the core saves last weights and history, then returns
        job.close_if_abandoned()
    plot_idle.wait(max(deadline - time.monotonic(), 0))  # a preview frame being drawn


# -- the plot -------------------------------------------------------------------------------
def _loss_figure() -> Any:
    """One axes: per-step loss (raw, smoothed) and per-epoch train/val means, x in epochs."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4, 3.2), dpi=100)
    ax = figure.add_subplot()
    blue, orange = "#4f9be0", "#ff9f40"
    ax.plot([], [], color=blue, alpha=0.45, lw=0.8, label="train, per step")
    ax.plot([], [], color=blue, lw=1.6, label="train, smoothed")
    ax.plot([], [], ls="none", marker="o", color=blue, mec="white", label="train, epoch mean")
    ax.plot([], [], marker="o", color=orange, label="validation")
    ax.set(xlabel="epoch", ylabel="MSE loss")
    ax.grid(alpha=0.25)
    ax.legend(frameon=False, fontsize="small", loc="upper right")
    figure.text(0.5, 0.55, "The loss curves appear here\nwhile training.", ha="center",
                va="center", gid="placeholder")
    return figure


def _show_curves(figure: Any, curves: tuple[Any, ...], size_px: tuple[int, int] | None) -> None:
    """Put ``curves`` (x/y array pairs of the four lines) on ``figure``; fixed pixel margins."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    ax = figure.axes[0]
    if size_px is not None:
        width, height = size_px
        figure.set_size_inches(width / figure.dpi, height / figure.dpi)
        em = figure.dpi / 100  # margins in pixels at 100 dpi: room for tick and axis labels
        figure.subplots_adjust(left=min(80 * em / width, 0.4), right=1 - 12 * em / width,
                               bottom=min(50 * em / height, 0.4), top=1 - 10 * em / height)
    for line, (x, y) in zip(ax.lines, curves, strict=True):
        line.set_data(x, y)
    values = np.concatenate([y for _, y in curves])
    positive = values[values > 0]
    log = positive.size > 0 and positive.max() > 20 * positive.min()
    ax.set_yscale("log" if log else "linear")
    if log:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    empty = values.size == 0
    ax.set_autoscale_on(not empty)
    if empty:
        ax.set(xlim=(0, 1), ylim=(0, 1))
    else:
        ax.relim()
        ax.autoscale_view()
    ax.tick_params(labelleft=not empty, labelbottom=not empty)
    ax.get_legend().set_visible(not empty)
    for text in figure.texts:
        text.set_visible(empty and text.get_gid() == "placeholder")


def _render(figure: Any, curves: tuple[Any, ...], size_px: tuple[int, int], ratio: float,
            idle: threading.Event) -> Any:
    """Draw ``figure`` with Agg off the main thread; returns a QImage (a QPixmap is not
    thread-safe). Sets ``idle`` when done, so a GUI thread blocked in shutdown sees it."""
    from qtpy.QtGui import QImage

    try:
        figure.set_dpi(100 * ratio)
        _show_curves(figure, curves, (int(size_px[0] * ratio), int(size_px[1] * ratio)))
        figure.canvas.draw()
        rgba = np.asarray(figure.canvas.buffer_rgba())
        height, width = rgba.shape[:2]
        image = QImage(rgba.tobytes(), width, height, 4 * width, QImage.Format.Format_RGBA8888)
        image = image.copy()
        image.setDevicePixelRatio(ratio)
        return image
    finally:
        idle.set()


class LossPlot(QWidget):
    """Live loss curves. While training, frames are drawn by Agg in a pool thread (a full draw
    takes 100-300 ms on a busy laptop CPU, too long for the GUI thread) and shown as images,
    at most every 200 ms; when idle, the same curves sit on an interactive FigureCanvasWidget."""

    def __init__(self, viewer: napari.Viewer | None, alpha: float = 0.1,
                 parent: QWidget | None = None) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from qtpy.QtWidgets import QSizePolicy, QStackedLayout

        super().__init__(parent)
        self.viewer, self.alpha, self.frames = viewer, alpha, 0
        self.canvas = FigureCanvasWidget(viewer)
        self.preview = QLabel()
        self.preview.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self._stack = QStackedLayout(self)
        self._stack.addWidget(self.canvas)
        self._stack.addWidget(self.preview)
        self._figure = _loss_figure()  # touched only by the render thread once live
        FigureCanvasAgg(self._figure)
        apply_theme(self._figure, viewer)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(_REDRAW_MS)
        self._timer.timeout.connect(self._render_async)
        self.idle = threading.Event()  # no render in flight
        self.idle.set()
        self._dirty = self._retheme = False
        self._started = 0.0
        if viewer is not None:
            viewer.events.theme.connect(self._on_theme)
        self.clear()
        self.show_interactive()

    # -- data (main thread) -----------------------------------------------------------------
    def clear(self) -> None:
        self._steps: tuple[list[float], list[float], list[float]] = ([], [], [])  # x, raw, smooth
        self._epochs: dict[int, tuple[float, float | None]] = {}
        self._average = 0.0

    def add_step(self, epoch_fraction: float, loss: float) -> None:
        """One step's loss at ``epoch - 1 + step / steps_per_epoch``."""
        x, raw, smoothed = self._steps
        self._average = (1 - self.alpha) * self._average + self.alpha * loss
        x.append(epoch_fraction)
        raw.append(loss)
        smoothed.append(self._average / (1 - (1 - self.alpha) ** len(raw)))

    def add_epoch(self, epoch: int, train_loss: float, val_loss: float | None) -> None:
        self._epochs[epoch] = (train_loss, val_loss)

    def add_past(self, past: _PastCurves) -> None:
        """Start over with the curves of a resumed run's earlier epochs."""
        self.clear()
        for x, loss in past.steps:
            self.add_step(x, loss)
        for epoch, train_loss, val_loss in past.epochs:
            self.add_epoch(epoch, train_loss, val_loss)

    def points(self) -> int:
        """Points on the plot: one per step plus one per epoch and curve."""
        return len(self._steps[0]) + sum(1 + (val is not None) for _, val in self._epochs.values())

    def curves(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        x, raw, smoothed = (np.asarray(v, dtype=float) for v in self._steps)
        epochs = sorted(self._epochs)
        vals = [(e, self._epochs[e][1]) for e in epochs if self._epochs[e][1] is not None]
        return ((x, raw), (x, smoothed),
                (np.asarray(epochs, float), np.asarray([self._epochs[e][0] for e in epochs])),
                (np.asarray([e for e, _ in vals], float), np.asarray([v for _, v in vals])))

    # -- display ----------------------------------------------------------------------------
    def show_live(self) -> None:
        """Switch to the image preview (while training)."""
        if self._stack.currentWidget() is not self.preview:
            self.preview.setPixmap(self.canvas.canvas.grab())
            self._stack.setCurrentWidget(self.preview)

    def show_interactive(self) -> None:
        """Show the curves on the interactive canvas (zoom, pan, save); drawn on this thread."""
        self._timer.stop()
        figure = _loss_figure()
        _show_curves(figure, self.curves(), None)
        figure.set_layout_engine("constrained")
        self.canvas.show_figure(figure)
        self._stack.setCurrentWidget(self.canvas)

    def request_redraw(self) -> None:
        """Render a new frame within 200 ms (calls in between are merged)."""
        if not self._timer.isActive():
            self._timer.start()

    def _render_async(self) -> None:
        from superqt.utils import create_worker

        if not self.idle.is_set():
            self._dirty = True
            return
        self.idle.clear()
        if self._retheme:  # the figure is idle here: safe to touch
            apply_theme(self._figure, self.viewer)
            self._retheme = False
        self._started = time.monotonic()
        size = (max(self.preview.width(), 200), max(self.preview.height(), 150))
        worker = create_worker(_render, self._figure, self.curves(), size,
                               self.devicePixelRatioF(), self.idle, _start_thread=False,
                               _ignore_errors=True)
        worker.returned.connect(self._show_frame)
        worker.finished.connect(self._render_done)
        worker.start()

    def _show_frame(self, image: Any) -> None:
        from qtpy.QtGui import QPixmap

        self.frames += 1
        if self._stack.currentWidget() is self.preview:
            self.preview.setPixmap(QPixmap.fromImage(image))

    def _on_theme(self, event: object = None) -> None:
        self._retheme = True

    def _render_done(self) -> None:
        # frames cost CPU that training needs: keep drawing under ~1/3 of one core
        spent_ms = 1000 * (time.monotonic() - self._started)
        self._timer.setInterval(min(max(_REDRAW_MS, int(3 * spent_ms)), 1000))
        if self._dirty:
            self._dirty = False
            self.request_redraw()


# -- the widget -----------------------------------------------------------------------------
class TrainWidget(QWidget):
    """Train the denoiser on two Image layers or two folders, with a live loss plot.

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
        self._jobs: list[_Job] = []
        self._outcome: str | None = None  # "finished", "stopped" or "failed" once known
        self._progress_state: dict[str, Any] = {}
        self._build()
        self.destroyed.connect(  # closes over the thread-shared state only, not self
            lambda *_, jobs=self._jobs, idle=self.plot.idle: _shutdown(jobs, idle))
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
        self.device_label = QLabel()
        self.device_label.setToolTip("The device that will train ('device' setting).")
        self.form.widget("train.device").changed.connect(self._update_device)
        self._update_device()
        self.settings: Container[Any] = Container(labels=True)
        self.advanced: Container[Any] = Container(labels=True)
        self.settings.extend([*self.data.widgets, *self.form.basic, self.run_folder])
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
        self.device_label.setText(f"Training runs on: {device_description(choice)}")

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
            job.stop.set()
        if self.worker is not None:
            self.worker.quit()
        if self.is_running:
            self.status.setText("Stopping after the current step…")

    def shutdown(self, timeout_s: float = _SHUTDOWN_S) -> None:
        """Stop and wait (at most ``timeout_s``) until no training thread is left."""
        _shutdown(self._jobs, self.plot.idle, timeout_s)

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
        done = _epochs_done(folder)
        if done >= config.train.epochs:
            raise InputError(f"{folder.name} has already trained {done} epoch(s); raise "
                             f"'epochs' above {done} to continue it")
        return folder

    def _start_worker(self, config: Config, source: LayerPair | FolderPair, run_dir: Path,
                      resume: bool) -> None:
        from napari.qt.threading import create_worker

        job = _Job()
        job.events = _run_events(job, source, config, run_dir, resume)
        job.worker = worker = create_worker(_drive, job.events, _start_thread=False,
                                            _ignore_errors=True)
        self._jobs[:] = [j for j in self._jobs if not j.done.is_set()] + [job]
        self.worker = worker
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
        from napari_cryoden.training import (
            CheckpointSaved,
            EpochEnd,
            TrainEnd,
            TrainStart,
            TrainStep,
        )

        for event in events:
            if isinstance(event, TrainStep):
                self.plot.add_step(event.epoch - 1 + event.step / event.steps_per_epoch,
                                   event.loss)
                self._progress_state.update(done=self._progress_state["done"] + 1, last=event)
                self.step_finished.emit(event)
            elif isinstance(event, TrainStart):
                self._on_train_start(event)
            elif isinstance(event, _PastCurves):
                self.plot.add_past(event)
            elif isinstance(event, EpochEnd):
                self.plot.add_epoch(event.epoch, event.train_loss, event.val_loss)
                self.status.setText(_epoch_text(event))
                self.epoch_finished.emit(event)
            elif isinstance(event, CheckpointSaved) and event.kind == "best":
                MODELS.register(f"{event.path.parent.name} (training)", event.path)
            elif isinstance(event, TrainEnd):
                self._outcome = "stopped" if event.stopped else "finished"
                self.status.setText(_end_text(event))
        self._update_progress()
        self.plot.request_redraw()

    def _on_train_start(self, event: Any) -> None:
        total = max(event.epochs - event.first_epoch + 1, 0) * event.steps_per_epoch
        self._progress_state = {"start": event, "t0": time.monotonic(), "done": 0,
                                "total": total, "last": None}
        self.progress.setRange(0, max(total, 1))
        self.status.setText(f"Training on {event.device}: {event.n_train_patches} training / "
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


def _epochs_done(run_dir: Path) -> int:
    try:
        history = json.loads((run_dir / "history.json").read_text())
        return max((int(e["epoch"]) for e in history.get("epochs", [])), default=0)
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _epoch_text(event: Any) -> str:
    val = "" if event.val_loss is None else f", validation {event.val_loss:.5f}"
    best = " New best: saved best.safetensors." if event.is_best else ""
    return (f"Epoch {event.epoch}: training loss {event.train_loss:.5f}{val} "
            f"({event.seconds:.1f} s).{best}")


def _end_text(event: Any) -> str:
    state = "Stopped" if event.stopped else "Finished"
    if event.best_epoch is None:
        return f"{state} after {event.epochs_completed} epoch(s); no best checkpoint yet."
    return (f"{state} after {event.epochs_completed} epoch(s); best epoch {event.best_epoch} "
            f"(loss {event.best_val_loss:.5f}) in {event.run_dir / 'best.safetensors'}.")
