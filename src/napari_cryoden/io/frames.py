"""Even/odd frame sums of movie stacks, for Noise2Noise training (``cryoden split-frames``).

A movie's frames are independent exposures of the same specimen: the sum of its even frames
(0, 2, 4, …) and the sum of its odd frames (1, 3, 5, …) are two images of the same signal with
independent noise, each at about half the dose, which is what Noise2Noise learns from.

Movies are read one frame at a time: MRC stacks through a memory map placed by the checked
header (:mod:`.mrc`), TIFF stacks page by page with tifffile (a compressed page is decoded
alone). Host memory holds two float64 sums and one frame, whatever the number of frames.
Frames are summed as they are stored: no gain reference, no defect correction, no alignment, so
split motion-corrected or drift-free movies, or take the even/odd sums your motion-correction
program writes (see docs/self-supervised.md).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError
from .formats import file_errors, format_of, open_array, read_info
from .images import write_mrc
from .tiff import quiet_tifffile

__all__ = ["FrameSums", "frame_sums", "iter_frames", "split_frames"]


@dataclass(frozen=True)
class FrameSums:
    """The even/odd sums of one movie and where they were written."""

    movie: Path
    n_frames: int
    n_even: int
    n_odd: int
    pixel_size: float
    even_path: Path | None = None
    odd_path: Path | None = None


@contextlib.contextmanager
def iter_frames(path: str | os.PathLike[str]) -> Iterator[tuple[int, float, Iterator[np.ndarray]]]:
    """Open a movie; yield ``(n_frames, pixel_size, frames)``, ``frames`` one 2D array at a time.

    The arrays are in the file's dtype and may be views of a memory map: use each before
    taking the next.

    Raises
    ------
    InputError
        The file is unreadable or not a stack of at least 2 frames (the message names it).
    """
    info = read_info(path)
    n_frames = info.shape[0]
    if n_frames < 2:
        raise InputError(f"{info.path}: a single {info.shape[2]}x{info.shape[1]} image, not a "
                         "movie; split-frames needs a stack of at least 2 frames")
    tif = _open_paged_tiff(info.path, n_frames)
    if tif is not None:
        try:
            yield n_frames, info.pixel_size, _tiff_frames(tif, info.shape)
        finally:
            tif.close()
        return
    with file_errors(info.path), quiet_tifffile():  # MRC (memory map), or a TIFF of few pages
        array, close = open_array(info)
    try:
        yield n_frames, info.pixel_size, (array[k] for k in range(n_frames))
    finally:
        del array
        close()


def frame_sums(path: str | os.PathLike[str], *,
               equal_halves: bool = False) -> tuple[np.ndarray, np.ndarray, FrameSums]:
    """Sum the even and the odd frames of a movie, reading it frame by frame.

    Parameters
    ----------
    path
        The movie (a stack of frames).
    equal_halves
        Leave out the last frame of a movie with an odd number of frames, so that both sums
        hold the same number of frames (the same dose).

    Returns
    -------
    even, odd : numpy.ndarray
        The float32 sums (accumulated in float64).
    info : FrameSums
        The frame counts and the pixel size (no paths).

    Raises
    ------
    InputError
        The movie is unreadable, or a sum holds NaN or infinite pixels.
    """
    with iter_frames(path) as (n_frames, pixel_size, frames):
        used = n_frames - (n_frames % 2 if equal_halves else 0)
        sums: list[np.ndarray] = []  # even, odd: float64
        with file_errors(Path(path)):
            for k, frame in enumerate(frames):
                if k >= used:
                    break
                if k < 2:
                    sums.append(np.zeros(frame.shape))
                np.add(sums[k % 2], frame, out=sums[k % 2])  # cast on the fly, no frame copy
    even, odd = sums
    for name, total in (("even", even), ("odd", odd)):
        if not np.isfinite(total).all():
            raise InputError(f"{path}: NaN or infinite pixels in the {name} frames")
    info = FrameSums(Path(path), n_frames, (used + 1) // 2, used // 2, pixel_size)
    return even.astype(np.float32), odd.astype(np.float32), info


def split_frames(movie: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                 equal_halves: bool = False) -> FrameSums:
    """Write the even and the odd frame sums of ``movie`` as two MRC files.

    The files are ``out_dir/even/NAME.mrc`` and ``out_dir/odd/NAME.mrc`` (NAME: the movie's
    stem), float32 with the movie's pixel size, each written atomically. ``equal_halves`` is as
    in :func:`frame_sums`.

    Returns
    -------
    FrameSums
        The frame counts, the pixel size and the two files written.

    Raises
    ------
    InputError
        The movie is unreadable, a single image, or holds NaN/infinite pixels.
    SaveError
        An output cannot be written.
    """
    even, odd, sums = frame_sums(movie, equal_halves=equal_halves)
    paths = []
    for half, data in (("even", even), ("odd", odd)):
        folder = Path(out_dir) / half
        folder.mkdir(parents=True, exist_ok=True)
        paths.append(folder / f"{Path(movie).stem}.mrc")
        write_mrc(paths[-1], data, sums.pixel_size)
    return FrameSums(sums.movie, sums.n_frames, sums.n_even, sums.n_odd, sums.pixel_size,
                     paths[0], paths[1])


def _open_paged_tiff(path: Path, n_frames: int) -> tifffile.TiffFile | None:
    """Return the open TIFF when it holds one page per frame (read page by page), else None."""
    if format_of(path).family != "tiff":
        return None
    with file_errors(path), quiet_tifffile():
        tif = tifffile.TiffFile(path)
        try:
            if len(tif.pages) == n_frames:
                tif.pages.cache = False  # a page is dropped once the next one is read
                return tif
        except BaseException:
            tif.close()
            raise
    tif.close()
    return None


def _tiff_frames(tif: tifffile.TiffFile, shape: tuple[int, int, int]) -> Iterator[np.ndarray]:
    """Frames of a TIFF movie, one page decoded at a time."""
    n_frames, ny, nx = shape
    with quiet_tifffile():
        for k in range(n_frames):
            frame = tif.pages[k].asarray()
            if frame.shape != (ny, nx):
                raise InputError(f"{tif.filehandle.path}: page {k} has shape {frame.shape}, the "
                                 f"first is {nx}x{ny}")
            yield frame
