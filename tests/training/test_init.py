"""``train.init``: a run that starts from a model's weights (a file or a shipped name)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_cryoden.config.sections import Config, ConfigError
from napari_cryoden.data.pairs import find_pairs
from napari_cryoden.models.checkpoint import load_checkpoint
from napari_cryoden.models.pretrained import shipped_path
from napari_cryoden.training import train
from napari_cryoden.training.init_weights import adopt_init_architecture

FROZEN = {"data": {"patch_size": 32, "shuffle_buffer": 4},
          "train": {"batch_size": 4, "epochs": 1, "device": "cpu", "lr": 0.0}}


@pytest.fixture
def pairs(make_pairs):
    all_pairs = find_pairs(*make_pairs(n=3, size=64))
    return all_pairs[:2], all_pairs[2:]


def frozen_config(init: str) -> Config:
    return adopt_init_architecture(Config.from_dict(
        {**FROZEN, "train": {**FROZEN["train"], "init": init}}), {})


def outputs(path: Path, image: torch.Tensor) -> torch.Tensor:
    model, _ = load_checkpoint(path)
    with torch.no_grad():
        return model.eval()(image)


def test_a_run_at_lr_0_from_a_shipped_name_keeps_its_output(pairs, tmp_path: Path) -> None:
    config = frozen_config("general-fast")
    assert config.model.preset == "seed"  # the init model's architecture, no model option
    list(train(config, *pairs, tmp_path / "run"))
    image = torch.from_numpy(np.random.default_rng(1).normal(size=(1, 1, 48, 48))).float()
    assert torch.equal(outputs(tmp_path / "run" / "best.safetensors", image),
                       outputs(shipped_path("general-fast"), image))
    digest = __import__("hashlib").sha256(shipped_path("general-fast").read_bytes()).hexdigest()
    _, ckpt = load_checkpoint(tmp_path / "run" / "last.safetensors")
    assert ckpt.metadata["init"]["model"] == "general-fast"
    assert ckpt.metadata["init"]["sha256"] == digest
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["init"] == ckpt.metadata["init"]
    assert ckpt.pixel_size_range == pytest.approx((1.5, 1.5))  # the training data's, as before


def test_init_takes_the_architecture_of_a_weight_file(pairs, tmp_path: Path) -> None:
    base = Config.from_dict(FROZEN).replace(model={"preset": "deep", "channels": 8})
    list(train(base, *pairs, tmp_path / "first"))
    config = frozen_config(str(tmp_path / "first" / "best.safetensors"))
    assert (config.model.preset, config.model.channels) == ("deep", 8)
    list(train(config, *pairs, tmp_path / "second"))
    image = torch.ones(1, 1, 40, 40)
    assert torch.equal(outputs(tmp_path / "second" / "best.safetensors", image),
                       outputs(tmp_path / "first" / "best.safetensors", image))


def test_model_options_that_contradict_the_init_model_are_one_line(pairs) -> None:
    config = Config.from_dict({**FROZEN, "train": {**FROZEN["train"], "init": "general"}})
    with pytest.raises(ConfigError) as info:
        adopt_init_architecture(config, {"preset": "seed"})
    message = str(info.value)
    assert "\n" not in message and "unet-small" in message and "seed" in message
    with pytest.raises(ConfigError, match="general"):
        adopt_init_architecture(config, {"channels": 32})
    assert adopt_init_architecture(config, {"preset": "unet-small"}).model.preset == "unet-small"


def test_the_loop_refuses_a_model_other_than_the_init_models(pairs, tmp_path: Path) -> None:
    config = Config.from_dict({**FROZEN, "train": {**FROZEN["train"], "init": "general"}})
    with pytest.raises(ConfigError, match="differs from the configured model"):
        list(train(config, *pairs, tmp_path / "run"))


def test_resume_wins_over_init(pairs, tmp_path: Path) -> None:
    plain = Config.from_dict({**FROZEN, "train": {**FROZEN["train"], "lr": 1e-2}})
    list(train(plain, *pairs, tmp_path / "run"))
    trained = tmp_path / "run" / "last.safetensors"
    image = torch.ones(1, 1, 40, 40)
    before = outputs(trained, image)
    resumed = frozen_config("general-fast").replace(train={"epochs": 2})
    list(train(resumed, *pairs, tmp_path / "run", resume=True))
    assert torch.equal(outputs(trained, image), before)  # lr 0 on the run's own weights
    assert "init" not in load_checkpoint(trained)[1].metadata  # the run began from random ones


def test_the_api_takes_the_init_architecture_for_a_default_model(make_pairs,
                                                                  tmp_path: Path) -> None:
    import napari_cryoden as cryoden

    noisy, clean = make_pairs(n=3, size=64)
    config = Config.from_dict({**FROZEN, "train": {**FROZEN["train"], "init": "general"}})
    result = cryoden.train(config, noisy=noisy, clean=clean, run_dir=tmp_path / "run")
    _, ckpt = load_checkpoint(result.best_path)
    assert ckpt.config.model.preset == "unet-small" and ckpt.metadata["init"]["model"] == "general"
    with pytest.raises(ConfigError, match="unet-small"):
        cryoden.train(config.replace(model={"preset": "deep"}), noisy=noisy, clean=clean,
                      run_dir=tmp_path / "other")
