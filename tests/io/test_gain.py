"""Gain references for split-frames: RELION's and MotionCor2's rotations and flips, verified."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile

from napari_cryoden.cli.main import main
from napari_cryoden.errors import InputError
from napari_cryoden.io.frames import frame_sums, read_gain
from napari_cryoden.io.images import read_image, write_mrc

NY, NX = 6, 10  # not square, so a wrong quarter turn cannot pass


def _relion(src: np.ndarray, rotation: int, flip: int) -> np.ndarray:
    """RELION's ImageOp (src/jaz/img_proc/image_op.h) written out pixel by pixel, then flipped.

    rotate90: dest(x, ydim-1-y) = src(y, x); rotate180: dest(ydim-1-y, xdim-1-x) = src(y, x);
    rotate270: dest(xdim-1-x, y) = src(y, x); flipY: dest(y) = src(ydim-1-y); flipX likewise.
    """
    ny, nx = src.shape
    if rotation in (1, 3):
        dest = np.zeros((nx, ny), src.dtype)
    else:
        dest = np.zeros((ny, nx), src.dtype)
    for y in range(ny):
        for x in range(nx):
            if rotation == 0:
                dest[y, x] = src[y, x]
            elif rotation == 1:
                dest[x, ny - 1 - y] = src[y, x]
            elif rotation == 2:
                dest[ny - 1 - y, nx - 1 - x] = src[y, x]
            else:
                dest[nx - 1 - x, y] = src[y, x]
    if flip == 1:
        dest = dest[::-1, :]
    elif flip == 2:
        dest = dest[:, ::-1]
    return dest


@pytest.mark.parametrize("rotation", [0, 1, 2, 3])
@pytest.mark.parametrize("flip", [0, 1, 2])
def test_gain_turns_follow_relion_pixel_for_pixel(tmp_path: Path, rotation: int,
                                                  flip: int) -> None:
    stored = np.arange(NY * NX, dtype=np.float32).reshape(NY, NX) + 1
    write_mrc(tmp_path / "gain.mrc", stored, 1.0)
    np.testing.assert_array_equal(read_gain(tmp_path / "gain.mrc", rotation, flip),
                                  _relion(stored, rotation, flip))


def test_a_gain_stored_turned_corrects_the_movie_when_turned_back(tmp_path: Path) -> None:
    """A detector whose columns differ in gain; the file stores the gain as a camera would."""
    rng = np.random.default_rng(0)
    true_gain = (0.5 + rng.random((NY, NX))).astype(np.float32)  # multiplies a frame to correct
    frames = rng.poisson(40.0, (8, NY, NX)) / true_gain  # what the camera recorded
    write_mrc(tmp_path / "movie.mrcs", frames.astype(np.float32), 1.1)
    # the facility's gain file is the true gain rotated by 3 and flipped left to right, so
    # that RELION needs --gain_rot 1 --gain_flip 2 (rotate back, then flip) to use it
    stored = np.rot90(np.fliplr(true_gain), 1)  # undo the flip, then the clockwise turn
    tifffile.imwrite(tmp_path / "gain.tif", stored)
    gain = read_gain(tmp_path / "gain.tif", 1, 2)
    np.testing.assert_allclose(gain, _relion(stored, 1, 2))
    np.testing.assert_allclose(gain, true_gain, rtol=1e-6)
    even, odd, _ = frame_sums(tmp_path / "movie.mrcs", gain=gain)
    expected = (frames * true_gain).astype(np.float64)
    np.testing.assert_allclose(even, expected[0::2].sum(0), rtol=1e-5)
    np.testing.assert_allclose(odd, expected[1::2].sum(0), rtol=1e-5)


def test_cli_applies_the_gain_and_says_so(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    frames = np.full((4, NY, NX), 10.0, np.float32)
    write_mrc(tmp_path / "movie.mrcs", frames, 1.1)
    gain = np.ones((NY, NX), np.float32)
    gain[:, 0] = 2.0  # the first column doubled, in the frames' orientation
    write_mrc(tmp_path / "gain.mrc", np.rot90(gain, 1).copy(), 1.1)  # stored turned back by 1
    assert main(["split-frames", str(tmp_path / "movie.mrcs"), "--out", str(tmp_path / "h"),
                 "--gain", str(tmp_path / "gain.mrc"), "--gain-rot", "1"]) == 0
    assert "each frame times the gain" in capsys.readouterr().out
    even = read_image(tmp_path / "h/even/movie.mrc")[0]
    assert even[0, 0] == pytest.approx(40.0) and even[0, 1] == pytest.approx(20.0)
    with mrcfile.open(tmp_path / "h/odd/movie.mrc") as mrc:
        assert float(mrc.voxel_size.x) == pytest.approx(1.1)


@pytest.mark.parametrize(("gain_shape", "message"), [
    ((NX, NY), r"frames are 10 x 6 px but the gain reference is 6 x 10 px: rotate it by 1 or 3"),
    ((2 * NY, 2 * NX), r"gain reference is 20 x 12 px: one of them is super-resolution"),
    ((5, 5), r"frames are 10 x 6 px but the gain reference is 5 x 5 px$"),
])
def test_a_gain_of_another_shape_is_refused_in_one_line(tmp_path: Path, gain_shape: tuple,
                                                        message: str) -> None:
    write_mrc(tmp_path / "movie.mrcs", np.ones((2, NY, NX), np.float32), 1.0)
    write_mrc(tmp_path / "gain.mrc", np.ones(gain_shape, np.float32), 1.0)
    with pytest.raises(InputError, match=message) as info:
        frame_sums(tmp_path / "movie.mrcs", gain=read_gain(tmp_path / "gain.mrc"))
    assert str(info.value).startswith(str(tmp_path / "movie.mrcs"))


def test_bad_gain_files_and_flags_are_refused(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = np.ones((NY, NX), np.float32)
    bad[0, 0] = np.nan
    write_mrc(tmp_path / "nan.mrc", bad, 1.0)
    with pytest.raises(InputError, match=r"nan.mrc: 1 NaN or infinite pixel"):
        read_gain(tmp_path / "nan.mrc")
    write_mrc(tmp_path / "movie.mrcs", np.ones((2, NY, NX), np.float32), 1.0)
    assert main(["split-frames", str(tmp_path / "movie.mrcs"), "--out", str(tmp_path / "h"),
                 "--gain-rot", "1"]) == 2
    assert "--gain-rot and --gain-flip need --gain" in capsys.readouterr().err
    assert not (tmp_path / "h").exists()
