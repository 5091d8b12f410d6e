"""The MRC writer hook: what napari saves, the reader hook reads back with its pixel size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_cryoden._reader import napari_get_reader
from napari_cryoden._writer import write_single_image
from napari_cryoden.errors import InputError


def read_back(path: Path) -> tuple[np.ndarray, dict]:
    [(data, kwargs, layer_type)] = napari_get_reader(str(path))(str(path))
    assert layer_type == "image"
    return data, kwargs


def test_a_micrograph_round_trips_with_its_pixel_size(tmp_path: Path) -> None:
    image = np.random.default_rng(0).normal(0.5, 0.2, (48, 64)).astype(np.float64)
    path = tmp_path / "mic_denoised.mrc"
    written = write_single_image(str(path), image, {"scale": (1.34, 1.34), "name": "mic"})
    assert written == [str(path)]
    data, kwargs = read_back(path)
    assert data.dtype == np.float32 and data.shape == (48, 64)
    np.testing.assert_array_equal(data, image.astype(np.float32))
    assert kwargs["scale"] == pytest.approx((1.34, 1.34))
    assert kwargs["metadata"]["pixel_size"] == pytest.approx(1.34)
    assert [p.name for p in tmp_path.iterdir()] == ["mic_denoised.mrc"]  # no temporary left


@pytest.mark.parametrize(("name", "scale_read"), [("stack.mrcs", (1.0, 2.5, 2.5)),
                                                  ("volume.mrc", (2.5, 2.5, 2.5))])
def test_a_stack_round_trips(tmp_path: Path, name: str, scale_read: tuple) -> None:
    stack = (np.arange(3 * 20 * 30) % 97).reshape(3, 20, 30).astype(np.int16)
    path = tmp_path / name
    write_single_image(path, stack, {"scale": (1.0, 2.5, 2.5)})  # pixel size: the last axis
    data, kwargs = read_back(path)
    np.testing.assert_array_equal(data, stack.astype(np.float32))
    assert kwargs["scale"] == pytest.approx(scale_read)


def test_a_multiscale_layer_writes_its_full_resolution(tmp_path: Path) -> None:
    full = np.ones((32, 32), np.float32)
    path = tmp_path / "pyramid.mrc"
    write_single_image(path, [full, full[::2, ::2]], {"scale": (0.8, 0.8), "multiscale": True})
    data, kwargs = read_back(path)
    assert data.shape == (32, 32) and kwargs["scale"] == pytest.approx((0.8, 0.8))


@pytest.mark.parametrize(("data", "meta", "problem"), [
    (np.zeros((2, 2, 8, 8)), {"scale": (1, 1, 1, 1)}, "4D"),
    (np.zeros((8, 8, 3)), {"scale": (1, 1), "rgb": True}, "RGB"),
])
def test_what_mrc_cannot_hold_is_refused_with_the_file_name(tmp_path: Path, data, meta,
                                                            problem) -> None:
    path = tmp_path / "bad.mrc"
    with pytest.raises(InputError, match=f"bad.mrc.*{problem}"):
        write_single_image(path, data, meta)
    assert not path.exists()


def test_an_existing_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "mic.mrc"
    write_single_image(path, np.zeros((16, 16)), {"scale": (1.0, 1.0)})
    write_single_image(path, np.full((8, 8), 2.0), {"scale": (3.0, 3.0)})
    data, kwargs = read_back(path)
    assert data.shape == (8, 8) and np.all(data == 2.0)
    assert kwargs["scale"] == pytest.approx((3.0, 3.0))


def test_npe2_picks_the_writer_from_the_manifest(tmp_path: Path) -> None:
    npe2 = pytest.importorskip("npe2")
    npe2.PluginManager.instance().discover()  # finds napari.yaml via the entry point
    path = tmp_path / "eye.mrc"
    layer = (np.eye(24, dtype=np.float32), {"scale": (1.7, 1.7), "name": "eye"}, "image")
    written = npe2.write(str(path), [layer], plugin_name="napari-cryoden")
    assert written == [str(path)]
    data, kwargs = read_back(path)
    np.testing.assert_array_equal(data, np.eye(24))
    assert kwargs["scale"] == pytest.approx((1.7, 1.7))

