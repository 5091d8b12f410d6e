"""Even/odd frame sums of movies (``cryoden split-frames``) and simulated movies."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile

from napari_cryoden.cli.main import main
from napari_cryoden.config.sections import ConfigError
from napari_cryoden.errors import InputError
from napari_cryoden.io.frames import frame_sums, split_frames
from napari_cryoden.io.images import read_image
from napari_cryoden.simulation.micrographs import simulate_dataset
from napari_cryoden.simulation.movies import simulate_movie_dataset
from napari_cryoden.simulation.params import SimulationParams


def movie(n_frames: int, shape: tuple[int, int] = (24, 20), dtype: str = "uint16",
          seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 9, (n_frames, *shape)).astype(dtype)


def write_mrc_movie(path: Path, frames: np.ndarray, pixel_size: float = 0.8) -> Path:
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(frames)
        mrc.voxel_size = pixel_size
    return path


def write_tiff_movie(path: Path, frames: np.ndarray, pixel_size: float = 0.85) -> Path:
    tifffile.imwrite(path, frames, compression="zlib", photometric="minisblack",
                     resolution=(1e8 / pixel_size, 1e8 / pixel_size),
                     resolutionunit="CENTIMETER")
    return path


@pytest.mark.parametrize(("suffix", "dtype", "n_frames"), [
    (".mrcs", "uint16", 6), (".mrc", "int16", 7), (".mrcs", "float32", 2),
    (".tif", "uint16", 7), (".tiff", "uint8", 4),
])
def test_sums_equal_numpy_sums_of_even_and_odd_frames(tmp_path: Path, suffix: str, dtype: str,
                                                      n_frames: int) -> None:
    frames = movie(n_frames, dtype=dtype)
    path = tmp_path / f"movie{suffix}"
    tiff = suffix.startswith(".tif")
    pixel_size = 0.85 if tiff else 0.8
    (write_tiff_movie if tiff else write_mrc_movie)(path, frames, pixel_size)
    sums = split_frames(path, tmp_path / "out")
    assert sums.even_path == tmp_path / "out" / "even" / "movie.mrc"
    assert sums.odd_path == tmp_path / "out" / "odd" / "movie.mrc"
    assert (sums.n_frames, sums.n_even, sums.n_odd) == (n_frames, (n_frames + 1) // 2,
                                                         n_frames // 2)
    even, even_px = read_image(sums.even_path)
    odd, odd_px = read_image(sums.odd_path)
    expected_even = frames[0::2].astype(np.float64).sum(axis=0)
    expected_odd = frames[1::2].astype(np.float64).sum(axis=0)
    np.testing.assert_array_equal(even, expected_even.astype(np.float32))
    np.testing.assert_array_equal(odd, expected_odd.astype(np.float32))
    assert even.dtype == np.float32 and even.shape == frames.shape[1:]
    assert even_px == pytest.approx(pixel_size, rel=1e-5) and odd_px == even_px


def test_equal_halves_leaves_out_the_last_of_an_odd_count(tmp_path: Path) -> None:
    frames = movie(5)
    even, odd, sums = frame_sums(write_mrc_movie(tmp_path / "m.mrcs", frames),
                                 equal_halves=True)
    assert (sums.n_frames, sums.n_even, sums.n_odd) == (5, 2, 2)
    np.testing.assert_array_equal(even, frames[[0, 2]].sum(axis=0).astype(np.float32))
    np.testing.assert_array_equal(odd, frames[[1, 3]].sum(axis=0).astype(np.float32))


def test_memory_stays_flat_as_the_movie_grows(tmp_path: Path) -> None:
    """Frames are read one at a time: the peak of Python/numpy allocations (tracemalloc; a
    memory map's pages are not allocations) is two float64 sums and a frame, for any length."""
    shape = (128, 128)
    sum_bytes = 2 * 8 * shape[0] * shape[1]  # the two float64 sums (+ half that as float32)
    peaks = {}
    for kind, write in (("mrc", write_mrc_movie), ("tiff", write_tiff_movie)):
        for n_frames in (4, 64):
            path = write(tmp_path / f"{kind}_{n_frames}.{'mrcs' if kind == 'mrc' else 'tif'}",
                         movie(n_frames, shape, dtype="uint16"))
            tracemalloc.start()
            try:
                frame_sums(path)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            peaks[kind, n_frames] = peak
    movie_bytes = 64 * 2 * shape[0] * shape[1]  # a 64-frame uint16 movie: 2 MB
    for kind in ("mrc", "tiff"):
        assert peaks[kind, 64] < peaks[kind, 4] + 64_000, peaks  # no growth with frames
        assert peaks[kind, 64] < 2 * sum_bytes + 200_000 < movie_bytes, peaks  # 0.40/0.54 MB


def test_bad_movies_are_one_line_errors_naming_the_file(tmp_path: Path, capsys) -> None:
    image = write_mrc_movie(tmp_path / "image.mrc", movie(1)[0])  # 2D
    one_frame = write_tiff_movie(tmp_path / "one.tif", movie(1))
    broken = tmp_path / "broken.mrcs"
    broken.write_bytes(b"not an MRC file" * 10)
    missing = tmp_path / "missing.mrcs"
    for path, problem in ((image, "a single 20x24 image, not a movie"),
                          (one_frame, "a single 20x24 image, not a movie"),
                          (broken, "too short for an MRC header"),
                          (missing, "file not found")):
        with pytest.raises(InputError, match="^" + str(path) + ": " + problem):
            split_frames(path, tmp_path / "out")
        assert main(["split-frames", str(path), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"cryoden: error: {path}: ") and err.count("\n") == 1
    assert not list(tmp_path.glob("out/*/*.mrc"))  # nothing written for bad input


def test_cli_splits_a_folder_and_notes_odd_frame_counts(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "movies"
    folder.mkdir()
    write_mrc_movie(folder / "a.mrcs", movie(4, seed=1))
    write_tiff_movie(folder / "b.tif", movie(3, seed=2))
    assert main(["split-frames", str(folder), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "wrote the even/odd frame sums of 2 movie(s)" in captured.out
    assert "b.tif: 3 frames, so the even sum holds 2 and the odd 1" in captured.err
    assert sorted(p.name for p in (tmp_path / "out" / "odd").iterdir()) == ["a.mrc", "b.mrc"]


# -- simulated movies -------------------------------------------------------------------------
def test_simulated_movies_split_into_the_simulated_halves(tmp_path: Path) -> None:
    result = simulate_movie_dataset(tmp_path / "sim", 2, 64, seed=4, frames=4, movies=True,
                                    even_odd=True)
    assert result.clean_scale == 0.5 and len(result.movie_paths) == 2
    reference = simulate_dataset(tmp_path / "plain", 2, 64, seed=4)  # the same truth
    for i in range(2):
        with mrcfile.open(result.movie_paths[i]) as mrc:
            assert mrc.data.shape == (4, 64, 64) and mrc.is_image_stack()
        sums = split_frames(result.movie_paths[i], tmp_path / "split")
        for half, written in (("even", result.even_paths[i]), ("odd", result.odd_paths[i])):
            np.testing.assert_array_equal(read_image(getattr(sums, f"{half}_path"))[0],
                                          read_image(written)[0])
        truth = read_image(reference.clean_paths[i])[0]
        np.testing.assert_allclose(read_image(result.clean_paths[i])[0], truth / 2, rtol=1e-6)
    record = json.loads((tmp_path / "sim" / "simulation.json").read_text())
    assert record["frames"] == 4 and record["clean_scale"] == 0.5


def test_the_frame_sum_has_the_statistics_of_a_noisy_micrograph(tmp_path: Path) -> None:
    params = SimulationParams(dose=5.0, read_noise=0.02)
    result = simulate_movie_dataset(tmp_path / "sim", 1, 256, seed=1, params=params, frames=10)
    frames = read_image(result.movie_paths[0])[0]
    truth = read_image(result.clean_paths[0])[0]
    total = frames.astype(np.float64).sum(axis=0)
    reference = simulate_dataset(tmp_path / "plain", 1, 256, seed=1, params=params)
    noisy = read_image(reference.noisy_paths[0])[0]
    assert np.abs(total - truth).mean() / np.abs(noisy - truth).mean() == pytest.approx(1, abs=0.03)
    assert (total - truth).var() == pytest.approx((noisy - truth).var(), rel=0.03)
    assert (total - truth).mean() == pytest.approx(0, abs=0.005)
    even, odd = total - frames[1::2].sum(axis=0), frames[1::2].sum(axis=0)
    assert abs(np.corrcoef((even - truth / 2).ravel(), (odd - truth / 2).ravel())[0, 1]) < 0.02


def test_simulate_cli_movies_and_default_unchanged(tmp_path: Path, capsys) -> None:
    assert main(["simulate", str(tmp_path / "plain"), "--n", "1", "--size", "32"]) == 0
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == [
        "clean", "noisy", "simulation.json"]
    assert main(["simulate", str(tmp_path / "m"), "--n", "2", "--size", "32", "--movies",
                 "--frames", "3"]) == 0
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "clean", "movies", "simulation.json"]
    assert main(["simulate", str(tmp_path / "eo"), "--n", "2", "--size", "32",
                 "--even-odd"]) == 0
    assert "8-frame exposures" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "eo").iterdir()) == [
        "clean", "even", "odd", "simulation.json"]
    for argv, message in ((["--even-odd", "--frames", "5"], "need an even number of frames"),
                          (["--movies", "--frames", "1"], "at least 2 frames"),
                          (["--frames", "4"], "--frames is for --movies and/or --even-odd"),
                          (["--movies", "--clean-dose", "5"], "does not apply to movies")):
        assert main(["simulate", str(tmp_path / "bad"), "--size", "32", *argv]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(ConfigError, match="ask for movies"):
        simulate_movie_dataset(tmp_path / "x", 1, 32, movies=False, even_odd=False)
