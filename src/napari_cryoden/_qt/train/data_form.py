"""The Train widget's data source: two napari Image layers or folders, and their file pairs.

:class:`DataForm` chooses the training pairs: two napari Image layers or two folders
(noisy/clean; even/odd for ``train.mode`` n2n; one noisy for n2v). :func:`prepare_pairs` turns
that choice into file pairs for the streaming core, folders through the same
:func:`~napari_cryoden.data.sources.training_data` as ``cryoden train``; it runs in the
training worker because it may write the layers to disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.types import FileDialogMode
from magicgui.widgets import ComboBox, FileEdit, Label, RadioButtons
from psygnal import Signal

from napari_cryoden._qt.train.layer_choice import ROLES, guess_pair, pair_problem, partner
from napari_cryoden.errors import InputError

if TYPE_CHECKING:
    import napari

    from napari_cryoden.config.sections import Config

__all__ = ["DataForm", "FolderPair", "LAYER_SPLIT_HELP", "LayerPair", "ROLES", "layer_pair",
           "prepare_pairs"]

LAYER_SPLIT_HELP = (
    "With one layer pair and a validation fraction > 0, the bottom rows of the images (that "
    "fraction of the height, at least one patch) are held out for validation and the top rows "
    "are used for training.")


@dataclass(frozen=True)
class LayerPair:
    """Two Image layers' data (arrays or lazy arrays) and the pixel size from their scale.

    For ``n2n`` the layers are the even and odd halves; for ``n2v`` there is no second layer
    (``clean_name`` and ``clean`` are None).
    """

    noisy_name: str
    clean_name: str | None
    noisy: Any
    clean: Any
    pixel_size: float


@dataclass(frozen=True)
class FolderPair:
    """A noisy and a clean folder whose files pair by name (even and odd folders for ``n2n``;
    one noisy folder and ``clean_dir`` None for ``n2v``)."""

    noisy_dir: Path
    clean_dir: Path | None


LAYERS, FOLDERS = "napari layers", "folders"


class DataForm:
    """Where the training pairs come from: two Image layers of the viewer, or two folders.

    :attr:`widgets` are the rows to lay out, the last one :attr:`problem`: a red line that says
    why the chosen layers cannot train (:attr:`ok` is then False; :attr:`checked` is emitted
    after every check). The layer lists follow ``viewer.layers``; a choice is filled in only
    from unambiguous evidence (:mod:`.layer_choice`), otherwise it stays empty for the user.
    """

    checked = Signal()

    def __init__(self, viewer: napari.Viewer) -> None:
        self._viewer = viewer
        self.source = RadioButtons(choices=[LAYERS, FOLDERS], label="data from",
                                   orientation="horizontal",
                                   tooltip="Train on two open Image layers or on two folders "
                                           "of micrographs paired by file name.")
        self.noisy_layer = ComboBox(choices=self._image_layers, label="noisy layer",
                                    nullable=True, tooltip="The noisy micrograph (network "
                                    "input). " + LAYER_SPLIT_HELP)
        self.clean_layer = ComboBox(choices=self._image_layers, label="clean layer",
                                    nullable=True,
                                    tooltip="The clean target, same shape as the noisy layer.")
        self.noisy_dir = FileEdit(mode=FileDialogMode.EXISTING_DIRECTORY, label="noisy folder",
                                  tooltip="Folder of noisy micrographs (MRC or TIFF).")
        self.clean_dir = FileEdit(mode=FileDialogMode.EXISTING_DIRECTORY, label="clean folder",
                                  tooltip="Folder of clean targets, paired with the noisy "
                                          "files by name.")
        self.problem = Label(label="")
        self.problem.native.setStyleSheet("color: #ff5c5c;")
        self.problem.native.setWordWrap(True)
        self.source.value = LAYERS
        self.mode = "n2c"
        self.widgets = [self.source, self.noisy_layer, self.clean_layer, self.noisy_dir,
                        self.clean_dir, self.problem]
        self.source.changed.connect(self._show_source)
        self.noisy_layer.changed.connect(self._complete)
        self.clean_layer.changed.connect(self.check)
        events = viewer.layers.events
        for event in (events.inserted, events.removed, events.reordered, events.renamed):
            event.connect(self.reset_choices)
        self.reset_choices()
        self._show_source()

    @property
    def ok(self) -> bool:
        """Whether the data choice can train (folders are checked on Start)."""
        return not self.problem.value

    def reset_choices(self, *_: Any) -> None:
        """Refresh the layer lists; fill an incomplete choice only from unambiguous evidence."""
        self.noisy_layer.reset_choices()
        self.clean_layer.reset_choices()
        second = ROLES[self.mode][1]
        if self.noisy_layer.value is None and (second is None or self.clean_layer.value is None):
            self._guess()
        self.check()

    def set_mode(self, mode: str) -> None:
        """Relabel the choices for a training mode (``train.mode``); n2v hides the second one.
        The choices are made again for the new roles, from the evidence only."""
        self.mode = mode
        first, second = ROLES[mode]
        self.noisy_layer.label, self.noisy_dir.label = f"{first} layer", f"{first} folder"
        self.clean_layer.label = f"{second or 'clean'} layer"
        self.clean_dir.label = f"{second or 'clean'} folder"
        self._guess()
        self._show_source()

    def check(self, *_: Any) -> None:
        """Show under the data rows why the chosen layers cannot train (empty when they can)."""
        problem = None
        if self.source.value == LAYERS:
            second = self.clean_layer.value if ROLES[self.mode][1] else None
            problem = pair_problem(self.noisy_layer.value, second, self.mode)
        self.problem.value = problem or ""
        self.problem.visible = bool(problem)
        self.checked.emit()

    def selection(self) -> LayerPair | FolderPair:
        """The chosen pairs; raises :class:`~napari_cryoden.errors.InputError` for a bad choice."""
        first, second = ROLES[self.mode]
        if self.source.value == FOLDERS:
            if not _given(self.noisy_dir) or (second and not _given(self.clean_dir)):
                raise InputError(f"choose a {first} and a {second} folder" if second
                                 else f"choose a {first} folder")
            return FolderPair(Path(str(self.noisy_dir.value)),
                              Path(str(self.clean_dir.value)) if second else None)
        noisy, clean = self.noisy_layer.value, self.clean_layer.value if second else None
        if noisy is None or (second and clean is None):
            which = f"a {first} and a {second} Image layer" if second else f"a {first} layer"
            raise InputError(f"open {which} (File > Open) or train from folders")
        problem = pair_problem(noisy, clean, self.mode)
        if problem:
            raise InputError(problem)
        return layer_pair(noisy, clean)

    def _guess(self) -> None:
        layers = [layer for _, layer in self._image_layers()]
        first, second = guess_pair(layers, self.mode)
        with self.noisy_layer.changed.blocked():
            self.noisy_layer.value = first
        self.clean_layer.value = second
        self.check()

    def _complete(self, layer: Any) -> None:
        """The user chose the first layer: fill in the second if exactly one layer fits it."""
        if layer is not None and self.clean_layer.value is None and ROLES[self.mode][1]:
            layers = [layer for _, layer in self._image_layers()]
            self.clean_layer.value = partner(layer, layers, self.mode)
        self.check()

    def _image_layers(self, *_: Any) -> list[tuple[str, Any]]:
        from napari.layers import Image

        return [(layer.name, layer) for layer in self._viewer.layers
                if isinstance(layer, Image) and not layer.rgb]

    def _show_source(self, *_: Any) -> None:
        layers, second = self.source.value == LAYERS, ROLES[self.mode][1] is not None
        self.noisy_layer.visible, self.clean_layer.visible = layers, layers and second
        self.noisy_dir.visible, self.clean_dir.visible = not layers, not layers and second
        self.check()


def _given(widget: FileEdit) -> bool:
    return bool(widget.line_edit.value.strip())


def layer_pair(noisy: Any, clean: Any | None) -> LayerPair:
    """Check two Image layers (or one: ``clean`` None, for n2v) for training; raises
    InputError naming both when shapes differ."""
    layers = [noisy] if clean is None else [noisy, clean]
    data = [layer.data[0] if layer.multiscale else layer.data for layer in layers]
    for layer, array in zip(layers, data, strict=True):
        if array.ndim not in (2, 3):
            raise InputError(f"layer '{layer.name}' has {array.ndim} dimensions; "
                             "a micrograph (2D) or a stack (3D) is needed")
    if clean is None:
        return LayerPair(noisy.name, None, data[0], None, float(noisy.scale[-1]))
    if tuple(data[0].shape) != tuple(data[1].shape):
        raise InputError(f"layers '{noisy.name}' {tuple(data[0].shape)} and '{clean.name}' "
                         f"{tuple(data[1].shape)} differ in shape")
    return LayerPair(noisy.name, clean.name, data[0], data[1], float(noisy.scale[-1]))


def prepare_pairs(source: LayerPair | FolderPair, run_dir: Path,
                  config: Config) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """The ``(train, val)`` file pairs; layers are first written to ``run_dir/data``.

    Layers become ``data/noisy/layer.mrc`` and ``data/clean/layer.mrc`` (``even``/``odd``
    for n2n, only ``noisy`` for n2v: :data:`ROLES`); with a validation fraction > 0 their bottom
    rows become ``data/val_noisy/layer.mrc`` and ``data/val_clean/layer.mrc`` (the CLI's
    ``--val-noisy/--val-clean`` layout).
    """
    from napari_cryoden.data.pairs import TooFewPairs
    from napari_cryoden.data.sources import TrainSources, training_data

    if isinstance(source, FolderPair):
        sources = TrainSources.for_mode(config.train.mode, source.noisy_dir, source.clean_dir)
        try:
            train, val, _ = training_data(sources, config)  # the CLI's pairs for these folders
        except TooFewPairs:
            raise InputError(f"{source.noisy_dir}: only one micrograph, so none can be held "
                             "out for validation; set 'validation fraction' to 0 or add "
                             "files") from None
        return train, val
    return _write_layers(source, run_dir / "data", config.data.val_fraction,
                         config.data.patch_size, ROLES[config.train.mode])


def _write_layers(source: LayerPair, root: Path, fraction: float, patch: int,
                  roles: tuple[str, str | None] = ("noisy", "clean"),
                  ) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    from napari_cryoden.io.images import write_mrc

    noisy = np.asarray(source.noisy)
    clean = None if roles[1] is None else np.asarray(source.clean)
    ny, nx = noisy.shape[-2:]
    if min(ny, nx) < patch:
        raise InputError(f"layer '{source.noisy_name}' is {nx}x{ny} px, smaller than the patch "
                         f"size {patch}; lower 'patch size (px)'")
    parts: dict[str, tuple[np.ndarray, np.ndarray | None]] = {"": (noisy, clean)}
    if fraction > 0:
        val_rows = min(max(round(ny * fraction), patch), ny - patch)
        if val_rows < patch:
            raise InputError(f"layer '{source.noisy_name}' is {ny} px tall: too small to hold "
                             f"out a {patch}-px validation strip; set 'validation fraction' "
                             "to 0 or lower 'patch size (px)'")
        cut = ny - val_rows
        parts = {"": (noisy[..., :cut, :], None if clean is None else clean[..., :cut, :]),
                 "val_": (noisy[..., cut:, :], None if clean is None else clean[..., cut:, :])}
    pairs: dict[str, tuple[Path, Path]] = {}
    for prefix, halves in parts.items():
        paths = [root / f"{prefix}{role}" / "layer.mrc" for role in roles if role is not None]
        arrays = [half for half in halves if half is not None]  # n2v: the noisy half alone
        for path, part in zip(paths, arrays, strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            write_mrc(path, part, source.pixel_size)
        pairs[prefix] = (paths[0], paths[-1])  # n2v: the noisy file paired with itself
    return [pairs[""]], ([pairs["val_"]] if "val_" in pairs else [])
