"""The Qt-free weights and patch figures: every kernel, one symmetric colour scale, 45° line."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import AxesImage

from napari_cryoden.config.sections import ModelConfig
from napari_cryoden.models.nets import build_model
from napari_cryoden.plotting.weights import (
    kernel_mosaic,
    kernel_panels,
    patch_figure,
    weights_figure,
)


def _images(fig) -> list[AxesImage]:
    return [im for ax in fig.axes for im in ax.get_images()]


def test_seed_net_has_16_256_16_kernels() -> None:
    panels = kernel_panels(build_model(seed=0))
    assert [p.name for p in panels] == ["conv1", "conv2", "conv3"]
    assert [p.n_kernels for p in panels] == [16, 256, 16]
    assert [p.bias.size for p in panels] == [16, 16, 1]


def test_mosaic_puts_every_kernel_in_place() -> None:
    weight = np.arange(16 * 16 * 9, dtype=np.float32).reshape(16, 16, 3, 3)
    mosaic = kernel_mosaic(weight)
    assert mosaic.shape == (16 * 4 - 1, 16 * 4 - 1)
    assert np.array_equal(mosaic[4 * 5:4 * 5 + 3, 4 * 7:4 * 7 + 3], weight[5, 7])  # out 5, in 7
    assert np.isnan(mosaic[3]).all()  # the gap between kernel rows
    assert np.isfinite(mosaic).sum() == weight.size
    row = kernel_mosaic(weight[:, :1])  # conv1: 16 kernels in one row
    assert row.shape == (3, 63) and np.array_equal(row[:, 8:11], weight[2, 0])


def test_weights_figure_shares_one_symmetric_colour_scale() -> None:
    model = build_model(seed=0)
    fig = weights_figure(model.state_dict(), title="seed")
    images = _images(fig)
    assert len(images) == 3
    total = sum(int(np.isfinite(im.get_array()).sum()) for im in images)
    assert total == (16 + 256 + 16) * 9
    vmax = max(float(p.detach().abs().max()) for n, p in model.named_parameters()
               if n.endswith("weight"))
    clims = {im.get_clim() for im in images}
    assert len(clims) == 1  # one scale for every kernel image ...
    low, high = clims.pop()
    assert low == -high == pytest.approx(-vmax)  # ... symmetric, and nothing clipped
    bars = [len(ax.patches) for ax in fig.axes if ax.patches]
    assert bars == [16, 16, 1]


def test_deep_wide_net_shows_first_and_last_and_says_so() -> None:
    model = build_model(ModelConfig(depth=5, channels=32), seed=0)
    fig = weights_figure(model)
    assert len(_images(fig)) == 2
    assert "conv2–conv4" in fig._suptitle.get_text()


def test_kernel_panels_refuses_a_state_without_conv_weights() -> None:
    with pytest.raises(ValueError, match="no conv"):
        kernel_panels({"fc.weight": np.zeros((2, 2))})


def test_patch_figure_has_45_degree_line_and_three_histograms() -> None:
    rng = np.random.default_rng(0)
    clean = rng.random((32, 32)).astype(np.float32)
    fig = patch_figure(clean + 0.3 * rng.standard_normal(clean.shape), clean + 0.01, clean,
                       title="patch 0")
    scatter, hist = fig.axes[:2]
    (line,) = scatter.get_lines()
    x, y = line.get_data()
    assert np.allclose(x, y)
    assert [t.get_text() for t in hist.get_legend().get_texts()] == ["noisy", "denoised", "clean"]
    no_noisy = patch_figure(None, clean, clean)
    assert len(no_noisy.axes[1].get_legend().get_texts()) == 2


def test_a_layer_of_more_than_16_kernels_wraps_into_rows() -> None:
    weight = np.arange(40 * 9, dtype=np.float32).reshape(40, 1, 3, 3)  # conv1 of 40 channels
    mosaic = kernel_mosaic(weight)
    assert mosaic.shape == (3 * 4 - 1, 16 * 4 - 1)  # rows of 16: 16, 16, 8
    assert np.array_equal(mosaic[4:7, 4 * 3:4 * 3 + 3], weight[19, 0])  # row 1, column 3
    assert np.isfinite(mosaic).sum() == weight.size  # the last row's 8 empty places are NaN


@pytest.mark.parametrize(("preset", "last"), [("deep", "conv6"), ("unet-small", "conv11")])
def test_presets_show_first_and_last_conv_and_name_them(preset: str, last: str) -> None:
    from napari_cryoden.config.sections import Config

    fig = weights_figure(build_model(Config.from_dict({"model": {"preset": preset}}).model,
                                     seed=0), title=preset)
    titles = [ax.get_title() for ax in fig.axes if ax.get_images()]
    assert [t.split()[0] for t in titles] == ["conv1", last]
    assert f"showing the first and last, conv1 and {last}" in fig._suptitle.get_text()
