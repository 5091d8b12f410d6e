"""The Train widget's multi-process run is the command ``cryoden train --nproc`` runs per rank."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("magicgui")

from napari_cryoden._qt.train.data_form import FolderPair, LayerPair  # noqa: E402
from napari_cryoden._qt.train.process import train_command  # noqa: E402
from napari_cryoden.cli.main import build_parser  # noqa: E402
from napari_cryoden.cli.train import rank_argv, train_config  # noqa: E402
from napari_cryoden.config.sections import Config  # noqa: E402

CONFIGS = {
    "n2c": Config().replace(model={"preset": "unet-small", "channels": 8},
                            data={"patch_size": 48, "crop": 32, "val_fraction": 0.2},
                            train={"lr": 2e-3, "fused": False, "schedule": "cosine"}),
    "n2n": Config().replace(train={"mode": "n2n", "amp": True, "epochs": 7}),
    "n2v": Config().replace(model={"preset": "deep"}, train={"mode": "n2v", "seed": 3}),
    "n2c-init": Config().replace(train={"init": "general-fast", "noise_colour": "0:1.5"}),
}


@pytest.mark.parametrize("mode", sorted(CONFIGS))
@pytest.mark.parametrize("resume", [False, True])
def test_folders_run_the_argv_the_cli_hands_each_rank(tmp_path: Path, mode: str,
                                                      resume: bool) -> None:
    config = CONFIGS[mode]
    source = FolderPair(tmp_path / "a", None if mode == "n2v" else tmp_path / "b")
    argv = train_command(config, source, ([], []), tmp_path / "run", resume, 3)
    args = build_parser().parse_args(argv[3:])
    assert train_config(args) == config
    assert argv[3:] == [*rank_argv(args, config), "--nproc", "3"]


def test_layers_run_the_argv_the_cli_hands_each_rank(tmp_path: Path) -> None:
    data = tmp_path / "run" / "data"
    pairs = ([(data / "noisy" / "layer.mrc", data / "clean" / "layer.mrc")],
             [(data / "val_noisy" / "layer.mrc", data / "val_clean" / "layer.mrc")])
    source = LayerPair("noisy", "clean", None, None, 1.0)
    argv = train_command(CONFIGS["n2c"], source, pairs, tmp_path / "run", False, 2)
    args = build_parser().parse_args(argv[3:])
    assert argv[3:] == [*rank_argv(args, train_config(args)), "--nproc", "2"]
