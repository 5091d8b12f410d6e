"""napari hooks without napari: the MRC reader and the synthetic sample data."""

from __future__ import annotations

import time
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from napari_cryoden._reader import napari_get_reader
from napari_cryoden._sample_data import make_synthetic_micrograph
from napari_cryoden.errors import InputError


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample's disk cache in tmp_path, not the user's ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "napari-cryoden"


def _write(path: Path, data: np.ndarray, voxel_size: object, stack: bool = False) -> Path:
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
        if stack:
            mrc.set_image_stack()
        mrc.voxel_size = voxel_size
    return path


@pytest.mark.parametrize(
    "path",
    ["notes.txt", "image.png", "folder", "weights.safetensors", ["a.mrc", "b.txt"], []],
)
def test_reader_declines_what_it_cannot_read(path: object) -> None:
    assert napari_get_reader(path) is None


def test_reader_reads_a_micrograph_with_its_pixel_size(tmp_path: Path) -> None:
    data = np.random.default_rng(0).random((48, 64)).astype(np.float32)
    path = _write(tmp_path / "mic_01.MRC", data, 1.34)
    reader = napari_get_reader(str(path))
    assert callable(reader)
    [(image, kwargs, layer_type)] = reader(str(path))
    assert layer_type == "image" and image.dtype == np.float32
    np.testing.assert_array_equal(image, data)
    assert kwargs["name"] == "mic_01"
    assert kwargs["scale"] == pytest.approx((1.34, 1.34))
    meta = kwargs["metadata"]
    assert meta["pixel_size"] == pytest.approx(1.34) and meta["path"] == str(path)
    assert {k: meta["mrc_header"][k] for k in ("nx", "ny", "nz", "mode")} == {
        "nx": 64, "ny": 48, "nz": 1, "mode": 2
    }


def test_reader_reads_a_stack_with_unit_scale_on_the_stack_axis(tmp_path: Path) -> None:
    data = (np.arange(3 * 20 * 30) % 251).reshape(3, 20, 30).astype(np.int16)
    path = _write(tmp_path / "particles.mrcs", data, 2.1, stack=True)
    [(image, kwargs, _)] = napari_get_reader(path)(path)
    assert image.shape == (3, 20, 30) and image.dtype == np.float32
    np.testing.assert_array_equal(image, data.astype(np.float32))
    assert kwargs["scale"] == pytest.approx((1.0, 2.1, 2.1))
    assert kwargs["metadata"]["mrc_header"]["image_stack"] is True


def test_reader_reads_a_volume_and_a_list_of_files(tmp_path: Path) -> None:
    volume = _write(tmp_path / "tomo.rec", np.zeros((4, 8, 8), np.float32), (3.0, 2.0, 5.0))
    tilt = _write(tmp_path / "tilts.st", np.ones((5, 8, 8), np.float32), 2.0)  # no stack flag
    layers = napari_get_reader([volume, tilt])([volume, tilt])
    assert [kw["name"] for _, kw, _ in layers] == ["tomo", "tilts"]
    assert layers[0][1]["scale"] == pytest.approx((5.0, 2.0, 3.0))  # (z, y, x)
    assert layers[1][1]["scale"] == pytest.approx((1.0, 2.0, 2.0))  # .st is a stack by suffix


def test_reader_names_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.mrc"
    path.write_bytes(b"not an mrc file at all")
    with pytest.raises(InputError, match="broken.mrc"):
        napari_get_reader(path)(path)


def test_sample_data_is_a_seeded_noisy_clean_pair_made_quickly() -> None:
    start = time.perf_counter()
    layers = make_synthetic_micrograph()
    elapsed = time.perf_counter() - start
    assert elapsed < 3.0, f"sample data took {elapsed:.2f} s"
    assert [kw["name"] for _, kw, _ in layers] == ["clean (simulated)", "noisy (simulated)"]
    (clean, clean_kw, clean_type), (noisy, noisy_kw, noisy_type) = layers
    assert noisy_type == clean_type == "image"
    assert noisy.shape == clean.shape == (1024, 1024) and noisy.dtype == clean.dtype == np.float32
    assert noisy_kw["scale"] == clean_kw["scale"] == (1.0, 1.0)
    assert 0.0 <= clean.min() and clean.max() <= 1.0 and 0.6 < clean.mean() < 0.72
    # the demo's high-contrast specimen: visibly noisy, particles still visible
    assert 0.2 * np.std(clean) < np.std(noisy - clean) < np.std(clean)
    lo, hi = clean_kw["contrast_limits"]
    assert clean.min() <= lo < hi <= clean.max()
    np.testing.assert_array_equal(make_synthetic_micrograph()[0][0], clean)



def _hot_micrograph(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A sample-like simulated micrograph and a copy with 20 counting outliers at 500."""
    from napari_cryoden.simulation.micrographs import simulate_micrograph
    from napari_cryoden.simulation.params import HIGH_CONTRAST

    noisy, _ = simulate_micrograph(HIGH_CONTRAST, np.random.default_rng(seed), size)
    hot = noisy.copy()
    rng = np.random.default_rng(seed + 1)
    hot[rng.integers(0, size, 20), rng.integers(0, size, 20)] = 500.0
    return noisy, hot


def test_reader_contrast_covers_the_micrograph_not_its_hot_pixels(tmp_path: Path) -> None:
    noisy, hot = _hot_micrograph(2048)
    path = _write(tmp_path / "hot.mrc", hot, 1.06)
    [(image, kwargs, _)] = napari_get_reader(str(path))(str(path))  # type: ignore[misc]
    low, high = kwargs["contrast_limits"]
    assert image.max() == 500.0 and high < 2.0  # min..max would show a black image
    assert np.mean((noisy >= low) & (noisy <= high)) > 0.98
    assert kwargs["scale"] == pytest.approx((1.06, 1.06), abs=1e-3)


def _no_simulation(*_: object, **__: object) -> None:
    raise AssertionError("simulated again instead of reading the cache")


def test_the_sample_is_simulated_once_then_read_from_the_disk_cache(
        _own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_synthetic_micrograph()
    [cached] = list(_own_cache.glob("sample-*.npz"))
    monkeypatch.setattr("napari_cryoden.simulation.micrographs.simulate_exposure", _no_simulation)
    start = time.perf_counter()
    again = make_synthetic_micrograph()
    assert time.perf_counter() - start < 0.1  # napari calls it on the UI thread
    for (image, kwargs, _), (image2, kwargs2, _) in zip(first, again, strict=True):
        np.testing.assert_array_equal(image, image2)
        assert kwargs == kwargs2 and image2.dtype == np.float32
    assert list(_own_cache.glob("*")) == [cached]  # no temporary files left


def test_a_corrupt_cache_file_is_ignored_and_rewritten(_own_cache: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_synthetic_micrograph()
    [cached] = list(_own_cache.glob("sample-*.npz"))
    cached.write_bytes(cached.read_bytes()[:5000])  # a truncated file (disk full, killed)
    again = make_synthetic_micrograph()
    np.testing.assert_array_equal(again[1][0], first[1][0])
    monkeypatch.setattr("napari_cryoden.simulation.micrographs.simulate_exposure", _no_simulation)
    np.testing.assert_array_equal(make_synthetic_micrograph()[1][0], first[1][0])  # rewritten


def test_reader_and_sample_data_agree_on_a_sample_like_image(tmp_path: Path) -> None:
    _, (noisy, sample_kw, _) = make_synthetic_micrograph()
    path = _write(tmp_path / "sample.mrc", noisy, 1.0)
    [(_, kwargs, _)] = napari_get_reader(str(path))(str(path))  # type: ignore[misc]
    assert kwargs["contrast_limits"] == pytest.approx(sample_kw["contrast_limits"], abs=1e-6)
    assert kwargs["scale"] == pytest.approx(sample_kw["scale"])


def test_reader_contrast_of_a_stack_and_no_z_scale(tmp_path: Path) -> None:
    _, hot = _hot_micrograph(256)
    stack = np.stack([hot, hot + 1.0, hot + 2.0])
    path = _write(tmp_path / "frames.mrcs", stack, 0.83, stack=True)
    [(_, kwargs, _)] = napari_get_reader(str(path))(str(path))  # type: ignore[misc]
    assert kwargs["scale"] == pytest.approx((1.0, 0.83, 0.83), abs=1e-3)
    low, high = kwargs["contrast_limits"]
    assert 0.0 < low < 1.0 and 2.0 < high < 4.0


def test_reader_takes_the_x_pixel_size_where_the_header_gives_no_y_size(tmp_path: Path) -> None:
    path = _write(tmp_path / "mic.mrc", np.ones((32, 48), np.float32), (1.5, 0.0, 0.0))
    [(_, kwargs, _)] = napari_get_reader(str(path))(str(path))  # type: ignore[misc]
    assert kwargs["scale"] == pytest.approx((1.5, 1.5))
