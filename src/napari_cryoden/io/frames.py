"""Even/odd frame sums of movie stacks, for Noise2Noise training (``cryoden split-frames``).

A movie's frames are independent exposures of the same specimen: the sum of its even frames
(0, 2, 4, …) and the sum of its odd frames (1, 3, 5, …) are two images of the same signal with
independent noise, each at about half the dose, which is what Noise2Noise learns from.

Movies are read one frame at a time: MRC stacks through a memory map placed by the checked
header (:mod:`.mrc`), TIFF stacks page by page with tifffile (a compressed page is decoded
alone), EER movies as fractions of grouped detector frames (:mod:`.eer`, ``eer_grouping``
frames each). Host memory holds two float64 sums and one frame, whatever the number of frames.
A gain reference (:func:`read_gain`: MRC or TIFF, rotated and flipped as RELION's
``--gain_rot``/``--gain_flip`` and MotionCor2's ``-RotGain``/``-FlipGain`` say) multiplies every
frame, as both programs do. :func:`movie_frames` gives the frames so, one at a time, to align
them first (:mod:`napari_cryoden.data.align`, with torch, reads the movie twice). There is no
defect correction; the even/odd sums your motion-correction program writes may be better still
(see docs/self-supervised.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError
from .eer import DEFAULT_EER_GROUPING, is_eer, iter_eer_fractions
from .formats import file_errors, format_of, open_array, read_info
from .images import write_mrc
from .tiff import quiet_tifffile

__all__ = ["FrameSums", "GAIN_FLIPS", "GAIN_ROTATIONS", "finished_sums", "frame_sums",
           "iter_frames", "movie_frames", "read_gain", "split_frames", "write_halves"]

GAIN_ROTATIONS = (0, 1, 2, 3)
"""Quarter turns of the gain reference: RELION's ``--gain_rot``, MotionCor2's ``-RotGain`` (1:
90° clockwise as relion_display shows it, counter-clockwise in MotionCor2's words)."""
GAIN_FLIPS = (0, 1, 2)
"""After the rotation: 0 none, 1 upside down (flip Y), 2 left to right (flip X); RELION's
``--gain_flip``, MotionCor2's ``-FlipGain``."""


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
    drift: float | None = None
    """With alignment: the largest frame shift from the middle frame, px (None: not aligned)."""


@contextlib.contextmanager
def iter_frames(path: str | os.PathLike[str], eer_grouping: int = DEFAULT_EER_GROUPING,
                ) -> Iterator[tuple[int, float, Iterator[np.ndarray]]]:
    """Open a movie; yield ``(n_frames, pixel_size, frames)``, ``frames`` one 2D array at a time.

    The arrays are in the file's dtype and may be views of a memory map: use each before
    taking the next. An EER movie's frames are its fractions of ``eer_grouping`` detector
    frames (:func:`.eer.iter_eer_fractions`).

    Raises
    ------
    InputError
        The file is unreadable or not a stack of at least 2 frames (the message names it).
    """
    if is_eer(path):
        with iter_eer_fractions(path, eer_grouping) as (eer, fractions):
            yield eer.fractions(eer_grouping), eer.pixel_size, fractions
        return
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


def read_gain(path: str | os.PathLike[str], rotation: int = 0, flip: int = 0) -> np.ndarray:
    """Read a gain reference and turn it as RELION and MotionCor2 do: rotate, then flip.

    ``rotation`` r turns the image by r × 90°: pixel ``(y, x)`` of the file goes to
    ``(x, ny − 1 − y)`` for r = 1 (RELION's ``ImageOp::rotate90``, "clockwise in
    relion_display", MotionCor2's ``-RotGain 1``); ``flip`` 1 reverses the rows, 2 the columns.
    Row 0 is the file's first line, as everywhere in this package.

    Raises
    ------
    InputError
        The file is unreadable, not one 2D image, holds NaN/inf (refused by the reader), or the
        turn is not one of
        :data:`GAIN_ROTATIONS` / :data:`GAIN_FLIPS`.
    """
    from .images import read_image

    if rotation not in GAIN_ROTATIONS or flip not in GAIN_FLIPS:
        raise InputError(f"{path}: gain rotation must be 0-3 and flip 0-2, got {rotation} and "
                         f"{flip}")
    gain = read_image(path)[0]
    if gain.ndim != 2:
        raise InputError(f"{path}: a gain reference is one 2D image, got shape {gain.shape}")
    gain = np.rot90(gain, -rotation)
    if flip:
        gain = np.flip(gain, axis=0 if flip == 1 else 1)
    return np.ascontiguousarray(gain, dtype=np.float32)


def frame_sums(path: str | os.PathLike[str], *, equal_halves: bool = False,
               gain: np.ndarray | None = None, eer_grouping: int = DEFAULT_EER_GROUPING,
               ) -> tuple[np.ndarray, np.ndarray, FrameSums]:
    """Sum the even and the odd frames of a movie, reading it frame by frame.

    Parameters
    ----------
    path
        The movie (a stack of frames).
    equal_halves
        Leave out the last frame of a movie with an odd number of frames, so that both sums
        hold the same number of frames (the same dose).
    gain
        A gain reference (:func:`read_gain`, already turned) that multiplies every frame.
    eer_grouping
        EER movies: detector frames per fraction (a "frame" here is a fraction).

    Returns
    -------
    even, odd : numpy.ndarray
        The float32 sums (accumulated in float64).
    info : FrameSums
        The frame counts and the pixel size (no paths).

    Raises
    ------
    InputError
        The movie is unreadable, its frames and the gain differ in shape, or a sum holds NaN
        or infinite pixels.
    """
    sums: list[np.ndarray] = []  # even, odd: float64
    options = (equal_halves, gain, eer_grouping)
    with movie_frames(path, *options) as (n_frames, pixel_size, used, frames):
        for k, frame in enumerate(frames):
            if k < 2:
                sums.append(np.zeros(frame.shape))
            np.add(sums[k % 2], frame, out=sums[k % 2])  # cast on the fly, no frame copy
    info = FrameSums(Path(path), n_frames, (used + 1) // 2, used // 2, pixel_size)
    return (*finished_sums(path, *sums), info)


def finished_sums(path: str | os.PathLike[str], even: np.ndarray,
                  odd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the even and odd sums as float32 after refusing NaN or infinite pixels.

    Raises
    ------
    InputError
        A sum holds NaN or infinite pixels (the message names ``path`` and the half).
    """
    for name, total in (("even", even), ("odd", odd)):
        if not np.isfinite(total).all():
            raise InputError(f"{path}: NaN or infinite pixels in the {name} frames")
    return even.astype(np.float32), odd.astype(np.float32)


@contextlib.contextmanager
def movie_frames(path: str | os.PathLike[str], equal_halves: bool = False,
                 gain: np.ndarray | None = None, eer_grouping: int = DEFAULT_EER_GROUPING,
                 ) -> Iterator[tuple[int, float, int, Iterator[np.ndarray]]]:
    """Yield ``(n_frames, pixel_size, used, frames)``: the frames to sum, one at a time.

    ``used`` frames are given (the last left out of an odd count with ``equal_halves``), each
    times ``gain`` when given (float32), else as stored; the arguments are as in
    :func:`frame_sums`.

    Raises
    ------
    InputError
        As :func:`frame_sums` (the gain's shape is checked on the first frame).
    """
    with iter_frames(path, eer_grouping) as (n_frames, pixel_size, frames):
        used = n_frames - (n_frames % 2 if equal_halves else 0)

        def kept() -> Iterator[np.ndarray]:
            with file_errors(Path(path)):
                for k, frame in enumerate(frames):
                    if k >= used:
                        return
                    if k == 0 and gain is not None:
                        _check_gain(path, frame.shape, gain.shape)
                    yield frame if gain is None else np.multiply(frame, gain, dtype=np.float32)

        yield n_frames, pixel_size, used, kept()


def _check_gain(path: str | os.PathLike[str], frame: tuple[int, ...],
                gain: tuple[int, ...]) -> None:
    """Refuse, in one line, a gain reference whose shape is not the frames'."""
    if tuple(gain) == tuple(frame):
        return
    hint = ""
    if tuple(gain) == tuple(frame)[::-1]:
        hint = ": rotate it by 1 or 3 quarter turns (--gain-rot)"
    elif tuple(g // 2 for g in gain) == tuple(frame) or tuple(2 * g for g in gain) == tuple(frame):
        hint = ": one of them is super-resolution; bin or give the matching gain"
    raise InputError(f"{path}: frames are {frame[1]} x {frame[0]} px but the gain reference is "
                     f"{gain[1]} x {gain[0]} px{hint}")


def split_frames(movie: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                 equal_halves: bool = False, gain: np.ndarray | None = None,
                 eer_grouping: int = DEFAULT_EER_GROUPING) -> FrameSums:
    """Write the even and the odd frame sums of ``movie`` as two MRC files.

    The files are ``out_dir/even/NAME.mrc`` and ``out_dir/odd/NAME.mrc`` (NAME: the movie's
    stem), float32 with the movie's pixel size, each written atomically. ``equal_halves``,
    ``gain`` and ``eer_grouping`` are as in :func:`frame_sums`.

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
    even, odd, sums = frame_sums(movie, equal_halves=equal_halves, gain=gain,
                                 eer_grouping=eer_grouping)
    return write_halves(even, odd, sums, out_dir)


def write_halves(even: np.ndarray, odd: np.ndarray, sums: FrameSums,
                 out_dir: str | os.PathLike[str]) -> FrameSums:
    """Write a movie's sums to ``out_dir/even/NAME.mrc`` and ``out_dir/odd/NAME.mrc``.

    Returns
    -------
    FrameSums
        ``sums`` with the two paths.

    Raises
    ------
    SaveError
        An output cannot be written.
    """
    paths = []
    for half, data in (("even", even), ("odd", odd)):
        folder = Path(out_dir) / half
        folder.mkdir(parents=True, exist_ok=True)
        paths.append(folder / f"{sums.movie.stem}.mrc")
        write_mrc(paths[-1], data, sums.pixel_size)
    return dataclasses.replace(sums, even_path=paths[0], odd_path=paths[1])


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
