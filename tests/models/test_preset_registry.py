"""A preset registered from outside the package is a first-class architecture.

The net below lives in this test module and is registered with ``presets.register``; nothing
else in the package is told about it. Config validation, the model builder, weight files, the
tiling halo and pooling grid, the memory estimate and ``cryoden train --preset`` all take it
from the registry entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from napari_cryoden.cli.main import main
from napari_cryoden.config import presets
from napari_cryoden.config.sections import Config, ConfigError, ModelConfig
from napari_cryoden.inference.denoiser import denoise
from napari_cryoden.inference.tiling import hidden_channels, receptive_radius, tile_multiple
from napari_cryoden.models.checkpoint import load_checkpoint, save_checkpoint
from napari_cryoden.models.nets import build_model, expected_shapes


class PoolNet(nn.Module):
    """Conv(1 → C, 3 × 3) → ReLU → 2 × 2 max-pool → Conv(C → 1, 3 × 3) → × 2 nearest upsampling.

    Its receptive radius is 4 when tiles start on even pixels: conv1 reaches 1, the pooled conv2
    one pooled pixel (2 or 3 full-resolution pixels, by parity).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.conv1 = nn.Conv2d(1, config.channels, 3, padding=1)
        self.conv2 = nn.Conv2d(config.channels, 1, 3, padding=1)

    @classmethod
    def shapes(cls, config: ModelConfig) -> dict[str, tuple[int, ...]]:
        c = config.channels
        return {"conv1.weight": (c, 1, 3, 3), "conv1.bias": (c,),
                "conv2.weight": (1, c, 3, 3), "conv2.bias": (1,)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = F.pad(x, (0, -width % 2, 0, -height % 2))
        y = self.conv2(F.max_pool2d(torch.relu(self.conv1(x)), 2))
        return F.interpolate(y, scale_factor=2, mode="nearest")[..., :height, :width]


def _pool_net_radius(channels: int, depth: int, kernel_size: int) -> int:
    return 4


POOL_NET = presets.Preset(
    "pool-net", "a 2-layer net pooling once", f"{__name__}:PoolNet", channels=4, depth=2,
    kernel_size=3, min_depth=2, max_depth=2, fixed=("depth", "kernel_size"),
    radius=_pool_net_radius, downsampling=2, activation_factor=2)


@pytest.fixture
def pool_net() -> Iterator[presets.Preset]:
    preset = presets.register(POOL_NET)
    yield preset
    del presets.PRESETS[preset.name]


def test_config_takes_its_defaults_and_rules(pool_net: presets.Preset) -> None:
    model = Config.from_dict({"model": {"preset": "pool-net", "channels": 6}}).model
    assert (model.channels, model.depth, model.kernel_size) == (6, 2, 3)
    assert (model.receptive_radius, model.downsampling, model.activation_channels) == (4, 2, 12)
    with pytest.raises(ConfigError, match="model.depth: preset 'pool-net' fixes it at 2, got 3"):
        Config.from_dict({"model": {"preset": "pool-net", "depth": 3}})


def test_unregistered_it_is_unknown() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'pool-net'"):
        ModelConfig(preset="pool-net")


def test_a_taken_name_is_refused(pool_net: presets.Preset) -> None:
    with pytest.raises(ValueError, match="a preset called 'seed' exists already"):
        presets.register(presets.Preset("seed", "again", f"{__name__}:PoolNet", 4, 2, 3))
    with pytest.raises(ValueError, match="builder must be 'module:Class'"):
        presets.register(presets.Preset("x", "bad path", "PoolNet", 4, 2, 3))
    assert presets.get("seed").builder.endswith(":DenoiseCNN")


def test_weight_file_round_trip(pool_net: presets.Preset, tmp_path: Path) -> None:
    config = Config.from_dict({"model": {"preset": "pool-net"}})
    model = build_model(config.model, seed=0).eval()
    assert type(model) is PoolNet
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == \
        expected_shapes(config.model)
    path = save_checkpoint(tmp_path / "w.safetensors", model, config, epoch=1)
    loaded, ckpt = load_checkpoint(path)
    assert type(loaded) is PoolNet and ckpt.config.model.preset == "pool-net"
    x = torch.rand(1, 1, 21, 30)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), model(x))


def test_tiles_use_its_halo_and_pooling_grid(pool_net: presets.Preset) -> None:
    model = build_model(Config.from_dict({"model": {"preset": "pool-net"}}).model, seed=3).eval()
    assert (receptive_radius(model), tile_multiple(model), hidden_channels(model)) == (4, 2, 8)
    image = np.random.default_rng(0).random((75, 98), np.float32)
    with torch.no_grad():
        whole = model(torch.from_numpy(image)[None, None])[0, 0].numpy()
    tiled = denoise(model, image, tile_size=24)
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-6)
    too_small = denoise(model, image, tile_size=24, halo=1)  # the halo matters for this net
    assert np.abs(too_small - whole).max() > 1e-3


def test_cli_offers_and_trains_it(pool_net: presets.Preset, make_pairs, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    noisy, clean = make_pairs(n=3, size=48)
    argv = ["train", "--noisy", str(noisy), "--clean", str(clean), "--out", str(tmp_path / "run"),
            "--preset", "pool-net", "--epochs", "1", "--patch-size", "32", "--device", "cpu",
            "--val-fraction", "0.34"]
    assert main(argv) == 0
    model, ckpt = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert type(model) is PoolNet and ckpt.config.model == ModelConfig(preset="pool-net")
    del presets.PRESETS["pool-net"]
    try:
        with pytest.raises(SystemExit):
            main(argv)
        assert "invalid choice: 'pool-net'" in capsys.readouterr().err
    finally:
        presets.PRESETS["pool-net"] = pool_net
