"""``train.noise_colour``: n2c training patches whose noise is coloured by a random Gaussian."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from napari_cryoden.config.sections import Config, ConfigError, TrainConfig
from napari_cryoden.data.pairs import find_pairs
from napari_cryoden.training import TrainStep, train
from napari_cryoden.training.modes import ModeBatches

CPU = torch.device("cpu")
TINY = {"data": {"patch_size": 32, "shuffle_buffer": 4},
        "train": {"batch_size": 4, "epochs": 2, "device": "cpu"}}


def pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    clean = torch.rand(8, 1, 64, 64, generator=generator)
    return clean + 0.5 * torch.randn(clean.shape, generator=generator), clean


def high_frequency_power(noise: torch.Tensor) -> torch.Tensor:
    """Mean power per patch at spatial frequencies above 0.25 cycles/px."""
    spectrum = torch.fft.rfft2(noise).abs().square()
    fy = torch.fft.fftfreq(noise.shape[-2])[:, None].abs()
    fx = torch.fft.rfftfreq(noise.shape[-1])[None, :]
    return spectrum[..., (fy > 0.25) | (fx > 0.25)].mean(dim=-1).flatten()


def test_sigma_0_leaves_the_batches_as_they_were() -> None:
    noisy, clean = pair()
    for text in ("", "0", "0:0"):
        modes = ModeBatches(TrainConfig(noise_colour=text), CPU)
        x, y, mask = modes.training(noisy, clean, step=3)
        assert torch.equal(x, noisy) and torch.equal(y, clean) and mask is None


def test_sigma_1_removes_high_frequencies_and_keeps_the_variance() -> None:
    noisy, clean = pair()
    x, y, _ = ModeBatches(TrainConfig(noise_colour="1:1"), CPU).training(noisy, clean, step=0)
    assert torch.equal(y, clean)
    white, coloured = noisy - clean, x - clean
    assert torch.allclose(coloured.var(dim=(1, 2, 3)), white.var(dim=(1, 2, 3)), rtol=1e-4)
    ratio = high_frequency_power(coloured) / high_frequency_power(white)
    assert (ratio < 0.1).all(), ratio  # exp(-4π²σ²f²) at f > 0.25, renormalised


def test_the_draw_is_seeded_per_step() -> None:
    noisy, clean = pair()
    modes = ModeBatches(TrainConfig(noise_colour="0:2"), CPU)
    first = modes.training(noisy, clean, step=5)[0]
    assert torch.equal(first, modes.training(noisy, clean, step=5)[0])
    assert not torch.equal(first, modes.training(noisy, clean, step=6)[0])


def losses(config: Config, pairs, run_dir: Path) -> list[float]:
    return [e.loss for e in train(config, *pairs, run_dir) if isinstance(e, TrainStep)]


def test_same_seed_gives_the_same_losses_on_the_cpu(make_pairs, tmp_path: Path) -> None:
    all_pairs = find_pairs(*make_pairs(n=3, size=64))
    pairs = all_pairs[:2], all_pairs[2:]
    plain = Config.from_dict(TINY)
    coloured = plain.replace(train={"noise_colour": "0.5:1.5"})
    first = losses(coloured, pairs, tmp_path / "a")
    assert first == losses(coloured, pairs, tmp_path / "b")
    assert first != losses(plain, pairs, tmp_path / "c")
    assert losses(plain.replace(train={"noise_colour": "0:0"}), pairs, tmp_path / "d") == \
        losses(plain, pairs, tmp_path / "e")


@pytest.mark.parametrize("mode", ["n2n", "n2v"])
def test_refused_when_the_targets_are_noisy(mode: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config().replace(train={"mode": mode, "noise_colour": "0:1"})
    assert "\n" not in str(info.value) and "n2c" in str(info.value)


@pytest.mark.parametrize("text", ["1:0", "a:b", "0:9", "-1:1", "1:2:3"])
def test_a_bad_range_is_one_line(text: str) -> None:
    with pytest.raises(ConfigError, match="LO:HI"):
        Config().replace(train={"noise_colour": text})
