"""The Weights widget: every kernel and bias of a model, on one signed colour scale.

Nets whose hidden layers hold many kernels (the ``deep`` and ``unet-small`` presets) show their
first and last convolutions, and the figure's title names the layers left out.

Pick a weight file or a model known to the session (:data:`~napari_cryoden._qt._models.MODELS`);
while a model is being trained, its ``best.safetensors`` is re-registered after each new best
epoch and the figure follows it live. The figure is :func:`plotting_weights.weights_figure`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.types import FileDialogMode
from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton
from qtpy.QtWidgets import QFileDialog, QSizePolicy, QVBoxLayout, QWidget

from napari_cryoden._qt._models import MODELS
from napari_cryoden._qt.canvas import FigureCanvasWidget, apply_theme
from napari_cryoden.config.presets import is_default

if TYPE_CHECKING:
    import napari
    from matplotlib.figure import Figure

__all__ = ["WeightsWidget"]

_NO_MODEL = "No model yet: choose a weight file (.safetensors), or train one in the Train widget."


class WeightsWidget(QWidget):
    """Kernels (one shared, symmetric colour scale) and biases of the chosen model."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = viewer
        self.state: dict[str, Any] | None = None  # the shown model's state dict
        self.path: Path | None = None
        self._title = ""
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
        self.info = Label(value=_NO_MODEL)
        self.info.native.setWordWrap(True)
        self.info.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        form = Container(widgets=[self.model_choice, self.file_edit, self.export_button])
        self.canvas = FigureCanvasWidget(viewer)
        self.canvas.setMinimumHeight(560)
        layout = QVBoxLayout(self)
        layout.addWidget(form.native)
        layout.addWidget(self.info.native)
        layout.addWidget(self.canvas, stretch=1)

        self.model_choice.changed.connect(self._on_model_chosen)
        self.file_edit.changed.connect(self._on_file_chosen)
        self.export_button.changed.connect(self._on_export_clicked)
        callback = self._on_registry_changed
        MODELS.changed.connect(callback)
        self.destroyed.connect(lambda *_: MODELS.changed.disconnect(callback, missing_ok=True))
        if MODELS.registered():  # the latest model of the session; shipped ones on request
            self.model_choice.value = MODELS.registered()[-1]

    # -- loading ---------------------------------------------------------------------------
    def load(self, path: str | Path, label: str | None = None) -> bool:
        """Read the weight file at ``path`` and draw its kernels; ``False`` (and a napari error
        notification) when the file cannot be used."""
        from napari.utils.notifications import show_error

        from napari_cryoden.errors import CryodenError
        from napari_cryoden.models.checkpoint import load_checkpoint
        from napari_cryoden.plotting.weights import weights_figure

        try:
            model, checkpoint = load_checkpoint(path, "cpu")
        except CryodenError as exc:
            show_error(str(exc))
            return False
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.path = Path(path)
        self._title = _title(label or self.path.name, checkpoint)
        self.info.value = _describe(self.path, model, checkpoint)
        self.canvas.show_figure(weights_figure(self.state, title=self._title))
        return True

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

