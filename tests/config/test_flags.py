"""Config fields <-> command-line flags: one mapping, both directions, lossless."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from napari_cryoden.config.flags import add_flags, config_from_args, config_to_argv
from napari_cryoden.config.sections import FIELDS, Config, ConfigError
from napari_cryoden.config.spec import field_specs

EVERY_FIELD_CHANGED = Config().replace(
    model={"preset": "deep", "channels": 24, "depth": 7, "kernel_size": 5},
    data={"patch_size": 256, "crop": 96, "normalization": "percentile", "val_fraction": 0.25,
          "shuffle_buffer": 5, "reader_threads": 3},
    train={"epochs": 7, "batch_size": 0, "lr": 2.5e-4, "seed": 11, "device": "cpu", "amp": True,
           "precision": "fp16", "fused": False, "schedule": "plateau", "plateau_patience": 4,
           "mode": "n2v", "n2v_fraction": 0.02, "init": "runs/first/best.safetensors"},
)
N2C_CHANGED = EVERY_FIELD_CHANGED.replace(train={"mode": "n2c", "noise_colour": "0.5:1.5"})
"""The fields only noisy → clean training takes (train.noise_colour), changed too."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_flags(parser)
    return parser


def _value(config: Config, key: str) -> object:
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def test_the_non_default_config_changes_every_field() -> None:
    same = [s.key for s in FIELDS if _value(EVERY_FIELD_CHANGED, s.key) == _value(Config(), s.key)
            and _value(N2C_CHANGED, s.key) == _value(Config(), s.key)]
    assert same == []  # a new field must be changed above, so the round trip covers it


@pytest.mark.parametrize("config", [Config(), EVERY_FIELD_CHANGED, N2C_CHANGED],
                         ids=["default", "changed", "n2c-changed"])
def test_config_to_argv_parses_back_to_the_same_config(config: Config) -> None:
    assert config_from_args(_parser().parse_args(config_to_argv(config))) == config


def test_every_flag_given_overrides_any_base() -> None:
    argv = config_to_argv(EVERY_FIELD_CHANGED)
    base = Config().replace(model={"preset": "unet-small"}, train={"mode": "n2n"})
    assert config_from_args(_parser().parse_args(argv), base=base) == EVERY_FIELD_CHANGED


def test_booleans_are_written_as_flag_or_no_flag() -> None:
    argv = config_to_argv(EVERY_FIELD_CHANGED)
    assert "--amp" in argv and "--no-fused" in argv
    assert "--no-amp" in config_to_argv(Config()) and "--fused" in config_to_argv(Config())
    assert "--crop" not in config_to_argv(Config())  # None: the default, left out
    assert "--init" not in config_to_argv(Config())  # empty text: off, left out


def test_flags_left_out_keep_the_base_config() -> None:
    args = _parser().parse_args(["--epochs", "3"])
    assert config_from_args(args) == Config().replace(train={"epochs": 3})
    assert config_from_args(args, base=EVERY_FIELD_CHANGED) == EVERY_FIELD_CHANGED.replace(
        train={"epochs": 3})


def test_flag_values_are_validated_by_the_config() -> None:
    parser = _parser()
    with pytest.raises(ConfigError, match="train.epochs must be >= 1"):
        config_from_args(parser.parse_args(["--epochs", "0"]))
    with pytest.raises(SystemExit):  # argparse: not one of the choices
        parser.parse_args(["--schedule", "linear"])


def test_help_shows_the_field_help_and_its_default() -> None:
    text = _parser().format_help()
    assert "model options:" in text and "train options:" in text
    assert "0 = the preset's" in text and "(default: meanstd)" in text
    assert "--fused, --no-fused" in text


def test_an_unsupported_field_type_fails_when_described() -> None:
    @dataclass(frozen=True)
    class Odd:
        sizes: list[int] | None = None

    with pytest.raises(TypeError, match="odd.sizes: unsupported annotation"):
        field_specs("odd", Odd)
