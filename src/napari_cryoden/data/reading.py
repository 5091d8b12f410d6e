"""Reading in the background, in order, and shuffling within a bounded buffer.

The pieces of a streaming epoch that do not depend on what is read: :class:`OrderedReader` (daemon
threads whose results come back in submission order, so an epoch is reproducible whatever the
number of threads), :func:`shuffled` (a bounded shuffle buffer) and :func:`epoch_rng` (the seeded
generators of an epoch). :class:`~.stream.PatchStream` and :class:`~.packed_stream.PackedStream`
use them.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

__all__ = ["OrderedReader", "epoch_rng", "shuffled"]


class _Slot:
    """The result of one background read, waited for in submission order."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def set(self, value: Any = None, error: BaseException | None = None) -> None:
        self._value, self._error = value, error
        self._done.set()

    def result(self) -> Any:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


class OrderedReader:
    """Daemon threads applying ``fn`` to items; results are returned in item order.

    Parameters
    ----------
    fn
        Applied to each item in a background thread; an exception it raises is raised again
        where its result is taken.
    n_threads
        Threads to start; :meth:`close` joins them.
    """

    def __init__(self, fn: Callable[[Any], Any], n_threads: int) -> None:
        self._fn = fn
        self._tasks: queue.SimpleQueue[tuple[Any, _Slot] | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"cryoden-reader-{i}", daemon=True)
            for i in range(n_threads)
        ]
        for thread in self._threads:
            thread.start()

    def map(self, items: Iterable[Any], window: int) -> Iterator[Any]:
        """Yield the results of ``fn`` over ``items`` in order.

        Parameters
        ----------
        items
            Read lazily, at most ``window`` ahead of the result taken.
        window
            The most reads in flight (submitted, result not yet taken).

        Yields
        ------
        Any
            ``fn(item)`` for each item, in the order of ``items``.
        """
        pending: deque[_Slot] = deque()
        items = iter(items)
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                item = next(items, _END)
                if item is _END:
                    exhausted = True
                    break
                pending.append(_Slot())
                self._tasks.put((item, pending[-1]))
            if not pending:
                return
            yield pending.popleft().result()

    def close(self) -> None:
        """Skip the queued reads, let running ones finish, and join every thread."""
        self._stop.set()
        for _ in self._threads:
            self._tasks.put(None)
        for thread in self._threads:
            thread.join()

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            if self._stop.is_set():
                continue
            item, slot = task
            try:
                slot.set(self._fn(item))
            except BaseException as exc:  # re-raised in the consumer's thread
                slot.set(error=exc)


_END = object()


def shuffled(samples: Iterable[Any], size: int, rng: np.random.Generator) -> Iterator[Any]:
    """Pass items through a buffer of ``size``: each new item evicts a random held one.

    Parameters
    ----------
    samples
        The items, in reading order.
    size
        Items held at most (bounds memory).
    rng
        Draws the evictions and the order in which the buffer empties at the end.

    Yields
    ------
    Any
        Every item once, shuffled within the buffer's reach.
    """
    buffer: list[Any] = []
    for sample in samples:
        if len(buffer) < size:
            buffer.append(sample)
            continue
        j = int(rng.integers(size))
        evicted, buffer[j] = buffer[j], sample
        yield evicted
    for j in rng.permutation(len(buffer)):
        yield buffer[j]


def epoch_rng(seed: int, epoch: int, stream: int) -> np.random.Generator:
    """Return the generator of one purpose in one epoch of a seeded run.

    Parameters
    ----------
    seed
        The run's seed; negative seeds are allowed.
    epoch
        The epoch (0-based).
    stream
        The purpose (plan, shuffle buffer, ...): each gets an independent generator.

    Returns
    -------
    numpy.random.Generator
        The same for the same ``(seed, epoch, stream)``.
    """
    return np.random.default_rng([seed % 2**64, epoch % 2**64, stream])
