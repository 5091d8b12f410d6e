"""Fixtures of the Denoise panel tests: a small weight file, and an empty model list per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("napari")

from napari_cryoden._qt._models import MODELS  # noqa: E402
from napari_cryoden.config.sections import Config  # noqa: E402
from napari_cryoden.models.checkpoint import save_checkpoint  # noqa: E402
from napari_cryoden.models.nets import build_model  # noqa: E402


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed's net (meanstd normalisation), untrained, seed 0, as a weight file."""
    config = Config()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_checkpoint(path, build_model(config.model, seed=0), config, epoch=1)


@pytest.fixture(autouse=True)
def empty_registry() -> Iterator[None]:
    """Each test starts and ends with no session models registered (shipped ones stay)."""
    MODELS.clear()
    yield
    MODELS.clear()
