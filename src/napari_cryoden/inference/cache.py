"""Models kept loaded between denoise runs, and the CPU threads one run uses.

A session that denoises again with the same weight file on the same device reuses the loaded
model: :func:`use_denoiser` keys it by the file's path, its modification time and size (a file
rewritten by a training run is loaded afresh) and the resolved device, keeps the last
:data:`KEEP` models, and lends each to one run at a time (a run moves the net's weights to its
layout and back). :func:`cpu_threads` sets torch's intra-op threads for the calling thread
during a run: an OpenMP team larger than the idle cores slows every batch several times
(measured: a 1024² micrograph with ``general`` took 0.55 s on 1 thread and 2–6 s on 2 threads
of a 2-core machine that also ran a napari window); :func:`spare_cores` is the count that
leaves one core to the window.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .load import Denoiser, load_denoiser

if TYPE_CHECKING:
    import torch

__all__ = ["KEEP", "clear_cache", "cpu_threads", "spare_cores", "use_denoiser"]

KEEP = 2
"""Loaded models kept for the next run."""

_Key = tuple[str, int, int, str]
_LOADED: OrderedDict[_Key, tuple[Denoiser, threading.Lock]] = OrderedDict()
_GUARD = threading.Lock()


@contextmanager
def use_denoiser(model: str | os.PathLike[str] | None,
                 device: str | torch.device = "auto") -> Iterator[Denoiser]:
    """Lend the loaded model for ``model`` on ``device``, loading it on first use.

    Parameters
    ----------
    model, device
        As for :func:`~napari_cryoden.inference.load.load_denoiser`.

    Yields
    ------
    Denoiser
        The model, reserved for the ``with`` block (another run with it waits).

    Raises
    ------
    WeightFileError
        The file is missing or unreadable (as ``load_denoiser``).
    InputError
        The device is not available here.
    """
    from ..models.pretrained import resolve_model
    from .options import to_device

    path, dev = resolve_model(model), to_device(device)
    with _GUARD:
        entry = _LOADED.get(key := _key(path, dev))
        if entry is None:
            entry = load_denoiser(path, dev), threading.Lock()
            _LOADED[key] = entry
            while len(_LOADED) > KEEP:
                _LOADED.popitem(last=False)
        _LOADED.move_to_end(key)
    with entry[1]:
        yield entry[0]


def _key(path: Path, dev: torch.device) -> _Key:
    """Return the cache key: the file (path, mtime, size) and the device."""
    try:
        stat = path.stat()
    except OSError:
        return str(path), -1, -1, str(dev)  # load_denoiser raises the user's error
    return str(path.resolve()), stat.st_mtime_ns, stat.st_size, str(dev)


def clear_cache() -> None:
    """Forget every loaded model (their memory is freed once no run holds them)."""
    with _GUARD:
        _LOADED.clear()


def spare_cores() -> int:
    """Return the CPU cores this process may use, less one for the window's thread (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


@contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Run torch's CPU operators of this thread on ``threads`` threads inside the block.

    None changes nothing. The previous count is restored afterwards.
    """
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
