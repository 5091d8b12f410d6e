"""Models known to this napari session: the ones being trained and the ones loaded from files.

The Train widget registers ``best.safetensors`` of its run as soon as an epoch is the new best,
so the Denoise and Weights widgets can use it at once; they listen to ``changed``. The models that
ship with the package (:mod:`napari_cryoden.models.pretrained`) are always listed, after the
others, so that denoising works before anything was trained.

One entry per weight file (the same file opened twice stays one entry), and every entry has its
own label: :func:`model_label` names a file by its run folder, file name, preset and epoch
(``run1 · best (seed, epoch 12)``) from its header (:func:`~napari_cryoden.models.header.\
read_weight_info`, no torch), and two files that would read the same get their parent folders,
then a number. No Qt here: psygnal only, so the label logic is tested without a window.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from psygnal import Signal

if TYPE_CHECKING:
    from napari_cryoden.models.header import WeightFileInfo

__all__ = ["ModelRegistry", "MODELS", "SHIPPED_LABELS", "model_label", "model_tooltip",
           "unique_labels"]

SHIPPED_LABELS = {"general (shipped)": "general", "general-fast (shipped)": "general-fast",
                  "general-v1 (shipped, first release)": "general-v1",
                  "general-fast-v1 (shipped, first release)": "general-fast-v1"}
"""Label in the widgets → name in :data:`napari_cryoden.models.pretrained.SHIPPED`."""

TRAINING = "training"
MODE_WORDS = {"n2c": "noisy → clean pairs", "n2n": "Noise2Noise", "n2v": "Noise2Void"}


def model_label(info: WeightFileInfo, training: bool = False) -> str:
    """``run1 · best (seed, epoch 12)``; ``(seed, training)`` while its run is training."""
    details = [info.config.model.preset]
    if training:
        details.append(TRAINING)  # the epoch changes every new best: it is in the tooltip
    elif info.epoch is not None:
        details.append(f"epoch {info.epoch}")
    return f"{info.path.parent.name} · {info.path.stem} ({', '.join(details)})"


def model_tooltip(info: WeightFileInfo, training: bool = False) -> str:
    """The full path, how and how long it was trained, and its validation loss."""
    lines = [str(info.path.resolve())]
    mode = info.config.train.mode
    lines.append(f"preset {info.config.model.preset}, trained on {MODE_WORDS.get(mode, mode)}")
    epoch = "?" if info.epoch is None else info.epoch
    loss = "not recorded" if info.val_loss is None else f"{info.val_loss:.4g}"
    lines.append(f"epoch {epoch}, validation loss {loss}")
    if training:
        lines.append("still training: re-written at every new best epoch")
    return "\n".join(lines)


def unique_labels(entries: list[tuple[str, Path]]) -> list[str]:
    """One label per entry, none twice: clashes get their parent folders, then ``[2]``, ``[3]``."""
    labels = [label for label, _ in entries]
    for depth in (1, 2):  # folders above the one a label names tell /a/run1 from /b/run1
        clashing = {lab for lab in labels if labels.count(lab) > 1}
        labels = [_with_parents(label, path, depth) if lab in clashing else lab
                  for lab, (label, path) in zip(labels, entries, strict=True)]
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} [{seen[label]}]")
    return unique


def _with_parents(label: str, path: Path, depth: int) -> str:
    """``label`` after ``depth`` folders of ``path``, above the run folder it already names."""
    names = [p.name for p in path.resolve().parents]
    start = 1 if names and names[0] and label.startswith(names[0]) else 0
    folders = names[start:start + depth]
    if len(folders) < depth or not all(folders):
        return label
    return "/".join(reversed(folders)) + "/" + label


@dataclass
class _Entry:
    label: str  # before making it unique
    path: Path
    tooltip: str = ""
    training: bool = False


class ModelRegistry:
    """Weight files by path, each with a unique label; a signal on every change (main thread)."""

    changed = Signal(str, object)  # label, path

    def __init__(self) -> None:
        self._entries: dict[Path, _Entry] = {}
        self._labels: dict[str, Path] = {}

    def register(self, label: str, path: str | Path, tooltip: str = "",
                 training: bool = False) -> str:
        """Add ``path`` as ``label`` (or rename it); emitted even when unchanged (new epoch).

        Returns the label shown, which differs from ``label`` when another file has that name.
        """
        path = Path(path)
        self._entries[path.resolve()] = _Entry(label, path, tooltip or str(path), training)
        entries = list(self._entries.values())
        self._labels = dict(zip(unique_labels([(e.label, e.path) for e in entries]),
                                (e.path for e in entries), strict=True))
        shown = self.label_of(path) or label
        self.changed.emit(shown, path)
        return shown

    def add_file(self, path: str | Path, training: bool = False) -> str:
        """Check a weight file's header and register it under a meaningful label.

        Raises :class:`~napari_cryoden.errors.WeightFileError` (one line naming the file) when
        it is not a cryoden weight file; the list is then unchanged.
        """
        from napari_cryoden.models.header import read_weight_info

        info = read_weight_info(path)
        return self.register(model_label(info, training), path, model_tooltip(info, training),
                             training)

    def add_training(self, path: str | Path) -> str:
        """Register the best weights of a running training, labelled "training" until it ends."""
        from napari_cryoden.errors import CryodenError

        try:
            return self.add_file(path, training=True)
        except CryodenError:  # just written by the core: unreadable only if it went away
            path = Path(path)
            return self.register(f"{path.parent.name} · {path.stem} ({TRAINING})", path,
                                 training=True)

    def end_training(self, path: str | Path) -> None:
        """The run of ``path`` ended: drop "training" from its label (the path stays chosen)."""
        entry = self._entries.get(Path(path).resolve())
        if entry is None or not entry.training:
            return
        from napari_cryoden.errors import CryodenError

        try:
            self.add_file(entry.path)
        except CryodenError:  # the file went away meanwhile: keep it, without "training"
            label = entry.label.replace(f", {TRAINING})", ")").replace(f" ({TRAINING})", "")
            self.register(label, entry.path, entry.tooltip)

    def get(self, label: str) -> Path | None:
        """The weight file shown as ``label`` (a shipped model's too), or None."""
        if label in self._labels:
            return self._labels[label]
        if label in SHIPPED_LABELS:
            from napari_cryoden.models.pretrained import shipped_path

            return shipped_path(SHIPPED_LABELS[label])
        return None

    def label_of(self, path: str | Path) -> str | None:
        """The label shown for a registered file, or None."""
        key = Path(path).resolve()
        return next((lab for lab, p in self._labels.items() if p.resolve() == key), None)

    def tooltip(self, label: str) -> str:
        """Path, preset, epoch and validation loss of the model shown as ``label``."""
        path = self._labels.get(label)
        entry = self._entries.get(path.resolve()) if path is not None else None
        if entry is not None:
            return entry.tooltip
        return "A model that ships with the plugin" if label in SHIPPED_LABELS else ""

    def labels(self) -> list[str]:
        """Registered labels in order, then the shipped models."""
        return list(self._labels) + [s for s in SHIPPED_LABELS if s not in self._labels]

    def choices(self) -> list[tuple[str, Path]]:
        """(label, path) of every model, the shipped ones last: a choice that survives renames."""
        return [(label, path) for label in self.labels()
                if (path := self.get(label)) is not None]

    def registered(self) -> list[str]:
        """The labels registered in this session (trained or opened), without the shipped ones."""
        return list(self._labels)

    def clear(self) -> None:
        """Forget the registered models (the shipped ones stay)."""
        self._entries.clear()
        self._labels.clear()


MODELS = ModelRegistry()
