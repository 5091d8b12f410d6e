"""The training engine: the loop, its steps, modes, schedules and events.

:func:`train` (from :mod:`.loop`) and the event classes (from :mod:`.events`, their one home)
are importable from here. They load on first use, so ``import napari_cryoden.training`` does not
import torch; the events themselves never need it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .events import (
        CheckpointSaved,
        EpochEnd,
        Event,
        TrainEnd,
        TrainStart,
        TrainStep,
        TrainWarning,
    )
    from .loop import train

__all__ = ["CheckpointSaved", "EpochEnd", "Event", "TrainEnd", "TrainStart", "TrainStep",
           "TrainWarning", "train"]

_HOMES = {"train": ".loop", **{name: ".events" for name in __all__ if name != "train"}}


def __getattr__(name: str) -> Any:
    """Import ``train`` or an event class on first access (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """List the package's names, the lazy ones included."""
    return sorted({*globals(), *__all__})
