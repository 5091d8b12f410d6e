"""The one config: defaults are the seed's, bad values give one-line errors."""

from __future__ import annotations

import pytest

from napari_cryoden.config.sections import Config, ConfigError, DataConfig, field_help


def test_defaults_are_the_seed() -> None:
    cfg = Config()
    assert (cfg.model.channels, cfg.model.depth, cfg.model.kernel_size) == (16, 3, 3)
    assert cfg.data.patch_size == 1024 and cfg.data.crop is None
    assert cfg.model.receptive_radius == 3


def test_round_trip_and_replace() -> None:
    cfg = Config().replace(train={"epochs": 2, "lr": 1}, data={"crop": 128})
    assert Config.from_dict(cfg.to_dict()) == cfg
    assert isinstance(cfg.train.lr, float) and cfg.train.epochs == 2 and cfg.data.crop == 128


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"train": {"epochs": 0}}, "train.epochs must be >= 1"),
        ({"data": {"crop": 2048}}, r"data.crop \(2048\) is larger than data.patch_size"),
        ({"data": {"normalization": "zscore"}}, "data.normalization: 'zscore' is not one of"),
        ({"model": {"kernel_size": 4}}, "kernel_size must be odd"),
        ({"train": {"batch_size": "8"}}, "train.batch_size must be int"),
        ({"train": {"amp": 1}}, "train.amp must be bool"),
        ({"train": {"epochs": True}}, "train.epochs must be int"),
        ({"train": {"momentum": 0.9}}, "unknown key.*momentum"),
        ({"optimizer": {}}, "unknown config section"),
        ({"data": {"val_fraction": 0.95}}, "val_fraction must be <= 0.9"),
    ],
)
def test_bad_values_are_refused(sections: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(sections)


def test_every_field_has_help() -> None:
    for section in (Config().model, Config().data, Config().train):
        for name in type(section).__dataclass_fields__:
            assert field_help(type(section), name)
    assert "patches" in field_help(DataConfig, "patch_size")
