"""The Denoise panel's *Open raw weight folder…*: read a folder of raw weight files in a worker.

The folder is imported by :func:`napari_cryoden.interop.auto.import_raw_folder` (no Qt) into a
temporary ``.safetensors`` file, which is registered in the model list as
``"<folder> (raw, <layout>)"``. Layout ``auto`` ranks the axis orders on the Image layer and
the Clean layer of the panel.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import ComboBox, PushButton
from napari.utils.notifications import show_error, show_warning

from napari_cryoden._qt._models import MODELS
from napari_cryoden.errors import CryodenError, InputError

if TYPE_CHECKING:
    from psygnal import SignalInstance

__all__ = ["AUTO_CROP", "RAW_LAYOUTS", "RawFolders", "message"]

RAW_LAYOUTS = ("oihw", "fortran", "hwio", "seed-legacy", "auto")  # interop.LAYOUTS + auto
AUTO_CROP = 512  # px: auto ranks the layouts on this central square of the noisy/clean pair


class RawFolders:
    """Mixin of the Denoise panel: its raw-folder button, layout choice and import worker.

    The panel provides ``native``, ``model``, ``image``, ``clean`` and ``raw_loaded``.
    """

    native: Any
    model: ComboBox
    image: ComboBox
    clean: ComboBox
    raw_loaded: SignalInstance

    def _build_raw(self) -> None:
        self.raw_worker: Any = None
        self.raw_folder: Path | None = None
        self.raw_button = PushButton(text="Open raw weight folder…", tooltip=(
            "Choose a folder of raw float32 files (conv1_weights.bin, conv1_bias.bin, …), e.g. "
            "from the Fortran trainer; it is read in Raw layout and added to Model."))
        self.raw_layout = ComboBox(label="Raw layout", choices=RAW_LAYOUTS, value="oihw",
                                   tooltip=(
            "How the raw files order each kernel: oihw (PyTorch), fortran (whio), hwio, "
            "seed-legacy (hwio, the seed's bug), or auto: try them all on the Image layer and "
            "the Clean layer and keep the clear winner. Set from the folder's cryoden_raw.json "
            "when it has one; changing it re-reads the folder."))
        self.raw_button.clicked.connect(self._open_raw_folder)
        self.raw_layout.changed.connect(self._on_raw_layout_changed)

    def _open_raw_folder(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self.native, "Open a raw weight folder")
        if folder:
            self.add_raw_folder(folder)

    def _on_raw_layout_changed(self, value: str) -> None:
        if self.raw_folder is not None:
            self.add_raw_folder(self.raw_folder, value)

    def add_raw_folder(self, folder: str | Path, layout: str | None = None) -> None:
        """Import a raw weight folder in ``layout`` (default: its sidecar's, else the chosen
        one) in a worker; the model is registered as ``"<folder> (raw, <layout>)"``."""
        from napari_cryoden.interop.raw import read_sidecar

        folder = Path(folder)
        try:
            layout = layout or _layout_choice((read_sidecar(folder) or {}).get("layout"),
                                              self.raw_layout.value)
        except CryodenError as exc:
            show_error(message(exc))
            return
        self.raw_folder = folder
        with self.raw_layout.changed.blocked():
            self.raw_layout.value = layout
        try:
            pair = self._auto_pair() if layout == "auto" else None
        except InputError as exc:
            show_error(message(exc))
            return
        self._start_raw_import(folder, layout, pair)

    def _auto_pair(self) -> tuple[np.ndarray, np.ndarray]:
        noisy, clean = self.image.value, self.clean.value
        if noisy is None or clean is None or clean is noisy:
            raise InputError("Raw layout auto needs a noisy/clean pair: pick the noisy "
                             "micrograph under Image and its clean reference under 'Clean "
                             "(optional)', or choose the writer's layout")
        pair = tuple(_central_slice(layer.data) for layer in (noisy, clean))
        if pair[0].shape != pair[1].shape:
            raise InputError(f"{noisy.name!r} and {clean.name!r} differ in shape: auto needs "
                             "a matching noisy/clean pair")
        return pair  # type: ignore[return-value]

    def _start_raw_import(self, folder: Path, layout: str,
                          pair: tuple[np.ndarray, np.ndarray] | None) -> None:
        from napari.qt.threading import create_worker

        from napari_cryoden.interop.auto import import_raw_folder

        if self.raw_worker is not None:
            show_warning("Still reading the previous raw weight folder: try again in a moment")
            return
        out = _raw_dir() / f"{len(MODELS.registered())}-{folder.name}-{layout}.safetensors"
        self.raw_button.enabled, self.raw_button.text = False, "Reading raw weights…"
        self.raw_worker = create_worker(import_raw_folder, folder, layout, out, pair, _connect={
            "returned": partial(self._on_raw_returned, folder, layout, out),
            "errored": self._on_raw_errored, "finished": self._on_raw_finished})

    def _on_raw_returned(self, folder: Path, layout: str, out: Path, axes: str) -> None:
        label = f"{folder.name} (raw, {layout if layout != 'auto' else 'auto: ' + axes})"
        label = MODELS.register(label, out)
        self.model.value = out
        self.raw_loaded.emit(label)

    def _on_raw_errored(self, exc: BaseException) -> None:
        ranking = getattr(exc, "ranking", None)
        table = "\n".join(ranking.table().splitlines()[:4]) if ranking is not None else ""
        show_error(f"Could not read the raw weight folder: {message(exc)}"
                   + (f"\n{table}" if table else ""))

    def _on_raw_finished(self) -> None:
        self.raw_worker = None
        self.raw_button.enabled, self.raw_button.text = True, "Open raw weight folder…"


def message(exc: BaseException) -> str:
    """Our errors are written for users; others get their type name for the bug report."""
    return str(exc) if isinstance(exc, CryodenError) else f"{type(exc).__name__}: {exc}"


def _layout_choice(sidecar_layout: str | None, current: str) -> str:
    """The combo choice for a sidecar's layout (a name or an axis string), else ``current``."""
    from napari_cryoden.interop.raw import LAYOUTS

    if sidecar_layout in RAW_LAYOUTS:
        return str(sidecar_layout)
    names = [name for name, axes in LAYOUTS.items() if axes == sidecar_layout]
    return names[0] if names else current


def _central_slice(data: Any) -> np.ndarray:
    """The first slice of a stack, central ``AUTO_CROP`` px square, as float32."""
    image = np.asarray(data[0] if np.ndim(data) == 3 else data, np.float32)
    y, x = (max((n - AUTO_CROP) // 2, 0) for n in image.shape)
    return image[y:y + AUTO_CROP, x:x + AUTO_CROP]


_RAW_DIR: list[Path] = []


def _raw_dir() -> Path:
    """A temporary folder for imported raw models, removed when Python exits."""
    if not _RAW_DIR:
        import atexit
        import shutil
        import tempfile

        _RAW_DIR.append(Path(tempfile.mkdtemp(prefix="cryoden-raw-")))
        atexit.register(shutil.rmtree, _RAW_DIR[0], ignore_errors=True)
    return _RAW_DIR[0]
