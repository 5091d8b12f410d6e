"""Models known to this napari session: the ones being trained and the ones loaded from files.

The Train widget registers ``best.safetensors`` of its run as soon as an epoch is the new best,
so the Denoise and Weights widgets can use it at once; they listen to ``changed``.
"""

from __future__ import annotations

from pathlib import Path

from psygnal import Signal

__all__ = ["ModelRegistry", "MODELS"]


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
        return self._paths.get(label)

    def labels(self) -> list[str]:
        return list(self._paths)

    def clear(self) -> None:
        self._paths.clear()


MODELS = ModelRegistry()
