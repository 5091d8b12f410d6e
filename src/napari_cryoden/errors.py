"""Errors the user can act on. Each message is one line that names the file and the problem.

The CLI prints ``cryoden: error: <message>`` and exits non-zero for these, never a traceback;
the napari widgets show them as notifications. docs/troubleshooting.md lists every message.
"""

from __future__ import annotations

__all__ = ["Cancelled", "CryodenError", "InputError", "WeightFileError", "SaveError"]


class CryodenError(Exception):
    r"""Base class of errors caused by the user's input rather than by a bug.

    ``str(error)`` is always one line: newlines and other control characters that a file name,
    a tensor name or a metadata value may carry are shown escaped (``\n``).
    """

    def __str__(self) -> str:
        """Return the message on one line, control characters escaped."""
        return _one_line(super().__str__())


def _one_line(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class InputError(CryodenError, ValueError):
    """A micrograph, folder or pairing cannot be used, e.g. ``noisy/a.mrc: truncated file``."""


class WeightFileError(CryodenError, ValueError):
    """A weight file is unreadable, not safetensors, or does not match its model."""


class SaveError(InputError, OSError):
    """A file cannot be written (disk full, read-only, no such folder); the old file is intact.

    It is also an :class:`OSError` whose ``errno`` is the system's (e.g. ``errno.ENOSPC``), so
    code that handles failed writes as ``OSError`` keeps working.
    """


class Cancelled(Exception):
    """The user cancelled a running job (e.g. a progress callback raised it); not an error.

    Long loops (tiles, files) call a progress callback between units of work; raising this
    from the callback ends the job there. Nothing half-written is kept.
    """
