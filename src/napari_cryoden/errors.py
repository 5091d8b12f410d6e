"""Errors the user can act on. Each message is one line that names the file and the problem.

The CLI prints ``cryoden: error: <message>`` and exits non-zero for these, never a traceback;
the napari widgets show them as notifications.
"""

from __future__ import annotations

__all__ = ["CryodenError", "InputError", "WeightFileError"]


class CryodenError(Exception):
    """Base class of errors caused by the user's input rather than by a bug."""


class InputError(CryodenError, ValueError):
    """A micrograph, folder or pairing cannot be used, e.g. ``noisy/a.mrc: truncated file``."""


class WeightFileError(CryodenError, ValueError):
    """A weight file is unreadable, not safetensors, or does not match its model."""
