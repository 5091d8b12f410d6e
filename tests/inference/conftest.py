"""Shared fixtures of the inference tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_cryoden.config.sections import Config
from napari_cryoden.models.checkpoint import save_checkpoint
from napari_cryoden.models.nets import build_model


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded seed-net weight file (meanstd normalisation): any fixed weights will do."""
    config = Config()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_checkpoint(path, build_model(config.model, seed=0), config, epoch=1)
