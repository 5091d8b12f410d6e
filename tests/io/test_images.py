"""Micrograph files: every MRC mode, stacks, TIFF, pixel size, atomic writes, pairing, mmap LRU."""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile

from napari_cryoden.errors import InputError
from napari_cryoden.io.images import (
    MicrographCache,
    list_images,
    read_image,
    read_info,
    write_mrc,
)


def _mrc(path: Path, data: np.ndarray, voxel_size: float = 1.5) -> Path:
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = voxel_size
    return path


def _set_mode(path: Path, mode: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[12:16] = struct.pack("<i", mode)  # MODE is the 4th int32 of the header
    path.write_bytes(bytes(raw))


def _mapped(path: Path) -> bool:
    return str(path) in Path("/proc/self/maps").read_text()


@pytest.mark.parametrize(
    ("dtype", "mode"),
    [(np.int8, 0), (np.int16, 1), (np.float32, 2), (np.uint16, 6), (np.float16, 12)],
)
def test_every_real_mrc_mode_reads_as_float32(tmp_path: Path, dtype: type, mode: int) -> None:
    rng = np.random.default_rng(mode)
    data = rng.integers(0, 100, (12, 20)).astype(dtype)
    path = _mrc(tmp_path / "a.mrc", data)
    assert int(mrcfile.open(path, header_only=True).header.mode) == mode

    image, pixel_size = read_image(path)
    assert image.dtype == np.float32 and image.shape == (12, 20)
    np.testing.assert_array_equal(image, data.astype(np.float32))
    assert pixel_size == pytest.approx(1.5)
    info = read_info(path)
    assert info.shape == (1, 12, 20) and info.dtype == np.dtype(dtype)
    with MicrographCache() as cache:
        patch = cache.read_patch(path, 0, 2, 3, 4, 5)
    assert patch.dtype == np.float32
    np.testing.assert_array_equal(patch, data[2:6, 3:8].astype(np.float32))


@pytest.mark.parametrize("mode", [3, 4, 101])
def test_complex_and_4bit_modes_are_refused_by_name(tmp_path: Path, mode: int) -> None:
    path = _mrc(tmp_path / "odd.mrc", np.zeros((8, 8), np.float32))
    _set_mode(path, mode)
    message = f"{path}: MRC mode {mode} (complex/4-bit) is not supported"
    for read in (read_info, read_image, lambda p: MicrographCache().read_patch(p, 0, 0, 0, 2, 2)):
        with pytest.raises(InputError) as err:
            read(path)
        assert str(err.value) == message


def test_big_endian_mrc_reads_the_same_values(tmp_path: Path) -> None:
    data = np.arange(48, dtype=">i2").reshape(6, 8)
    path = _mrc(tmp_path / "be.mrc", data)
    np.testing.assert_array_equal(read_image(path)[0], np.arange(48).reshape(6, 8))


def test_mrcs_stack_is_3d_and_written_as_an_image_stack(tmp_path: Path) -> None:
    stack = np.random.default_rng(0).random((3, 16, 24)).astype(np.float32)
    path = tmp_path / "movie.mrcs"
    write_mrc(path, stack, pixel_size=0.8)
    image, pixel_size = read_image(path)
    assert image.shape == (3, 16, 24) and pixel_size == pytest.approx(0.8)
    np.testing.assert_array_equal(image, stack)
    assert read_info(path).shape == (3, 16, 24)
    with mrcfile.open(path) as mrc:
        assert mrc.is_image_stack()
    with MicrographCache() as cache:
        np.testing.assert_array_equal(cache.read_patch(path, 2, 4, 5, 3, 3), stack[2, 4:7, 5:8])


def test_single_slice_is_2d_and_zero_pixel_size_reads_as_one(tmp_path: Path) -> None:
    path = _mrc(tmp_path / "a.mrc", np.ones((4, 6), np.float32), voxel_size=0.0)
    image, pixel_size = read_image(path)
    assert image.shape == (4, 6)
    assert pixel_size == 1.0 and read_info(path).pixel_size == 1.0


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_tiff_stack_values_and_pixel_size(tmp_path: Path, compression: str | None) -> None:
    stack = np.random.default_rng(1).integers(0, 4000, (2, 20, 30)).astype(np.uint16)
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, stack, compression=compression,
                     resolution=(1e8 / 1.25, 1e8 / 1.25), resolutionunit="CENTIMETER")
    image, pixel_size = read_image(path)
    assert image.dtype == np.float32 and image.shape == (2, 20, 30)
    np.testing.assert_array_equal(image, stack)
    assert pixel_size == pytest.approx(1.25)
    with MicrographCache() as cache:
        patch = cache.read_patch(path, 1, 5, 6, 4, 4)
    np.testing.assert_array_equal(patch, stack[1, 5:9, 6:10])


def test_tiff_without_resolution_has_pixel_size_one(tmp_path: Path) -> None:
    path = tmp_path / "a.tiff"
    tifffile.imwrite(path, np.zeros((8, 8), np.float32))
    assert read_image(path)[0].shape == (8, 8) and read_info(path).pixel_size == 1.0


def test_write_mrc_round_trips_and_sets_the_voxel_size(tmp_path: Path) -> None:
    data = np.random.default_rng(2).normal(size=(10, 14))
    path = tmp_path / "out.mrc"
    write_mrc(path, data, pixel_size=1.06)
    with mrcfile.open(path) as mrc:
        assert mrc.data.dtype == np.float32
        assert float(mrc.voxel_size.x) == pytest.approx(1.06)
    np.testing.assert_array_equal(read_image(path)[0], data.astype(np.float32))


def test_write_mrc_leaves_the_old_file_intact_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.mrc"
    write_mrc(path, np.zeros((8, 8)), pixel_size=1.0)
    before = path.read_bytes()

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(InputError, match="out.mrc: cannot write"):
        write_mrc(path, np.ones((8, 8)), pixel_size=1.0)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.mrc"]  # no temporary file left


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("missing.mrc", None, "file not found"),
        ("short.mrc", b"MRC", "header"),
        ("garbage.mrc", b"x" * 2048, "not an MRC file"),
        ("picture.png", b"x", "unsupported file type '.png'"),
        ("garbage.tif", b"x" * 64, "not a TIFF file"),
    ],
)
def test_bad_files_are_one_line_input_errors_naming_the_file(
    tmp_path: Path, name: str, content: bytes | None, problem: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    for read in (read_info, read_image):
        with pytest.raises(InputError) as err:
            read(path)
        message = str(err.value)
        assert message.startswith(f"{path}: ") and problem in message and "\n" not in message


def test_truncated_mrc_is_reported_before_reading(tmp_path: Path) -> None:
    path = _mrc(tmp_path / "cut.mrc", np.zeros((32, 32), np.float32))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(InputError, match=r"cut.mrc: truncated MRC file"):
        read_info(path)
    with pytest.raises(InputError, match=r"cut.mrc: truncated MRC file"):
        MicrographCache().read_patch(path, 0, 0, 0, 4, 4)


def test_list_images_sorts_and_filters(tmp_path: Path) -> None:
    for name in ("b.mrc", "a.TIF", "c.mrcs", "notes.txt", ".hidden.mrc"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["a.TIF", "b.mrc", "c.mrcs"]


def test_list_images_missing_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nowhere: folder not found"):
        list_images(tmp_path / "nowhere")
    (tmp_path / "readme.txt").write_text("no micrographs here")
    with pytest.raises(InputError, match="no micrographs found"):
        list_images(tmp_path)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc/self/maps")
def test_cache_unmaps_evicted_files_but_not_one_in_use(tmp_path: Path) -> None:
    paths = [_mrc(tmp_path / f"m{i}.mrc", np.full((16, 16), i, np.float32)) for i in range(4)]
    cache = MicrographCache(max_open=2)
    with cache.view(paths[0]) as first:
        for path in paths[1:]:
            cache.read_patch(path, 0, 0, 0, 4, 4)
        assert _mapped(paths[0]) and first[0, 3, 3] == 0  # pinned: still mapped and readable
    assert cache.open_paths == [paths[0], paths[3]]
    assert _mapped(paths[3]) and not _mapped(paths[1]) and not _mapped(paths[2])
    del first  # a view kept past its block keeps its file mapped: the caller's duty
    cache.close()
    assert not any(_mapped(p) for p in paths) and cache.open_paths == []


def test_cache_serves_many_threads_correctly(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    images = [rng.random((32, 32)).astype(np.float32) for _ in range(5)]
    paths = [_mrc(tmp_path / f"m{i}.mrc", image) for i, image in enumerate(images)]
    cache, failures = MicrographCache(max_open=2), []

    def worker(seed: int) -> None:
        local = np.random.default_rng(seed)
        for _ in range(200):
            i, y, x = int(local.integers(5)), *(int(v) for v in local.integers(0, 24, 2))
            if not np.array_equal(cache.read_patch(paths[i], 0, y, x, 8, 8),
                                  images[i][y:y + 8, x:x + 8]):
                failures.append((i, y, x))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(cache.open_paths) <= 2
    cache.close()
