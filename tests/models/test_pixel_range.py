"""The pixel-size range a model was trained on: written, read back, and absent in old files."""

from __future__ import annotations

import json
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from napari_cryoden.config.sections import Config
from napari_cryoden.errors import WeightFileError
from napari_cryoden.models.checkpoint import load_checkpoint, save_checkpoint
from napari_cryoden.models.header import read_weight_info
from napari_cryoden.models.nets import build_model
from napari_cryoden.models.pretrained import SHIPPED, shipped_pixel_range
from napari_cryoden.training.pixel_range import training_pixel_range


def test_the_range_round_trips_through_a_weight_file(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.safetensors", build_model(seed=0), Config(),
                           pixel_size_range=(0.8, 1.6))
    assert read_weight_info(path).pixel_size_range == (0.8, 1.6)
    assert load_checkpoint(path)[1].pixel_size_range == (0.8, 1.6)


def test_a_file_without_the_field_loads_as_range_unknown(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "old.safetensors", build_model(seed=0), Config(), epoch=3)
    assert "pixel_size_range" not in _metadata(path)  # as every file written before it existed
    assert read_weight_info(path).pixel_size_range is None
    assert load_checkpoint(path)[1].pixel_size_range is None


@pytest.mark.parametrize("bad", [[2.5, 0.6], [0, 1], "0.6-2.5", [1.0], [1, True]])
def test_a_corrupt_range_is_refused_naming_the_file(tmp_path: Path, bad: object) -> None:
    path = save_checkpoint(tmp_path / "m.safetensors", build_model(seed=0), Config())
    payload = path.read_bytes()
    length = int.from_bytes(payload[:8], "little")
    header = json.loads(payload[8:8 + length])
    meta = json.loads(header["__metadata__"]["cryoden"])
    meta["pixel_size_range"] = bad
    header["__metadata__"]["cryoden"] = json.dumps(meta)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + payload[8 + length:])
    with pytest.raises(WeightFileError, match=r"m\.safetensors: bad metadata: pixel_size_range"):
        read_weight_info(path)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_shipped_models_say_which_pixel_sizes_they_were_trained_on(name: str) -> None:
    expected = (0.6, 2.5) if name.endswith("-v1") else (1.0, 2.5)  # each recipe's span
    assert shipped_pixel_range(name) == expected


def test_training_data_gives_the_range_of_the_sizes_its_headers_record(tmp_path: Path) -> None:
    pairs = []
    for name, size in (("a", 0.83), ("b", 1.06), ("c", 0.0)):  # c records none
        path = tmp_path / f"{name}.mrc"
        with mrcfile.new(path) as mrc:
            mrc.set_data(np.zeros((8, 8), np.float32))
            mrc.voxel_size = size
        pairs.append((path, path))
    assert training_pixel_range(pairs) == (0.83, 1.06)
    assert training_pixel_range(pairs[2:]) is None


def _metadata(path: Path) -> dict[str, object]:
    payload = path.read_bytes()
    header = json.loads(payload[8:8 + int.from_bytes(payload[:8], "little")])
    return json.loads(header["__metadata__"]["cryoden"])
