"""*Denoise files on disk…*: denoise a folder (or several files) into an output folder.

A collapsed section at the end of the Denoise panel. It uses the panel's model, device and (if
the panel has one) pixel cutoff. The user picks micrographs (a folder: its images by the format
table; or several files) and an output folder (empty: ``<input>/denoised``), clicks *Start*, and
sees "file 3/20 · ~40 s left". The core's
:func:`~napari_cryoden.inference.batch.run_folder_job` runs in a napari worker and yields one
result per file; a bad file gives a one-line message naming it and the run goes on. *Cancel*
sets the job's stop event, which the core checks after every batch of tiles; outputs are written
atomically, so no half-written file is left. Outputs that already exist are skipped or
overwritten only as the user says (*If an output exists*: ask, skip, overwrite). The finished
files are listed; *Open* (or a double-click) opens them in the viewer with the plugin's reader.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.types import FileDialogMode
from magicgui.widgets import ComboBox, Container, FileEdit, Label, ProgressBar, PushButton, Select
from napari.utils.notifications import show_error, show_warning
from psygnal import Signal
from qtpy.QtWidgets import QFileDialog, QMessageBox
from superqt import QCollapsible
from superqt.utils import ensure_main_thread

from napari_cryoden._qt.denoise.scale import AUTO, BIN, RECORDED, WORKING
from napari_cryoden.errors import Cancelled, InputError
from napari_cryoden.inference.batch import (
    FileResult,
    FolderJob,
    default_output_folder,
    micrographs_in,
    plan_outputs,
    remaining_seconds,
    run_folder_job,
    star_job,
)
from napari_cryoden.inference.smoothing import Smoothing

if TYPE_CHECKING:
    import napari

__all__ = ["ASK", "EXISTING", "FolderDenoise", "OVERWRITE", "SKIP", "project_folder_edit"]

ASK, SKIP, OVERWRITE = "ask", "skip", "overwrite"
OUT_DTYPES = ("float32", "float16")
EXISTING = (ASK, SKIP, OVERWRITE)
STEPS = 1000  # of the progress bar, for a smooth bar over files and tiles
TITLE = "Denoise files on disk…"


class FolderDenoise(Container):
    """Denoise micrograph files into a folder with the Denoise panel's model, cancellable."""

    finished = Signal(list)
    """Emitted with the run's :class:`FileResult` list when it ends, cancelled or not."""

    def __init__(self, viewer: napari.viewer.Viewer, panel: Any) -> None:
        super().__init__(labels=True)
        self.viewer, self.panel = viewer, panel
        self.worker: Any = None
        self.results: list[FileResult] = []
        self.ask_box: QMessageBox | None = None
        self._outputs: list[tuple[str, Path]] = []
        self._job: FolderJob | None = None
        self._stop = threading.Event()
        self._total, self._started = 0, 0.0
        self._build()
        self._connect()
        self.section = QCollapsible(TITLE)
        self.section.addWidget(self.native)
        self.section.setToolTip("Denoise a folder of micrographs (or several files) into an "
                                "output folder, with the model chosen above.")

    # ---- building ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.inputs = FileEdit(label="Micrographs", mode=FileDialogMode.EXISTING_FILES, tooltip=(
            "Micrograph files (MRC, TIFF), a folder (all its micrographs), or a RELION STAR "
            "file (e.g. CtfFind/job003/micrographs_ctf.star: the micrographs it lists, their "
            "folders kept under the output folder, and the STAR file written there with the "
            "denoised paths). 'Files…' picks files; 'Folder…' picks a folder."))
        self.project = project_folder_edit()
        self.folder_button = PushButton(text="Folder…", tooltip="Pick a folder of micrographs.")
        self.output = FileEdit(label="Output folder", mode=FileDialogMode.EXISTING_DIRECTORY,
                               tooltip="Where the denoised MRC files go, with the inputs' names. "
                                       "Empty: a folder 'denoised' next to the inputs.")
        self.output.line_edit.native.setPlaceholderText("<input>/denoised")
        self.out_dtype = ComboBox(label="Output", choices=OUT_DTYPES, value=OUT_DTYPES[0],
                                  tooltip=("float32 MRC, or float16 (MRC mode 12: half the "
                                           "disk, about 3 significant digits)."))
        self.existing = ComboBox(label="If an output exists", choices=EXISTING, value=ASK,
                                 tooltip="ask: ask before the run; skip: keep the existing file; "
                                         "overwrite: replace it. Inputs are never overwritten.")
        self.start_button = PushButton(text="Start", tooltip="Denoise every file, one by one.")
        self.cancel_button = PushButton(text="Cancel", enabled=False, tooltip=(
            "Stop after the current batch of tiles; finished files are kept, the current one "
            "is not written."))
        self.progress = ProgressBar(label="Progress", value=0, min=0, max=STEPS)
        self.status = Label(label="", value="")
        self.problems = Label(label="", value="", visible=False)
        for label in (self.status, self.problems):
            label.native.setWordWrap(True)  # one line per message, however long the path
        self.done_list = Select(label="Denoised", choices=[], allow_multiple=True, tooltip=(
            "The files written; double-click one, or select and click Open, to view it."))
        self.open_button = PushButton(text="Open", tooltip="Open the selected files in napari.")
        self.inputs.choose_btn.text = "Files…"
        # one row: Micrographs [path] [Files…] [Folder…]
        self.inputs.native.layout().addWidget(self.folder_button.native)
        self.done_list.native.setMaximumHeight(90)  # about five names; it scrolls
        buttons = Container(widgets=[self.start_button, self.cancel_button], layout="horizontal",
                            labels=False)
        buttons.margins = (0, 0, 0, 0)
        self.extend([self.inputs, self.project, self.output, self.out_dtype, self.existing,
                     buttons, self.progress, self.status, self.problems, self.done_list,
                     self.open_button])

    def _connect(self) -> None:
        self.folder_button.clicked.connect(self._pick_folder)
        self.inputs.changed.connect(self._show_project)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.open_button.clicked.connect(self.open_selected)
        self.done_list.native.itemDoubleClicked.connect(self._on_double_click)
        self._show_tiles = ensure_main_thread(self._on_tiles)

    def _pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.native, "Folder of micrographs")
        if folder:
            self.inputs.line_edit.value = folder

    def _chosen(self) -> list[Path]:
        value = self.inputs.value
        chosen = value if isinstance(value, tuple) else () if value is None else (value,)
        return [Path(p) for p in chosen if str(p) not in ("", ".")]

    def _star_file(self) -> Path | None:
        """The micrograph list chosen, if the choice is one ``.star`` (or cryoSPARC ``.cs``)."""
        items = self._chosen()
        return (items[0] if len(items) == 1 and items[0].suffix.lower() in (".star", ".cs")
                else None)

    def _show_project(self) -> None:
        star = self._star_file()
        self.project.visible = star is not None
        placeholder = "<STAR file's folder>/denoised" if star else "<input>/denoised"
        self.output.line_edit.native.setPlaceholderText(placeholder)

    # ---- starting -----------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether a run is in progress."""
        return self.worker is not None

    def start(self) -> None:
        """Check the choices, ask about existing outputs if need be, and start the run.

        A STAR file is read, and its micrographs looked for, in a worker (thousands of files):
        the run starts when that is done.
        """
        if self.busy:
            return
        try:
            job = self._make_job()
        except Exception as exc:  # a slot must not raise: tell the user instead
            self._refuse(exc)
            return
        if isinstance(job, FolderJob):
            self._planned(job)
            return
        from napari.qt.threading import create_worker

        self.status.value = f"reading {self._star_file()}…"
        self.start_button.enabled = False
        self.worker = create_worker(job, _connect={"returned": self._planned,
                                                   "errored": self._refuse})

    def _refuse(self, exc: BaseException) -> None:
        self.worker = None
        self.start_button.enabled = True
        self.status.value = str(exc)
        show_error(str(exc))

    def _planned(self, job: FolderJob) -> None:
        """Ask about existing outputs if need be, then launch ``job``."""
        self.worker = None
        self.start_button.enabled = True
        existing = [out for out in job.planned_outputs() if out.exists()]
        if not existing or self.existing.value != ASK:
            self._launch(replace(job, overwrite=self.existing.value == OVERWRITE))
            return
        self._ask(job, existing)

    def _make_job(self) -> FolderJob | Callable[[], FolderJob]:
        """The job, or (for a STAR file) a function that reads the file and returns it."""
        items = self._chosen()
        if not items:
            raise InputError("No micrographs chosen: pick a folder, files or a STAR file "
                             "under Micrographs")
        weights = self.panel.model.value
        if weights is None:
            raise InputError("No model chosen: pick one under Model above")
        text = self.output.line_edit.value.strip()
        working, bin_factor = self._scale_choice()
        options = {"device": self.panel.device.value, "pixel_cutoff": self._pixel_cutoff(),
                   "working": working, "bin_factor": bin_factor,
                   "out_dtype": self.out_dtype.value, "smooth": self._smooth()}
        star = self._star_file()
        if star is not None:
            project = self.project.line_edit.value.strip() or None
            out = Path(text) if text else None
            return partial(star_job, star, out, weights, project, **options)
        files = micrographs_in(items)
        out_dir = Path(text) if text else default_output_folder(items)
        plan_outputs(files, out_dir)
        return FolderJob(tuple(files), out_dir, weights, **options)

    def _scale_choice(self) -> tuple[float | str | None, float | None]:
        """The panel's Working pixel size as ``(working, bin_factor)`` of each file's plan."""
        choice = getattr(getattr(self.panel, "scale_choice", None), "value", AUTO)
        value = float(getattr(getattr(self.panel, "scale_value", None), "value", 1.0))
        return {RECORDED: (None, 1.0), BIN: (None, value),
                WORKING: (value, None)}.get(choice, ("auto", None))

    def _smooth(self) -> Smoothing:
        """The panel's Smoothing and Detail kept (off at σ 0)."""
        smoothing = getattr(self.panel, "smoothing", None)
        return smoothing() if callable(smoothing) else Smoothing()

    def _pixel_cutoff(self) -> float | None:
        widget = getattr(self.panel, "pixel_cutoff", None)
        value = getattr(widget, "value", None)
        return float(value) if value else None

    def _ask(self, job: FolderJob, existing: list[Path]) -> None:
        """Ask, without blocking the UI thread, whether to skip or overwrite existing outputs."""
        box = QMessageBox(QMessageBox.Icon.Question, TITLE, (
            f"{len(existing)} of the {len(job.files)} outputs already exist in {job.out_dir} "
            f"(e.g. {existing[0].name})."), parent=self.native)
        skip = box.addButton("Skip them", QMessageBox.ButtonRole.AcceptRole)
        overwrite = box.addButton("Overwrite them", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)

        def answered() -> None:
            clicked, self.ask_box = box.clickedButton(), None
            if clicked in (skip, overwrite):
                self._launch(replace(job, overwrite=clicked is overwrite))

        box.finished.connect(answered)
        self.ask_box = box
        box.open()

    def _launch(self, job: FolderJob) -> None:
        from napari.qt.threading import create_worker

        self.results, self._total, self._job = [], len(job.files), job
        self._stop = threading.Event()
        self._started = time.perf_counter()
        self._outputs = []
        self.done_list.choices = []
        self.problems.value, self.problems.visible = "", False
        self.progress.value = 0
        self.status.value = f"file 1/{self._total} · loading the model…"
        self.start_button.enabled, self.cancel_button.enabled = False, True
        self.worker = create_worker(run_folder_job, job, self._stop, self._show_tiles, _connect={
            "yielded": self._on_file, "errored": self._on_errored,
            "finished": self._on_finished})

    # ---- running ------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop the run after the current batch of tiles; finished files are kept."""
        if self.busy:
            self._stop.set()
            self.status.value = "cancelling…"

    def _on_tiles(self, done: int, total: int) -> None:
        if self.worker is None or self._stop.is_set():
            return
        self._show_fraction(len(self.results) + done / max(total, 1))

    def _show_fraction(self, files_done: float) -> None:
        fraction = files_done / max(self._total, 1)
        self.progress.value = round(STEPS * min(fraction, 1.0))
        left = remaining_seconds(time.perf_counter() - self._started, fraction)
        current = min(int(files_done) + 1, self._total)
        eta = "estimating…" if left is None else f"~{_duration(left)} left"
        self.status.value = f"file {current}/{self._total} · {eta}"

    def _on_file(self, result: FileResult) -> None:
        self.results.append(result)
        if result.status == "done":
            self._outputs.append((result.output.name, result.output))
            self.done_list.choices = list(self._outputs)
        elif result.status == "failed":
            lines = [line for line in (self.problems.value, result.message) if line]
            self.problems.value, self.problems.visible = "\n".join(lines), True
        self._show_fraction(len(self.results))

    def _on_errored(self, exc: BaseException) -> None:
        if isinstance(exc, Cancelled):
            return
        self.status.value = f"Stopped: {exc}"
        show_error(f"Denoising files failed: {exc}")

    def _on_finished(self) -> None:
        self.worker = None
        self.start_button.enabled, self.cancel_button.enabled = True, False
        self.status.value = self._summary()
        failed = [r for r in self.results if r.status == "failed"]
        if failed:
            show_warning(f"{len(failed)} file(s) could not be denoised; the first: "
                         f"{failed[0].message}")
        self.finished.emit(list(self.results))

    def _summary(self) -> str:
        counts = {s: sum(r.status == s for r in self.results) for s in ("done", "skipped",
                                                                         "failed")}
        parts = [f"{counts['done']} denoised"]
        parts += [f"{n} {s}" for s, n in counts.items() if s != "done" and n]
        head = "Cancelled" if self._stop.is_set() else "Done"
        seconds = _duration(time.perf_counter() - self._started)
        scales = {r.scale for r in self.results if r.scale}
        scale = "" if not scales else f", {scales.pop()}" if len(scales) == 1 else (
            ", at several pixel sizes")
        return f"{head}: {', '.join(parts)} of {self._total} in {seconds}{scale}{self._star()}"

    def _star(self) -> str:
        """``; wrote …/x.star`` when the run's STAR file was written, or why it was not."""
        job = self._job
        if job is None or job.star_output is None:
            return ""
        if self._stop.is_set() or len(self.results) < self._total:
            return f"; {job.star_output.name} not written (the run did not finish)"
        if any(r.status == "failed" for r in self.results):
            return f"; {job.star_output.name} not written (some micrographs failed)"
        return f"; wrote {job.star_output}"

    # ---- opening results ---------------------------------------------------------------------
    def open_selected(self) -> list[Any]:
        """Open the selected denoised files in the viewer; return the new layers."""
        paths = list(self.done_list.value)
        if not paths:
            show_warning("Select a denoised file in the list first")
            return []
        return [layer for path in paths for layer in self._open(path)]

    def _on_double_click(self, item: Any) -> None:
        paths = [p for name, p in self._outputs if name == item.text()]
        for path in paths:
            self._open(path)

    def _open(self, path: Path) -> list[Any]:
        try:
            layers = list(self.viewer.open(path, plugin="napari-cryoden"))
        except Exception as exc:  # e.g. the file was moved meanwhile
            show_error(f"{path}: cannot open ({exc})")
            return []
        for layer in layers:  # the output has its input's name: say which one this is
            layer.name = f"{path.stem} denoised"
        return layers


def project_folder_edit() -> FileEdit:
    """The hidden *Project folder* row shown beside a STAR file (empty: found from the file)."""
    edit = FileEdit(label="Project folder", mode=FileDialogMode.EXISTING_DIRECTORY, visible=False,
                    tooltip=("The folder the STAR file's paths start from (RELION's project "
                             "folder). Empty: the one folder at or above the STAR file that "
                             "holds its first micrograph."))
    edit.line_edit.native.setPlaceholderText("found from the STAR file")
    return edit


def _duration(seconds: float) -> str:
    """``4 s``, ``2 min 5 s``, ``1 h 3 min``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"
