"""The read side of :class:`~.packed_stream.PackedStream`: a ring of whole-batch host buffers.

Reader threads fill one patch per task with a positioned read (``os.preadv``, which releases the
GIL) straight into the buffer; the consumer's thread waits for a batch, copies it to the device
(on CUDA without blocking, on a side stream) and refills a buffer only once the CUDA event behind
its last copy has completed.
"""

from __future__ import annotations

import io
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from .packed import PackedStore

__all__ = ["RING", "RING_BYTES", "RING_MOST", "Ring", "batch_bytes", "depth_for", "ring_depth"]

RING_MOST = 4
"""The most whole-batch host buffers: one being copied while three are read."""

RING_BYTES = 128 << 20
"""Host bytes the ring's buffers may hold; it keeps at least two (one copied while one is
read). Two read as fast as four from a cold store with a training step of the fused kernels'
length (``benchmarks/bench_ring.py``: 1024² float16 batches of 32, 64 MiB each), so four such
buffers only cost host memory (issue 18); small batches keep four, against the jitter of short
reads."""

RING: int | None = None
"""A fixed number of buffers for every ring made while it is set (benchmarks); None: from
:func:`ring_depth`. Read when a :class:`Ring` is made, which keeps it as :attr:`Ring.depth`."""


def ring_depth(batch_bytes: int) -> int:
    """Return the whole-batch host buffers for batches of ``batch_bytes``.

    :data:`RING` when it is set, else as many as fit in :data:`RING_BYTES`, from 2 to
    :data:`RING_MOST`.
    """
    if RING is not None:
        return RING
    return max(2, min(RING_MOST, RING_BYTES // max(1, batch_bytes)))


class _Slot:
    """One whole-batch host buffer per array, plus offset, scale and crop corner per patch."""

    def __init__(self, arrays: Sequence[str], batch_size: int, p: int, pinned: bool) -> None:
        self.host = {name: torch.empty((batch_size, p, p), dtype=torch.float16, pin_memory=pinned)
                     for name in arrays}
        self.bytes = {name: t.numpy().view(np.uint8).reshape(batch_size, -1)
                      for name, t in self.host.items()}
        self.extra = torch.empty((batch_size, 4), dtype=torch.float32, pin_memory=pinned)
        self.event: Any = None  # CUDA event recorded behind the last copy out of this slot
        self.n, self.remaining = 0, 0
        self.error: BaseException | None = None
        self.done, self.lock = threading.Event(), threading.Lock()

    def finished(self, error: BaseException | None = None) -> None:
        with self.lock:
            self.remaining -= 1
            self.error = self.error or error
            if self.remaining == 0 or error is not None:
                self.done.set()


class Ring:
    """The host buffers and the threads that fill them, one patch per task."""

    def __init__(self, store: PackedStore, batch_size: int, n_threads: int, pinned: bool) -> None:
        self._store, self._arrays = store, store.arrays
        # batches in flight: the stream submits at most this many ahead
        self.depth = depth_for(store, batch_size)
        self._slots = [_Slot(self._arrays, batch_size, store.patch_size, pinned)
                       for _ in range(self.depth)]
        self._tasks: queue.SimpleQueue[tuple[_Slot, int, int] | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._files: list[io.FileIO] = []
        try:
            for i in range(n_threads):
                files = [open(store.file(name), "rb", buffering=0) for name in self._arrays]
                self._files += files
                self._threads.append(threading.Thread(target=self._work, args=(files,),
                                                      name=f"cryoden-packed-{i}", daemon=True))
        except OSError as exc:
            self.close()
            raise InputError(f"{exc.filename}: cannot read ({exc.strerror})") from None
        for thread in self._threads:
            thread.start()

    def submit(self, k: int, indices: np.ndarray, extra: np.ndarray) -> None:
        """Fill slot ``k % ring`` with patches ``indices`` once its last copy has completed."""
        slot = self._slots[k % self.depth]
        if slot.event is not None:
            slot.event.synchronize()
            slot.event = None
        slot.n, slot.remaining, slot.error = len(indices), len(indices), None
        slot.done.clear()
        slot.extra.numpy()[: len(indices)] = extra
        for j, index in enumerate(indices):
            self._tasks.put((slot, j, int(index)))

    def deliver(self, k: int, device: torch.device, side: Any, dtype: torch.dtype
                ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Wait for batch ``k`` and copy it to ``device``.

        CUDA: float16, non-blocking on the ``side`` stream. Elsewhere: converted to ``dtype`` in
        the same (blocking) copy, so the buffer can be refilled at once.
        """
        slot = self._slots[k % self.depth]
        slot.done.wait()
        if slot.error is not None:
            raise slot.error
        host = {name: t[: slot.n] for name, t in slot.host.items()}
        extra = slot.extra[: slot.n]
        if side is None:
            return ({name: t.to(device, dtype, copy=True) for name, t in host.items()},
                    extra.to(device, copy=True))
        with torch.cuda.stream(side):
            arrays = {name: t.to(device, non_blocking=True) for name, t in host.items()}
            extra_d = extra.to(device, non_blocking=True)
            slot.event = torch.cuda.Event()
            slot.event.record(side)
        current = torch.cuda.current_stream(device)
        current.wait_event(slot.event)
        for tensor in (*arrays.values(), extra_d):
            tensor.record_stream(current)
        return arrays, extra_d

    def batches(self, n_batches: int, plan: Callable[[int], tuple[np.ndarray, np.ndarray]],
                device: torch.device, side: Any, dtype: torch.dtype
                ) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        """Deliver batches ``0 … n_batches-1``, each submitted :attr:`depth` batches ahead.

        ``plan(k)`` gives batch ``k``'s patch indices and its ``extra`` rows (as
        :meth:`submit`); each batch is delivered as :meth:`deliver` does.
        """
        submitted = 0
        for k in range(n_batches):
            while submitted < min(n_batches, k + self.depth):
                self.submit(submitted, *plan(submitted))
                submitted += 1
            yield self.deliver(k, device, side, dtype)

    def close(self) -> None:
        """Skip queued reads, join the threads, close the files; wait for in-flight copies."""
        self._stop.set()
        for _ in self._threads:
            self._tasks.put(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join()
        for file in self._files:
            file.close()
        for slot in self._slots:
            if slot.event is not None:
                slot.event.synchronize()
        self._slots = []

    def _work(self, files: list[io.FileIO]) -> None:
        size = self._store.patch_bytes
        while (task := self._tasks.get()) is not None:
            slot, j, index = task
            if self._stop.is_set():
                continue
            try:
                for name, file in zip(self._arrays, files, strict=True):
                    _read_into(file, memoryview(slot.bytes[name][j]), index * size)
            except BaseException as exc:  # re-raised in the consumer's thread
                slot.finished(exc)
            else:
                slot.finished()


def batch_bytes(store: PackedStore, batch_size: int) -> int:
    """Host bytes of one whole-batch buffer: every array's patches and 16 bytes per patch."""
    return batch_size * (len(store.arrays) * store.patch_bytes + 16)


def depth_for(store: PackedStore, batch_size: int) -> int:
    """Return the buffers a :class:`Ring` over ``store`` holds for ``batch_size``."""
    return ring_depth(batch_bytes(store, batch_size))


def _read_into(file: io.FileIO, buffer: memoryview, offset: int) -> None:
    """Fill ``buffer`` from ``offset`` of ``file`` (positioned reads; safe across threads)."""
    got = 0
    while got < len(buffer):
        if hasattr(os, "preadv"):
            n = os.preadv(file.fileno(), [buffer[got:]], offset + got)
        else:  # pragma: no cover - Windows: each thread has its own file object
            file.seek(offset + got)
            n = file.readinto(buffer[got:]) or 0
        if n == 0:
            raise InputError(f"{Path(file.name)}: ends at byte {offset + got}, inside patch "
                             f"{offset // len(buffer)}: truncated store")
        got += n
