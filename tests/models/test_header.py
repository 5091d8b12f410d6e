"""A weight file's header read without torch: what the GUI checks the moment a file is opened."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_cryoden.config.sections import Config
from napari_cryoden.errors import WeightFileError
from napari_cryoden.models.checkpoint import save_checkpoint
from napari_cryoden.models.header import read_weight_info
from napari_cryoden.models.nets import build_model


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    config = Config.from_dict({"train": {"mode": "n2v"}})
    (tmp_path / "run1").mkdir()
    return save_checkpoint(tmp_path / "run1" / "best.safetensors",
                           build_model(config.model, seed=0), config, epoch=12, val_loss=0.0123)


def test_the_header_gives_config_epoch_and_losses(weights: Path) -> None:
    info = read_weight_info(weights)
    assert info.path == weights and info.epoch == 12 and info.val_loss == pytest.approx(0.0123)
    assert info.config.train.mode == "n2v" and info.config.model.preset == "seed"
    assert info.n_tensors == 6 and "config" not in info.metadata


@pytest.mark.parametrize(("content", "reason"), [
    (b"pixel size 1.06\nnot weights\n", "looks like a text file"),
    (np.random.default_rng(0).bytes(4096), "no header length that fits in its 4,096 bytes"),
    (b"\x80\x04 pickled", "looks like a pickle"),
    (b"", "fits in its 0 bytes"),
    ((17).to_bytes(8, "little") + b'{"a": 1, "b": [}' + b"x", "header is not JSON"),
    ((2).to_bytes(8, "little") + b"[]", "header is not JSON"),
])
def test_what_is_not_a_weight_file_is_one_line_naming_it(tmp_path: Path, content: bytes,
                                                         reason: str) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(content)
    with pytest.raises(WeightFileError) as caught:
        read_weight_info(bad)
    text = str(caught.value)
    assert text.startswith(str(bad)) and reason in text and "\n" not in text


def test_a_truncated_copy_and_missing_metadata_are_refused(weights: Path,
                                                           tmp_path: Path) -> None:
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(WeightFileError, match="lies outside the file"):
        read_weight_info(cut)
    from safetensors.numpy import save_file

    bare = tmp_path / "bare.safetensors"
    save_file({"conv1.weight": np.zeros((1, 1, 3, 3), np.float32)}, str(bare))
    with pytest.raises(WeightFileError, match="no napari-cryoden metadata"):
        read_weight_info(bare)
    with pytest.raises(WeightFileError, match="no such weight file"):
        read_weight_info(tmp_path / "absent.safetensors")


def test_reading_a_header_imports_no_torch(weights: Path) -> None:
    code = ("import sys\nfrom napari_cryoden.models.header import read_weight_info\n"
            f"read_weight_info({str(weights)!r})\nprint('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == "False"
