"""Read, denoise and write micrographs at once: reader threads, compute here, writer threads.

``cryoden denoise`` and the Denoise panel's *Denoise files on disk…* denoise a dataset as a
pipeline: while the device denoises one micrograph, reader threads read the next ones and writer
threads write the last ones, so neither the disk nor the device waits on the other. Queues between
the stages are bounded, so host memory holds at most ``readers + depth`` micrographs read ahead,
one being denoised and ``depth + writers`` waiting to be written, however many files there are.
Decoding (MRC, compressed TIFF) and writing release the GIL in numpy/zlib/OS calls, so threads
suffice; the compute stays in the calling thread, which owns the device.

:func:`run_pipeline` is generic over three functions (read, compute, write) and yields one
:class:`~.batch.FileResult` per file as each is written (so in the order they finish, which
may differ from the input order by up to the queue depth). A file that fails at any stage is a
``"failed"`` result with a one-line message naming it; the run goes on. ``stop`` (a
``threading.Event``) ends the run: no new file is read, the one being denoised is dropped when
the compute's progress callback raises :class:`~napari_cryoden.errors.Cancelled`, results
already computed are still written (each atomically), and :class:`Cancelled` is raised once the
threads have stopped. Outputs that exist are skipped by the caller before the pipeline
(resuming a run).
"""

from __future__ import annotations

import errno
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import Cancelled
from .batch import FileResult

__all__ = ["DEFAULT_DEPTH", "DEFAULT_READERS", "DEFAULT_WRITERS", "Stages", "run_pipeline"]

DEFAULT_READERS, DEFAULT_WRITERS, DEFAULT_DEPTH = 2, 2, 2
_DONE = object()  # end of a queue
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


@dataclass(frozen=True)
class Stages:
    """The three steps of one file, each given its :class:`FileResult` (status ``"done"``).

    ``read(result) -> item``; ``compute(result, item) -> item``; ``write(result, item) ->
    result`` (the result to report, e.g. with a note). Any exception but
    :class:`~napari_cryoden.errors.Cancelled` from one of them fails that file only.
    """

    read: Callable[[FileResult], Any]
    compute: Callable[[FileResult, Any], Any]
    write: Callable[[FileResult, Any], FileResult]


def run_pipeline(results: Sequence[FileResult], stages: Stages, *,
                 stop: threading.Event | None = None, readers: int = DEFAULT_READERS,
                 writers: int = DEFAULT_WRITERS, depth: int = DEFAULT_DEPTH,
                 ) -> Iterator[FileResult]:
    """Run ``stages`` over the files of ``results``; yield each file's outcome when written.

    Parameters
    ----------
    results
        One :class:`FileResult` per file to denoise (source, output, index), in input order.
    stages
        What reading, denoising and writing a file mean.
    stop
        Set it to cancel (see the module docstring).
    readers, writers
        Threads reading and writing (at least 1 each).
    depth
        Files waiting between two stages (at least 1).

    Raises
    ------
    Cancelled
        ``stop`` was set; everything computed before was written.
    """
    stop = stop if stop is not None else threading.Event()
    todo: queue.Queue[Any] = queue.Queue()
    for result in results:
        todo.put(result)
    ready: queue.Queue[Any] = queue.Queue(maxsize=max(depth, 1))
    computed: queue.Queue[Any] = queue.Queue(maxsize=max(depth, 1))
    finished: queue.Queue[FileResult] = queue.Queue()
    halt = threading.Event()  # readers: take no more files (cancelled, or the caller left)
    read_threads = [_start(_reader, todo, ready, stages, halt) for _ in range(max(readers, 1))]
    write_threads = [_start(_writer, computed, finished, stages)
                     for _ in range(max(writers, 1))]
    cancelled = False
    try:
        cancelled = yield from _compute(len(results), len(read_threads), ready, computed,
                                        finished, stages, stop, halt)
    finally:
        halt.set()
        _drain(todo)
        for thread in read_threads:
            while thread.is_alive():
                _drain(ready)
                thread.join(0.05)
        for _ in write_threads:
            computed.put(_DONE)
        for thread in write_threads:
            thread.join()
    if cancelled:
        yield from _reported(finished)  # written after the stop: finished, so reported
        raise Cancelled("denoising cancelled")


def _compute(n_files: int, n_readers: int, ready: queue.Queue[Any], computed: queue.Queue[Any],
             finished: queue.Queue[FileResult], stages: Stages, stop: threading.Event,
             halt: threading.Event) -> Generator[FileResult, None, bool]:
    """Denoise files as they are read; yield results as the writers report them.

    Returns whether the run was cancelled (``stop`` set, or the compute raised Cancelled).
    """
    reported, readers_done = 0, 0
    while readers_done < n_readers:
        for result in _reported(finished):
            reported += 1
            yield result
        if stop.is_set():
            halt.set()
            return True
        got = ready.get()
        if got is _DONE:
            readers_done += 1
            continue
        result, item = got
        if isinstance(item, BaseException):
            computed.put((_failed(result, item), None))
            continue
        start = time.perf_counter()
        try:
            data = stages.compute(result, item)
        except Cancelled:
            stop.set()
            halt.set()
            return True
        except Exception as exc:  # one bad file must not end the run
            computed.put((_failed(result, exc), None))
            continue
        del item
        computed.put((replace(result, seconds=result.seconds + time.perf_counter() - start),
                      data))
    for _ in range(n_files - reported):
        yield finished.get()
    return False


def _reported(finished: queue.Queue[FileResult]) -> Iterator[FileResult]:
    while True:
        try:
            yield finished.get_nowait()
        except queue.Empty:
            return


def _reader(todo: queue.Queue[Any], ready: queue.Queue[Any], stages: Stages,
            stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            result = todo.get_nowait()
        except queue.Empty:
            break
        start = time.perf_counter()
        try:
            item: Any = stages.read(result)
        except Exception as exc:  # reported by the compute stage, in its turn
            item = exc
        result = replace(result, seconds=time.perf_counter() - start)
        _put(ready, (result, item), stop)
    _put(ready, _DONE, None)


def _writer(computed: queue.Queue[Any], finished: queue.Queue[FileResult],
            stages: Stages) -> None:
    while True:
        got = computed.get()
        if got is _DONE:
            return
        result, data = got
        if result.status == "failed":
            finished.put(result)
            continue
        start = time.perf_counter()
        try:
            written = stages.write(result, data)
        except Exception as exc:
            written = _failed(result, exc)
            if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
                written = replace(written, disk_full=True)
        del data
        finished.put(replace(written, seconds=written.seconds + time.perf_counter() - start))


def _put(target: queue.Queue[Any], item: Any, stop: threading.Event | None) -> None:
    """Put ``item``, giving up (dropping it) once ``stop`` is set, but never ``_DONE``."""
    while True:
        try:
            target.put(item, timeout=0.05)
            return
        except queue.Full:
            if stop is not None and stop.is_set():
                return


def _drain(source: queue.Queue[Any]) -> None:
    while True:
        try:
            source.get_nowait()
        except queue.Empty:
            return


def _start(target: Callable[..., None], *args: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def _failed(result: FileResult, exc: BaseException) -> FileResult:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if str(result.source) not in text and str(result.output) not in text:
        text = f"{result.source}: {text}"  # name the file, once
    return replace(result, status="failed", message=text)
