"""The Denoise panel's model list: opening a weight file, and a tooltip on every entry.

Each entry of *Model* is a weight file of :data:`~napari_cryoden._qt._models.MODELS`, whose value
is the file's path, so an entry renamed (a new best epoch, the end of its training run) stays
chosen. The choice changes only when the user changes it or opens a file here: a model that the
Train widget registers mid-run is listed, never selected. A file is checked from its header when
it is opened (milliseconds, no torch); a refused one is not added, and the one-line reason shows
in the panel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magicgui.widgets import ComboBox, Label
from napari.utils.notifications import show_error

from napari_cryoden._qt._models import MODELS
from napari_cryoden._qt.denoise.raw_folders import message
from napari_cryoden.errors import CryodenError

__all__ = ["WeightFiles"]


class WeightFiles:
    """Mixin of the Denoise panel; the panel provides ``native``, ``model`` and ``status``."""

    native: Any
    model: ComboBox
    status: Label

    def _on_model_registered(self, label: str, path: Path) -> None:
        # never select it: a model that Train registers mid-run is not the user's choice
        self.model.reset_choices()
        self._show_model_tooltips()

    def _show_model_tooltips(self) -> None:
        from qtpy.QtCore import Qt

        combo = self.model.native
        for i in range(combo.count()):
            combo.setItemData(i, MODELS.tooltip(combo.itemText(i)), Qt.ItemDataRole.ToolTipRole)

    def _open_weight_file(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(
            self.native, "Open a weight file", "", "cryoden weight files (*.safetensors)")
        if path:
            self.add_weight_file(path)

    def add_weight_file(self, path: str | Path) -> str | None:
        """Check a weight file's header, add it to the model list and select it.

        Returns its label, or None when the file is refused: the one-line reason is then shown
        in the panel (and as a notification) and the list is unchanged.
        """
        path = Path(path)
        try:
            label = MODELS.add_file(path)
        except CryodenError as exc:
            self.status.value = f"Not added: {message(exc)}"
            show_error(f"Not added: {message(exc)}")
            return None
        self.model.value = path
        self.status.value = f"Added {label}"
        return label
