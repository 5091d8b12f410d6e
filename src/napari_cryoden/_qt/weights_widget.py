"""The Weights widget: every kernel and bias of a model, on one signed colour scale.

Nets whose hidden layers hold many kernels (the ``deep`` and ``unet-small`` presets) show their
first and last convolutions, and the figure's title names the layers left out.

Pick a weight file or a model known to the session (:data:`~napari_cryoden._qt._models.MODELS`);
while a model is being trained, its ``best.safetensors`` is re-registered after each new best
epoch and the figure follows it live. The figure is :func:`plotting_weights.weights_figure`.
Reading the file and building the figure run in a worker (:func:`read_weights`), and the figure
is drawn with Agg in another (:class:`~napari_cryoden._qt.figure_image.FigureImage`): opening a
weight file never freezes the window. The panel scrolls on a small screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.types import FileDialogMode
from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QFileDialog, QSizePolicy, QVBoxLayout, QWidget

from napari_cryoden._qt._models import MODELS
from napari_cryoden._qt.canvas import apply_theme
from napari_cryoden._qt.figure_image import FigureImage
from napari_cryoden._qt.quiet_gc import freeze_long_lived
from napari_cryoden._qt.scroll import vertical_scroll_area
from napari_cryoden.config.presets import is_default

if TYPE_CHECKING:
    import napari
    from matplotlib.figure import Figure

__all__ = ["WeightsWidget", "read_weights"]

_NO_MODEL = "No model yet: choose a weight file (.safetensors), or train one in the Train widget."
_FIGURE_MIN_HEIGHT = 560


@dataclass(frozen=True)
class ReadWeights:
    """A weight file read in a worker: its tensors, the figure of them and their description."""

    path: Path
    state: dict[str, Any]
    title: str
    info: str
    figure: Figure
    generation: int


def read_weights(path: Path, label: str, generation: int) -> ReadWeights:
    """Read the weight file at ``path`` and build its figure (a worker's job: touches no widget).

    Raises the :class:`~napari_cryoden.errors.CryodenError` of a file that cannot be used.
    """
    from napari_cryoden.models.checkpoint import load_checkpoint
    from napari_cryoden.plotting.weights import weights_figure

    model, checkpoint = load_checkpoint(path, "cpu")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    title = _title(label, checkpoint)
    return ReadWeights(path, state, title, _describe(path, model, checkpoint),
                       weights_figure(state, title=title), generation)


class WeightsWidget(QWidget):
    """Kernels (one shared, symmetric colour scale) and biases of the chosen model."""

    failed = Signal(str)
    """A weight file could not be read: the one-line reason (also shown as an error)."""
    bmz_written = Signal(object)
    """A BioImage Model Zoo package was written: its path; or the one-line reason it was not."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = viewer
        self.state: dict[str, Any] | None = None  # the shown model's state dict
        self.path: Path | None = None
        self._title = ""
        self._generation = 0  # a newer load wins over one still being read
        self.model_choice = ComboBox(
            label="model", choices=lambda _w: MODELS.labels(), nullable=True,
            tooltip="A model of this session: one being trained (updated after each new best "
                    "epoch) or a weight file opened here or in the Denoise widget.")
        self.file_edit = FileEdit(
            label="weight file", mode=FileDialogMode.EXISTING_FILE,
            filter="Weight files (*.safetensors)",
            tooltip="Open a napari-cryoden weight file (.safetensors); it is added to the models "
                    "of this session.")
        self.export_button = PushButton(text="Export PNG…",
                                        tooltip="Save the weights figure as a PNG image.")
        self.bmz_button = PushButton(
            text="Export for BioImage Model Zoo…",
            tooltip="Write the shown model as a BioImage Model Zoo package (.zip: rdf.yaml, "
                    "TorchScript weights with the model's normalisation inside, test tensors, "
                    "the pixel sizes it was trained for), as cryoden export-bmz does; any BMZ "
                    "consumer can run it.")
        self.info = Label(value=_NO_MODEL)
        self.info.native.setWordWrap(True)
        self.info.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.canvas = FigureImage(viewer)
        self.canvas.setMinimumHeight(_FIGURE_MIN_HEIGHT)
        self._layout(Container(widgets=[self.model_choice, self.file_edit, self.export_button,
                                        self.bmz_button]))
        self.model_choice.changed.connect(self._on_model_chosen)
        self.file_edit.changed.connect(self._on_file_chosen)
        self.export_button.changed.connect(self._on_export_clicked)
        self.bmz_button.changed.connect(self._on_bmz_clicked)
        callback = self._on_registry_changed
        MODELS.changed.connect(callback)
        self.destroyed.connect(lambda *_: MODELS.changed.disconnect(callback, missing_ok=True))
        freeze_long_lived()
        if MODELS.registered():  # the latest model of the session; shipped ones on request
            self.model_choice.value = MODELS.registered()[-1]

    def _layout(self, form: Container) -> None:
        """Form, description and figure in a vertical scroll area (a small screen scrolls)."""
        content = QWidget()
        column = QVBoxLayout(content)
        column.addWidget(form.native)
        column.addWidget(self.info.native)
        column.addWidget(self.canvas, stretch=1)
        self.scroll_area = vertical_scroll_area(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.scroll_area)

    # -- loading ---------------------------------------------------------------------------
    def load(self, path: str | Path, label: str | None = None) -> None:
        """Read the weight file at ``path`` and draw its kernels, both in workers.

        ``canvas.rendered`` is emitted when the figure is on screen; a file that cannot be used
        emits :attr:`failed` and shows a napari error notification instead.
        """
        from superqt.utils import create_worker

        self._generation += 1
        path = Path(path)
        # errored connected here, or superqt also re-raises the error in the event loop
        create_worker(read_weights, path, label or path.name, self._generation,
                      _connect={"returned": self._on_read, "errored": self._on_read_failed})

    def _on_read(self, read: ReadWeights) -> None:
        if read.generation != self._generation:  # a newer file was chosen meanwhile
            return
        self.state, self.path, self._title = read.state, read.path, read.title
        self.info.value = read.info
        self.canvas.show_figure(read.figure)

    def _on_read_failed(self, exc: BaseException) -> None:
        from napari.utils.notifications import show_error

        show_error(str(exc))
        self.failed.emit(str(exc))

    def _on_model_chosen(self, label: str | None) -> None:
        path = MODELS.get(label) if label else None
        if path is not None:
            self.load(path, label)

    def _on_file_chosen(self, path: Path | None) -> None:
        if path is None or not Path(path).is_file():
            return
        from napari.utils.notifications import show_error

        from napari_cryoden.errors import CryodenError

        previous = self.model_choice.value
        self.model_choice.value = None  # so registering re-selects and loads it exactly once
        try:
            MODELS.add_file(path)  # checks the header: a text file is refused, not listed
        except CryodenError as exc:
            self.model_choice.value = previous
            show_error(str(exc))

    def _on_registry_changed(self, label: str, path: Path) -> None:
        try:
            self.model_choice.reset_choices()
        except RuntimeError:  # this widget's Qt side is gone (viewer closed)
            return
        shown = self.path is not None and self.path.resolve() == Path(path).resolve()
        if self.model_choice.value == label:
            self.load(path, label)  # the file was re-written: a new best epoch
        elif shown:
            self.model_choice.value = label  # renamed (its training ended): still this file
        elif self.model_choice.value is None:
            self.model_choice.value = label  # the first model: show it

    # -- export ----------------------------------------------------------------------------
    def export_png(self, path: str | Path, dpi: int = 120) -> Path | None:
        """Save the weights figure (at its natural size, in the viewer's theme) as PNG."""
        from napari.utils.notifications import show_warning

        from napari_cryoden.plotting.weights import weights_figure

        if self.state is None:
            show_warning("Nothing to export: choose a model first.")
            return None
        figure: Figure = weights_figure(self.state, title=self._title)
        apply_theme(figure, self.viewer)
        path = Path(path).with_suffix(".png")
        figure.savefig(path, dpi=dpi, facecolor=figure.get_facecolor())
        return path

    def _on_export_clicked(self) -> None:
        from napari.utils.notifications import show_info

        start = str((self.path.parent if self.path else Path.home()) / "weights.png")
        path, _ = QFileDialog.getSaveFileName(self, "Export weights figure", start,
                                              "PNG image (*.png)")
        if path and self.export_png(path) is not None:
            show_info(f"Saved the weights figure to {Path(path).with_suffix('.png')}")

    def export_bmz(self, path: str | Path) -> None:
        """Write the shown model as a BioImage Model Zoo package at ``path``, in a worker.

        :attr:`bmz_written` is emitted with the path, or with the reason it failed (also shown
        as an error notification).
        """
        from napari.utils.notifications import show_warning
        from superqt.utils import create_worker

        if self.path is None:
            show_warning("Nothing to export: choose a model first.")
            return
        self.bmz_button.enabled = False
        create_worker(export_in_subprocess, self.path, Path(path),
                      _connect={"returned": self._on_bmz_written, "errored": self._on_bmz_failed})

    def _on_bmz_written(self, path: Path) -> None:
        from napari.utils.notifications import show_info

        self.bmz_button.enabled = True
        show_info(f"Wrote {path}: check it with 'bioimageio test {path}'")
        self.bmz_written.emit(path)

    def _on_bmz_failed(self, exc: BaseException) -> None:
        from napari.utils.notifications import show_error

        self.bmz_button.enabled = True
        show_error(f"BioImage Model Zoo export failed: {exc}")
        self.bmz_written.emit(str(exc))

    def _on_bmz_clicked(self) -> None:
        if self.path is None:
            self.export_bmz("")  # says there is nothing to export
            return
        start = str(self.path.parent / f"{self.path.stem}.bmz.zip")
        path, _ = QFileDialog.getSaveFileName(self, "Export for BioImage Model Zoo", start,
                                              "BioImage Model Zoo package (*.zip)")
        if path:
            self.export_bmz(path if path.lower().endswith(".zip") else path + ".zip")


def export_in_subprocess(model: Path, out: Path) -> Path:
    """Run ``cryoden export-bmz MODEL OUT`` in a child process; return ``out``.

    Not in a thread of this process: importing ``bioimageio.spec`` builds its pydantic schemas
    while holding the GIL, which blocked the window for up to 120 ms at a time.

    Raises
    ------
    InputError
        The command failed: its one-line error.
    """
    import subprocess
    import sys

    from napari_cryoden.errors import InputError

    done = subprocess.run([sys.executable, "-m", "napari_cryoden.cli", "export-bmz", str(model),
                           str(out)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1].removeprefix("cryoden: error: ") if lines else f"exit {done.returncode}"
        raise InputError(reason)
    return out


def _title(label: str, checkpoint: Any) -> str:
    epoch, preset = checkpoint.epoch, checkpoint.config.model.preset
    return (f"{label}" + ("" if is_default(preset) else f" ({preset})")
            + (f", epoch {epoch}" if epoch is not None else ""))


def _describe(path: Path, model: Any, checkpoint: Any) -> str:
    config = checkpoint.config.model
    n_params = sum(p.numel() for p in model.parameters())
    parts = [f"{path}", f"preset {config.preset}: {config.depth} conv layers, "
             f"{config.channels} channels, {config.kernel_size}×{config.kernel_size} kernels, "
             f"{n_params:,} parameters"]
    val = checkpoint.metadata.get("val_loss")
    if checkpoint.epoch is not None:
        parts.append(f"epoch {checkpoint.epoch}" + (f", val loss {val:.4g}" if val else ""))
    return " · ".join(parts)

