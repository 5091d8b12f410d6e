"""One Denoise run's progress as the user sees it, and its Cancel.

:class:`RunControl` is handed to the worker: its :meth:`~RunControl.loaded` and
:meth:`~RunControl.progress` are the callbacks of :func:`~napari_cryoden.inference.job.run_job`
(they run in the worker, between batches of tiles). Each first checks the cancel flag and raises
:class:`~napari_cryoden.errors.Cancelled` when it is set, which ends the run there; otherwise it
sends the progress bar's text to the main thread: "Loading model…" until the model is loaded,
then "42 % · ~12 s left", the time left estimated from the tiles done since loading.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from napari_cryoden.errors import Cancelled

__all__ = ["LOADING", "RunControl", "eta_text"]

LOADING = "Loading model…"
"""The progress bar's text while torch is imported and the model loaded."""

Show = Callable[[str, int, int], object]
"""``show(text, done, total)``, called from the worker; it must hop to the main thread."""


def eta_text(done: int, total: int, elapsed: float) -> str:
    """The progress bar's text after ``done`` of ``total`` tiles in ``elapsed`` seconds."""
    percent = 100 * done // max(total, 1)
    if done <= 0 or done >= total:
        return f"{percent} %"
    left = math.ceil(elapsed * (total - done) / done)
    return f"{percent} % · ~{left} s left"


class RunControl:
    """The cancel flag and the clock of one run; callbacks for the worker."""

    def __init__(self, show: Show) -> None:
        self._show = show
        self._cancel = threading.Event()
        self._tiles_from = time.perf_counter()

    @property
    def cancelled(self) -> bool:
        """Whether Cancel was clicked (or the input layer removed) for this run."""
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Ask the run to stop at its next callback (within one batch of tiles)."""
        self._cancel.set()

    def loaded(self) -> None:
        """The model is loaded: the clock of the ETA starts (worker)."""
        self._check()
        self._tiles_from = time.perf_counter()
        self._show("0 %", 0, 1)

    def progress(self, done: int, total: int) -> None:
        """``done`` of ``total`` tiles are denoised (worker)."""
        self._check()
        self._show(eta_text(done, total, time.perf_counter() - self._tiles_from), done, total)

    def _check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled("denoising cancelled")
