"""Models known to this napari session: the ones being trained and the ones loaded from files.

The Train widget registers ``best.safetensors`` of its run as soon as an epoch is the new best,
so the Denoise and Weights widgets can use it at once; they listen to ``changed``. The models that
ship with the package (:mod:`napari_cryoden.models.pretrained`) are always listed, after the
others, so that denoising works before anything was trained.
"""

from __future__ import annotations

from pathlib import Path

from psygnal import Signal

__all__ = ["ModelRegistry", "MODELS", "SHIPPED_LABELS"]

SHIPPED_LABELS = {"general (shipped)": "general", "general-fast (shipped)": "general-fast"}
"""Label in the widgets → name in :data:`napari_cryoden.models.pretrained.SHIPPED`."""


class ModelRegistry:
    """Label → weight-file path, with a signal on every change (main thread only)."""

    changed = Signal(str, object)  # label, path

    def __init__(self) -> None:
        self._paths: dict[str, Path] = {}

    def register(self, label: str, path: str | Path) -> None:
        """Add or update ``label``; emitted even when the path is the same (new epoch on disk)."""
        self._paths[label] = Path(path)
        self.changed.emit(label, Path(path))

    def get(self, label: str) -> Path | None:
        if label in self._paths:
            return self._paths[label]
        if label in SHIPPED_LABELS:
            from napari_cryoden.models.pretrained import shipped_path

            return shipped_path(SHIPPED_LABELS[label])
        return None

    def labels(self) -> list[str]:
        """Registered labels in order, then the shipped models."""
        return list(self._paths) + [s for s in SHIPPED_LABELS if s not in self._paths]

    def registered(self) -> list[str]:
        """The labels registered in this session (trained or opened), without the shipped ones."""
        return list(self._paths)

    def clear(self) -> None:
        """Forget the registered models (the shipped ones stay)."""
        self._paths.clear()


MODELS = ModelRegistry()
