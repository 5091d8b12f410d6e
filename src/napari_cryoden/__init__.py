"""napari-cryoden: train and run a cryo-EM micrograph denoiser.

The public API, for scripts: the names in ``__all__``, imported from this package (docs/api.md
shows the import line)::

    config = Config().replace(train={"epochs": 10})
    result = train(config, noisy="noisy/", clean="clean/", run_dir="run/")
    denoised = denoise(micrograph, load_model(result.best_path))

The package is importable without torch, Qt or napari: the names below are loaded on first
use (as napari's own ``__init__`` does), and heavy modules by the functions that need them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__", "Config", "train", "denoise", "denoise_file", "evaluate", "load_model",
    "save_model", "simulate", "adapt",
]

_LAZY = {"Config": "napari_cryoden.config",
         **{name: "napari_cryoden.api" for name in __all__[2:]}}


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562), so importing the package stays light."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """List the module's names, the lazily loaded ones included."""
    return sorted({*globals(), *__all__})
