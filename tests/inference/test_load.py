"""load_denoiser: a path or a shipped model's name, loaded once on a device resolved once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from napari_cryoden.errors import InputError, WeightFileError
from napari_cryoden.inference.denoiser import denoise
from napari_cryoden.inference.load import load_denoiser
from napari_cryoden.inference.region import Box
from napari_cryoden.models.pretrained import shipped_path


def _micrograph() -> np.ndarray:
    return np.random.default_rng(5).normal(1.0, 0.3, (64, 72)).astype(np.float32)


def test_a_shipped_name_loads_that_model_and_denoises_like_the_core() -> None:
    loaded = load_denoiser("general-fast", "cpu")
    assert loaded.path == shipped_path("general-fast") and loaded.device == torch.device("cpu")
    assert loaded.checkpoint.config.model.preset == "seed"
    image = _micrograph()
    expected = denoise(loaded.net, image, normalization=loaded.normalization)
    np.testing.assert_array_equal(loaded.denoise(image), expected)
    np.testing.assert_allclose(loaded.denoise_region(image, Box(5, 30, 40, 72)),
                               expected[5:30, 40:72], atol=1e-5)


def test_no_model_means_the_shipped_general_model() -> None:
    assert load_denoiser(None, torch.device("cpu")).path == shipped_path("general")


def test_a_path_is_loaded_and_bad_input_is_one_line(tmp_path: Path) -> None:
    assert load_denoiser(shipped_path("general-fast"), "cpu").path == shipped_path("general-fast")
    with pytest.raises(WeightFileError, match="missing.safetensors"):
        load_denoiser(tmp_path / "missing.safetensors", "cpu")
    with pytest.raises(InputError, match="device .nonsense-device."):
        load_denoiser("general-fast", "nonsense-device")
