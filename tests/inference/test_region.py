"""A region's result equals the same crop of a whole-image run (inference.region, headless)."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from napari_cryoden.config.sections import ModelConfig
from napari_cryoden.inference.denoiser import denoise
from napari_cryoden.inference.region import Box, denoise_region
from napari_cryoden.models.nets import build_model

TOL = 1e-5


@pytest.fixture(scope="module")
def seed_net() -> nn.Module:
    return build_model(seed=1)


def _micrograph(shape: tuple[int, int] = (96, 130), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]] / 64.0
    return (3.0 + np.sin(5 * yy) * np.cos(3 * xx) + rng.normal(0, 0.5, shape)).astype(np.float32)


@pytest.mark.parametrize("box", [
    Box(30, 61, 40, 101),  # inside, margin on every side
    Box(0, 12, 0, 9),  # the top-left corner: zero padding where the image ends
    Box(80, 96, 117, 130),  # the bottom-right corner
    Box(0, 96, 0, 130),  # the whole image
    Box(50, 51, 64, 65),  # one pixel
])
@pytest.mark.parametrize("normalization", ["none", "meanstd", "percentile"])
def test_a_region_equals_the_same_crop_of_the_whole_image(seed_net: nn.Module, box: Box,
                                                           normalization: str) -> None:
    image = _micrograph()
    whole = denoise(seed_net, image, normalization=normalization)
    region = denoise_region(seed_net, image, box, normalization=normalization)
    assert region.shape == box.shape and region.dtype == np.float32
    np.testing.assert_allclose(region, whole[box.y0:box.y1, box.x0:box.x1], atol=TOL)


def test_a_region_of_a_wider_net_and_an_integer_image(seed_net: nn.Module) -> None:
    net = build_model(ModelConfig(preset="wide5"), seed=2)  # 5 x 5 kernels: a larger margin
    image = (_micrograph((70, 90)) * 100).astype(np.uint16)
    box = Box(3, 40, 60, 90)
    whole = denoise(net, image, normalization="meanstd")
    region = denoise_region(net, image, box, normalization="meanstd")
    np.testing.assert_allclose(region, whole[3:40, 60:90], atol=TOL)


def test_the_normaliser_is_fitted_on_the_whole_image(seed_net: nn.Module) -> None:
    """A dark box of a bright image: a box-fitted normaliser would give other values."""
    image = _micrograph()
    image[:20, :20] -= 3.0
    box = Box(0, 20, 0, 20)
    whole = denoise(seed_net, image, normalization="meanstd")[:20, :20]
    alone = denoise(seed_net, image[:20, :20], normalization="meanstd")
    region = denoise_region(seed_net, image, box, normalization="meanstd")
    np.testing.assert_allclose(region, whole, atol=TOL)
    assert np.abs(alone - whole).max() > 100 * TOL


def test_progress_is_reported(seed_net: nn.Module) -> None:
    seen: list[tuple[int, int]] = []
    denoise_region(seed_net, _micrograph(), Box(10, 40, 10, 40), normalization="none",
                   progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1]
