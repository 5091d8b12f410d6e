"""The Browse panel: a folder or STAR file of micrographs as a list, one shown at a time.

The user opens a folder, a RELION STAR file (its micrograph table, names resolved from the
project folder as ``cryoden denoise --star`` does) or a cryoSPARC ``.cs`` file; the list is read
in a worker and shown by name (for a STAR file, the path under the project folder). Clicking a
name, *Previous* or *Next* shows that micrograph in one image layer, named after it, whose data,
pixel size and contrast (percentiles of the micrograph itself, so hot pixels do not set the
range: :func:`napari_cryoden.io.intensity.contrast_limits`) are replaced; the file is read in a
worker, and the next one is read ahead, so stepping through a dataset does not wait on the disk.
A result that arrives after the user moved on is dropped.

*Picks* (a RELION STAR, ``.box`` or ``.coord`` file, or a folder of them) are matched to the
micrographs by name (:func:`napari_cryoden.io.picks.match_picks`) and shown as one Points layer,
``"<name> picks"``, following the micrograph shown.

Denoising is the Denoise panel's, with its model, device, working pixel size and region: *Denoise
this* opens that panel (if it is not open), chooses the micrograph shown as its Image and starts
it; *Denoise all…* hands the list to its *Denoise files on disk…* section (folder tree and STAR
file written as there) and starts it. Files written by that run are shown beside their
micrograph as ``"<name> denoised"`` when it is browsed. Moving on closes the denoised layer of
the micrograph left (a result of *Denoise this* that was not saved is lost, as the status line
says).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.types import FileDialogMode
from magicgui.widgets import Container, FileEdit, Label, PushButton
from napari.utils.notifications import show_error
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QAbstractItemView, QFileDialog, QListWidget

from napari_cryoden._qt.denoise.folder import project_folder_edit
from napari_cryoden._qt.denoise.sections import Sections, wrap_text
from napari_cryoden.errors import InputError

if TYPE_CHECKING:
    import napari
    from napari.layers import Image, Points

    from napari_cryoden.io.picks import Picks

__all__ = ["BrowseWidget", "Dataset", "Loaded", "list_dataset", "load_micrograph"]

PLUGIN = "napari-cryoden"
LIST_ROWS = (3, 6)  # the list's least and greatest height in rows; it scrolls
TYPING_MS = 400  # a typed path is opened once typing pauses this long


@dataclass(frozen=True)
class Dataset:
    """The micrographs of a folder or STAR file, in order, and what each is called in the list."""

    source: Path
    files: tuple[Path, ...]
    labels: tuple[str, ...]
    project: Path | None = None
    """The project folder a STAR file's names were resolved against (None for a folder)."""


@dataclass(frozen=True)
class Loaded:
    """One micrograph read for display (worker thread)."""

    index: int
    path: Path
    data: np.ndarray
    pixel_size: float
    limits: tuple[float, float]


def is_micrograph_list(path: Path) -> bool:
    """Whether ``path`` names a STAR or cryoSPARC ``.cs`` micrograph list."""
    return path.suffix.lower() in (".star", ".cs")


def list_dataset(source: str | os.PathLike[str],
                 project: str | os.PathLike[str] | None = None) -> Dataset:
    """List the micrographs of a folder, or of a STAR / ``.cs`` file (every one looked for).

    Raises
    ------
    InputError
        The folder holds no micrographs, or the STAR file is bad or names a missing file.
    """
    from napari_cryoden.io.images import list_images
    from napari_cryoden.io.star import read_micrograph_star

    source = Path(source)
    if is_micrograph_list(source):
        star = read_micrograph_star(source, project)
        labels = tuple(star.relative(f).as_posix() for f in star.files)
        return Dataset(source, tuple(star.files), labels, star.project)
    if project is not None:
        raise InputError(f"{source}: a project folder goes with a STAR file, not a folder")
    files = list_images(source)
    return Dataset(source, tuple(files), tuple(f.name for f in files))


def load_micrograph(index: int, path: Path) -> Loaded:
    """Read a micrograph and its display contrast (worker thread)."""
    from napari_cryoden.io.images import read_image
    from napari_cryoden.io.intensity import contrast_limits

    data, pixel_size = read_image(path)
    return Loaded(index, path, data, pixel_size, contrast_limits(data))


def read_dataset_picks(path: Path, files: tuple[Path, ...]) -> dict[str, Picks]:
    """The picks of a file or folder matched to the micrographs by stem (worker thread)."""
    from napari_cryoden.io.picks import match_picks

    return match_picks(path, files)


class BrowseWidget(Sections, Container):
    """Step through a folder or STAR file of micrographs; denoise the one shown or all."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        self.dataset: Dataset | None = None
        self.current = -1  # the row shown
        self.layer: Image | None = None
        self.points: Points | None = None
        self.denoised: Image | None = None
        self.picks: dict[str, Picks] = {}
        self.outputs: dict[Path, Path] = {}  # micrograph → its file written by Denoise all
        self._ahead: Loaded | None = None  # the next micrograph, read ahead
        self._wanted = -1  # the index whose load is awaited; other results are dropped
        self._build()
        self._connect()

    # ---- building ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.source = FileEdit(label="Micrographs", mode=FileDialogMode.EXISTING_FILE, tooltip=(
            "A RELION STAR file (e.g. CtfFind/job003/micrographs_ctf.star) or cryoSPARC .cs "
            "file listing micrographs, or a folder of them (Folder…)."))
        self.source.line_edit.native.setPlaceholderText("a folder or a STAR file")
        self.source.choose_btn.text = "File…"
        self.folder_button = PushButton(text="Folder…", tooltip="Pick a folder of micrographs.")
        self.source.native.layout().addWidget(self.folder_button.native)
        self.project = project_folder_edit()
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setToolTip("Click a micrograph to show it; Up/Down step through the list.")
        row = self.list.fontMetrics().lineSpacing() + 2
        frame = 2 * self.list.frameWidth() + 4
        self.list.setMinimumHeight(row * LIST_ROWS[0] + frame)  # short: the panel fits a
        self.list.setMaximumHeight(row * LIST_ROWS[1] + frame)  # laptop beside Denoise
        self.list_row: Container[Any] = Container(labels=False)
        self.list_row.native.layout().addWidget(self.list)
        self.list_row.label = "List"
        self.previous_button = PushButton(text="◀ Previous", enabled=False,
                                          tooltip="Show the micrograph above in the list.")
        self.next_button = PushButton(text="Next ▶", enabled=False,
                                      tooltip="Show the micrograph below in the list.")
        steps = Container(widgets=[self.previous_button, self.next_button], layout="horizontal",
                          labels=False, label="")
        steps.margins = (0, 0, 0, 0)
        self.picks_file = FileEdit(label="Picks (optional)", mode=FileDialogMode.EXISTING_FILE,
                                   tooltip=(
                                       "A RELION STAR (coordinates or particles), .box or .coord "
                                       "file, or a folder of them: shown on each micrograph "
                                       "they are named after."))
        self.picks_file.line_edit.native.setPlaceholderText("none")
        self.picks_folder_button = PushButton(text="Folder…",
                                              tooltip="Pick a folder of pick files.")
        self.picks_file.native.layout().addWidget(self.picks_folder_button.native)
        self.denoise_button = PushButton(text="Denoise this", enabled=False, tooltip=(
            "Denoise the micrograph shown with the Denoise panel (opened if need be): its model, "
            "device, working pixel size and region."))
        self.all_button = PushButton(text="Denoise all…", enabled=False, tooltip=(
            "Denoise every micrograph of the list into a folder with the Denoise panel's "
            "'Denoise files on disk…' (a STAR file's tree and list are written there too)."))
        runs = Container(widgets=[self.denoise_button, self.all_button], layout="horizontal",
                         labels=False, label="")
        runs.margins = (0, 0, 0, 0)
        self.status = Label(label="", value="Open a folder or a STAR file of micrographs.")
        wrap_text(self.status)
        self.main: Container[Any] = Container(labels=True, widgets=[
            self.source, self.project, self.list_row, steps, self.picks_file, runs,
            self.status])
        self._lay_out(self.main)

    def _connect(self) -> None:
        self.folder_button.clicked.connect(self._pick_folder)
        self.picks_folder_button.clicked.connect(self._pick_picks_folder)
        self._typed = QTimer()  # a typed path: wait for a pause in the typing
        self._typed.setSingleShot(True)
        self._typed.setInterval(TYPING_MS)
        self._typed.timeout.connect(self._on_source_changed)
        self.source.changed.connect(self._restart_typing)
        self.project.changed.connect(self._restart_typing)
        self.picks_file.changed.connect(self._on_picks_changed)
        self.list.currentRowChanged.connect(self.show_row)
        self.previous_button.clicked.connect(lambda: self.step(-1))
        self.next_button.clicked.connect(lambda: self.step(1))
        self.denoise_button.clicked.connect(self.denoise_this)
        self.all_button.clicked.connect(self.denoise_all)
        self.viewer.layers.events.removed.connect(self._on_layer_removed)

    def _restart_typing(self, *_: Any) -> None:
        self._typed.start()

    def _pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.native, "Folder of micrographs")
        if folder:
            self.source.line_edit.value = folder

    def _pick_picks_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.native, "Folder of pick files")
        if folder:
            self.picks_file.line_edit.value = folder

    # ---- the list ---------------------------------------------------------------------------
    def _chosen(self, edit: FileEdit) -> Path | None:
        text = edit.line_edit.value.strip()
        return Path(text) if text else None

    def _on_source_changed(self, *_: Any) -> None:
        source = self._chosen(self.source)
        self.project.visible = source is not None and is_micrograph_list(source)
        if source is not None:
            self.open(source, self._chosen(self.project) if self.project.visible else None)

    def open(self, source: Path, project: Path | None = None) -> None:
        """List the micrographs of ``source`` (folder or STAR file) in a worker, then show the
        first; a bad source leaves the list as it was and says why in one line."""
        from napari.qt.threading import create_worker

        self.status.value = f"reading {source}…"
        create_worker(list_dataset, source, project,
                      _connect={"returned": self._on_listed, "errored": self._say})

    def _say(self, exc: BaseException) -> None:
        """A problem with what is typed or chosen: the status line says it (no pop-up)."""
        self.status.value = str(exc)

    def _refuse(self, exc: BaseException) -> None:
        """A problem with what the user asked for: the status line and a notification."""
        self._say(exc)
        show_error(str(exc))

    def _on_listed(self, dataset: Dataset) -> None:
        self.dataset, self.current, self._ahead, self.outputs = dataset, -1, None, {}
        self.list.blockSignals(True)
        self.list.clear()
        self.list.addItems(list(dataset.labels))
        self.list.blockSignals(False)
        for button in (self.denoise_button, self.all_button):
            button.enabled = True
        if self._chosen(self.picks_file) is not None:
            self._on_picks_changed()
        self.list.setCurrentRow(0)  # shows it

    def step(self, by: int) -> None:
        """Show the micrograph ``by`` rows below (negative: above) the one shown."""
        if self.dataset is None:
            return
        row = int(np.clip(self.current + by, 0, len(self.dataset.files) - 1))
        if row != self.current:
            self.list.setCurrentRow(row)

    # ---- showing one ------------------------------------------------------------------------
    def show_row(self, row: int) -> None:
        """Show micrograph ``row`` of the list (read in a worker unless read ahead)."""
        if self.dataset is None or not 0 <= row < len(self.dataset.files):
            return
        self.current, self._wanted = row, row
        n = len(self.dataset.files)
        self.previous_button.enabled, self.next_button.enabled = row > 0, row < n - 1
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead.index == row:
            self._on_loaded(ahead)
            return
        self.status.value = f"{row + 1}/{n} · reading {self.dataset.labels[row]}…"
        self._read(row, self._on_loaded)

    def _read(self, row: int, then: Any) -> None:
        from napari.qt.threading import create_worker

        assert self.dataset is not None
        create_worker(load_micrograph, row, self.dataset.files[row],
                      _connect={"returned": then, "errored": self._on_load_failed(row)})

    def _on_load_failed(self, row: int) -> Any:
        def failed(exc: BaseException) -> None:
            if row == self._wanted:
                self._refuse(exc)
        return failed

    def _current_read(self, loaded: Loaded, index: int) -> bool:
        """Whether ``loaded`` is row ``index`` of the list shown now (not of a list left)."""
        files = self.dataset.files if self.dataset is not None else ()
        return loaded.index == index and index < len(files) and files[index] == loaded.path

    def _on_loaded(self, loaded: Loaded) -> None:
        if self.dataset is None or not self._current_read(loaded, self._wanted):
            return  # the user moved on meanwhile, or opened another list
        from napari_cryoden.data.pairs import micrograph_name

        name = micrograph_name(loaded.path)
        self._close_denoised()
        layer = self.layer if self.layer is not None and self.layer in self.viewer.layers else None
        scale = (1.0,) * (loaded.data.ndim - 2) + (loaded.pixel_size,) * 2
        meta = {"pixel_size": loaded.pixel_size, "path": str(loaded.path)}
        if layer is None or layer.data.ndim != loaded.data.ndim:
            if layer is not None:
                self.viewer.layers.remove(layer)
            layer = self.viewer.add_image(loaded.data, name=name, scale=scale,
                                          contrast_limits=loaded.limits, metadata=meta)
        else:
            reshaped = layer.data.shape != loaded.data.shape
            layer.data = loaded.data
            layer.name, layer.scale, layer.metadata = name, scale, meta
            layer.contrast_limits_range = loaded.limits
            layer.contrast_limits = loaded.limits
            if reshaped:  # same size: keep the user's zoom, to compare one region across
                self.viewer.reset_view()
        self.layer = layer
        self._show_picks(loaded.path)
        self._show_output(loaded.path)
        n = len(self.dataset.files)
        shape = "×".join(str(s) for s in loaded.data.shape[::-1])
        self.status.value = (f"{loaded.index + 1}/{n} · {self.dataset.labels[loaded.index]} · "
                             f"{shape} px, {loaded.pixel_size:g} Å/px"
                             f"{self._picks_note(loaded.path)}")
        if loaded.index + 1 < n:  # read the next one ahead
            self._read(loaded.index + 1, self._on_read_ahead)

    def _on_read_ahead(self, loaded: Loaded) -> None:
        if self._current_read(loaded, self.current + 1):
            self._ahead = loaded

    def _on_layer_removed(self, event: Any) -> None:
        if event.value is self.layer:
            self.layer = None
        elif event.value is self.points:
            self.points = None
        elif event.value is self.denoised:
            self.denoised = None

    # ---- picks ------------------------------------------------------------------------------
    def _on_picks_changed(self, *_: Any) -> None:
        path = self._chosen(self.picks_file)
        if path is None or self.dataset is None:
            self.picks = {}
            if self.layer is not None:
                self._show_picks(Path(self.layer.metadata.get("path", "")))
            return
        from napari.qt.threading import create_worker

        self.status.value = f"reading picks from {path}…"
        create_worker(read_dataset_picks, path, self.dataset.files,
                      _connect={"returned": self._on_picks_read, "errored": self._say})

    def _on_picks_read(self, picks: dict[str, Picks]) -> None:
        self.picks = picks
        if self.layer is not None and self.dataset is not None and self.current >= 0:
            self._show_picks(self.dataset.files[self.current])
            n = sum(len(p.xy) for p in picks.values())
            self.status.value = (f"{n} picks on {len(picks)} of the "
                                 f"{len(self.dataset.files)} micrographs")

    def _show_picks(self, path: Path) -> None:
        from napari_cryoden._qt.inspect.halves import pixels_to_points

        picks = self.picks.get(path.stem)
        points = self.points if self.points in self.viewer.layers else None
        if (picks is None or self.layer is None) and points is None:
            return
        xy = np.zeros((0, 2)) if picks is None else picks.xy
        size = (picks.box_size if picks is not None and picks.box_size else 64.0)
        where = pixels_to_points(xy, self.layer)
        name = f"{self.layer.name} picks" if self.layer is not None else "picks"
        if points is None:
            self.points = self.viewer.add_points(name=name, size=size, face_color="transparent",
                                                 border_color="yellow", **where)
            return
        points.scale, points.translate = where["scale"], where["translate"]
        points.data = where["data"]
        points.size = size
        points.name = name

    def _picks_note(self, path: Path) -> str:
        if not self.picks:
            return ""
        found = self.picks.get(path.stem)
        return " · no picks" if found is None else f" · {len(found.xy)} picks"

    # ---- denoising --------------------------------------------------------------------------
    def _denoise_panel(self) -> Any:
        _, panel = self.viewer.window.add_plugin_dock_widget(PLUGIN, "Denoise")
        return panel

    def denoise_this(self) -> None:
        """Denoise the micrograph shown with the Denoise panel (opened if need be)."""
        if self.layer is None or self.layer not in self.viewer.layers:
            self._refuse(InputError("No micrograph shown: open a folder or a STAR file first"))
            return
        panel = self._denoise_panel()
        panel.reset_choices()
        panel.image.value = self.layer
        self._follow(panel.finished, self._on_denoised)
        panel.start()

    def _on_denoised(self, layer: Image) -> None:
        name = f"{self.layer.name} denoised" if self.layer is not None else None
        if layer.name == name and name in self.viewer.layers:
            self.denoised = self.viewer.layers[name]  # not ``layer``: napari proxies a plugin's
            self.status.value = (f"{self.status.value.split(' · denoised')[0]} · denoised "
                                 "(not saved: moving on closes it; File ▸ Save Selected Layer "
                                 "keeps it)")

    def denoise_all(self) -> None:
        """Hand the list to the Denoise panel's *Denoise files on disk…* and start it."""
        if self.dataset is None:
            self._refuse(InputError("No micrographs listed: open a folder or a STAR file first"))
            return
        panel = self._denoise_panel()
        folder = panel.folder
        folder.inputs.line_edit.value = str(self.dataset.source)
        if self.dataset.project is not None:
            folder.project.line_edit.value = str(self.dataset.project)
        folder.section.expand(animate=False)
        self._follow(folder.finished, self._on_all_done)
        folder.start()

    def _follow(self, signal: Any, slot: Any) -> None:
        """Connect ``slot`` to the Denoise panel's ``signal`` once (the panel outlives runs)."""
        signal.disconnect(slot, missing_ok=True)
        signal.connect(slot)

    def _on_all_done(self, results: list[Any]) -> None:
        for result in results:
            if result.status in ("done", "skipped"):
                self.outputs[Path(result.source).resolve()] = Path(result.output)
        if self.dataset is not None and 0 <= self.current < len(self.dataset.files):
            self._show_output(self.dataset.files[self.current])

    def _close_denoised(self) -> None:
        if self.denoised is not None and self.denoised in self.viewer.layers:
            self.viewer.layers.remove(self.denoised)
        self.denoised = None

    def _show_output(self, path: Path) -> None:
        """Show the file Denoise all wrote for ``path``, if any, as ``"<name> denoised"``."""
        output = self.outputs.get(path.resolve())
        if output is None or self.layer is None or not output.is_file():
            return
        from napari.qt.threading import create_worker

        index = self.current

        def show(loaded: Loaded) -> None:
            if self.layer is None or index != self.current:
                return
            self._close_denoised()
            self.denoised = self.viewer.add_image(
                loaded.data, name=f"{self.layer.name} denoised", scale=self.layer.scale,
                contrast_limits=loaded.limits, metadata={"path": str(output)})

        create_worker(load_micrograph, index, output,
                      _connect={"returned": show, "errored": self._refuse})
