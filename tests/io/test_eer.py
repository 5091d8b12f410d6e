"""EER movies: fractions of grouped detector frames, checked against tifffile and eerfile.

No EER file can be downloaded here, so the tests write their own: a BigTIFF whose pages are
frames run-length coded as the EER format describes (imagecodecs' ``imcd_eer_decode``: runs of
``skipbits`` bits read least significant bit first, a run of all ones continues without an
event, any other run is followed by 2 + 2 sub-pixel bits and an event on the pixel it reached),
with the acquisition metadata as XML in tag 65001. The writer is checked against imagecodecs'
decoder before anything else is.
"""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import imagecodecs
import mrcfile
import numpy as np
import pytest
import tifffile

from napari_cryoden.cli.main import main
from napari_cryoden.errors import InputError
from napari_cryoden.io.eer import iter_eer_fractions, read_eer_info
from napari_cryoden.io.frames import frame_sums, read_gain

PIXEL_M = 0.83e-10  # sensorPixelSize, metres at the specimen


def eer_code(events: np.ndarray, skipbits: int = 7) -> bytes:
    """Run-length code one frame of 0/1 events (raster order) as an EER strip."""
    flat = events.ravel()
    full = (1 << skipbits) - 1
    bits: list[int] = []

    def put(value: int, n: int) -> None:
        bits.extend((value >> i) & 1 for i in range(n))

    pos = 0
    for index in np.flatnonzero(flat):
        run = int(index) - pos
        while run >= full:
            put(full, skipbits)
            run -= full
        put(run, skipbits)
        put(0, 4)  # sub-pixel position: not used at 4K
        pos = int(index) + 1
    run = flat.size - pos
    while run >= full:
        put(full, skipbits)
        run -= full
    put(run, skipbits)  # the last run reaches the end of the frame
    bits += [0] * 16  # the decoder reads a whole code past the last one
    bits += [0] * (-len(bits) % 16)  # an even number of bytes
    return np.packbits(np.array(bits, np.uint8), bitorder="little").tobytes()


def write_eer(path: Path, frames: np.ndarray, *, total_dose: float | None = None,
              compression: int = 65001, pixel_m: float = PIXEL_M,
              strips: list[bytes] | None = None) -> Path:
    """Write 0/1 event frames ``(t, y, x)`` as a little-endian BigTIFF EER movie."""
    n, ny, nx = frames.shape
    items = {"numberOfFrames": n, "sensorImageHeight": ny, "sensorImageWidth": nx,
             "sensorPixelSize.height": pixel_m, "sensorPixelSize.width": pixel_m}
    if total_dose is not None:
        items["totalDose"] = total_dose
    meta = ("<metadata>" + "".join(f'<item name="{k}">{v}</item>' for k, v in items.items())
            + "</metadata>").encode()
    skip = 8 if compression == 65000 else 7
    strips = strips or [eer_code(frame, skip) for frame in frames]
    out = bytearray(b"II" + struct.pack("<HHHQ", 43, 8, 0, 0))
    data_at = []
    for strip in strips:
        data_at.append(len(out))
        out += strip
    meta_at = len(out)
    out += meta
    previous = 8  # where the offset of the next IFD goes
    for k, strip in enumerate(strips):
        out += b"\0" * (len(out) % 2)
        ifd = len(out)
        out[previous:previous + 8] = struct.pack("<Q", ifd)
        tags = [(256, 4, 1, nx), (257, 4, 1, ny), (259, 3, 1, compression), (262, 3, 1, 1),
                (273, 16, 1, data_at[k]), (277, 3, 1, 1), (278, 4, 1, ny),
                (279, 16, 1, len(strip))]
        if k == 0:
            tags.append((65001, 7, len(meta), meta_at))
        out += struct.pack("<Q", len(tags))
        for code, kind, count, value in tags:
            out += struct.pack("<HHQQ", code, kind, count, value)
        previous = len(out)
        out += struct.pack("<Q", 0)
    path.write_bytes(bytes(out))
    return path


def events(n_frames: int, shape: tuple[int, int] = (40, 56), rate: float = 0.03,
           seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n_frames, *shape)) < rate).astype(np.uint8)


@pytest.mark.parametrize("skipbits", [7, 8])
def test_the_test_writer_codes_frames_as_imagecodecs_decodes_them(skipbits: int) -> None:
    frame = events(1, (33, 70), rate=0.05, seed=skipbits)[0]
    frame[0, 0] = frame[-1, -1] = 1  # events on the first and the last pixel
    frame[5, :] = 0  # a run longer than the longest code
    decoded = imagecodecs.eer_decode(eer_code(frame, skipbits), frame.shape, skipbits, 2, 2)
    np.testing.assert_array_equal(decoded.astype(np.uint8), frame)


def test_fractions_are_sums_of_grouped_frames_and_the_header_is_read(tmp_path: Path) -> None:
    frames = events(26)
    dose = float(frames.sum() / frames[0].size)  # e/pixel over the exposure
    path = write_eer(tmp_path / "movie.eer", frames, total_dose=dose)
    info = read_eer_info(path)
    assert (info.n_frames, info.shape) == (26, (40, 56))
    assert info.pixel_size == pytest.approx(0.83)
    assert info.dose_per_frame == pytest.approx(dose / 0.83**2 / 26)
    with iter_eer_fractions(path, grouping=8) as (_, fractions):
        got = list(fractions)
    assert len(got) == 3  # 26 frames: 3 fractions of 8, 2 frames left out
    for k, fraction in enumerate(got):
        assert fraction.dtype == np.uint16
        np.testing.assert_array_equal(fraction, frames[8 * k:8 * (k + 1)].sum(0))


def test_fractions_match_eerfile_render(tmp_path: Path) -> None:
    """``eerfile.render`` groups frames by dose; with the header's dose it picks our grouping."""
    eerfile = pytest.importorskip("eerfile")
    frames = events(24, seed=3)
    path = write_eer(tmp_path / "m.eer", frames, total_dose=24 * 0.03)
    info = read_eer_info(path)
    assert info.dose_per_frame is not None
    rendered = eerfile.render(path, dose_per_output_frame=6 * info.dose_per_frame)
    with iter_eer_fractions(path, grouping=6) as (_, fractions):
        ours = np.stack(list(fractions))
    assert rendered.shape == ours.shape == (4, 40, 56)
    np.testing.assert_array_equal(ours, rendered)


def test_split_frames_cli_splits_eer_fractions_with_the_gain(tmp_path: Path, capsys) -> None:
    frames = events(40, seed=1)
    movies = tmp_path / "movies"
    movies.mkdir()
    write_eer(movies / "a.eer", frames, total_dose=40 * 0.03)
    gain = np.random.default_rng(2).uniform(0.8, 1.2, frames.shape[1:]).astype(np.float32)
    with mrcfile.new(tmp_path / "gain.mrc") as mrc:
        mrc.set_data(gain)
    code = main(["split-frames", str(movies), "--out", str(tmp_path / "out"), "--gain",
                 str(tmp_path / "gain.mrc"), "--eer-grouping", "6"])
    assert code == 0
    out = capsys.readouterr().out
    assert "40 EER frames as 6 fractions of 6" in out and "(4 left out)" in out
    assert "e/Å² each" in out
    fractions = frames[:36].reshape(6, 6, *frames.shape[1:]).sum(1).astype(np.float64)
    with mrcfile.open(tmp_path / "out" / "even" / "a.mrc") as mrc:
        np.testing.assert_allclose(mrc.data, fractions[0::2].sum(0) * gain, rtol=1e-5)
        assert float(mrc.voxel_size.x) == pytest.approx(0.83, abs=1e-3)
    with mrcfile.open(tmp_path / "out" / "odd" / "a.mrc") as mrc:
        np.testing.assert_allclose(mrc.data, fractions[1::2].sum(0) * gain, rtol=1e-5)


def test_eer_memory_is_one_page_and_one_fraction(tmp_path: Path) -> None:
    shape = (128, 128)
    peaks = {}
    for n_frames in (16, 256):
        path = write_eer(tmp_path / f"m{n_frames}.eer", events(n_frames, shape, seed=n_frames))
        tracemalloc.start()
        try:
            frame_sums(path, eer_grouping=8)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        peaks[n_frames] = peak
    movie_bytes = 256 * shape[0] * shape[1]  # the 256 decoded frames at one byte a pixel: 4 MB
    assert peaks[256] < peaks[16] + 100_000, peaks  # no growth with the number of frames
    assert peaks[256] < movie_bytes / 4, peaks


def test_bad_eer_files_are_one_line_errors_naming_the_file(tmp_path: Path) -> None:
    frames = events(8)
    plain = tmp_path / "plain.eer"
    tifffile.imwrite(plain, frames)  # a TIFF stack, not EER-coded
    with pytest.raises(InputError, match=r"plain\.eer: not an EER movie"):
        read_eer_info(plain)
    strips = [eer_code(f) for f in frames]
    strips[5] = b"\xff" * 24  # runs past the end of the frame
    broken = write_eer(tmp_path / "broken.eer", frames, strips=strips)
    with pytest.raises(InputError, match=r"broken\.eer: EER frame 5 does not decode") as err:
        frame_sums(broken, eer_grouping=2)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match=r"few\.eer: 8 EER frames make 1 fraction"):
        frame_sums(write_eer(tmp_path / "few.eer", frames), eer_grouping=5)
    with pytest.raises(InputError, match="at least 1"):
        frame_sums(write_eer(tmp_path / "g.eer", frames), eer_grouping=0)
    gain = read_gain(write_gain(tmp_path / "gain.mrc", (20, 20)))
    with pytest.raises(InputError, match=r"g\.eer: frames are 56 x 40 px but the gain"):
        frame_sums(tmp_path / "g.eer", eer_grouping=2, gain=gain)


def write_gain(path: Path, shape: tuple[int, int]) -> Path:
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.ones(shape, np.float32))
    return path
