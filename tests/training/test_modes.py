"""Training without clean targets: Noise2Noise on even/odd halves and Noise2Void blind spots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_cryoden.cli.main import main
from napari_cryoden.config.sections import Config, ConfigError
from napari_cryoden.data.pairs import find_half_pairs, find_pairs, single_pairs
from napari_cryoden.evaluation.metrics import psnr
from napari_cryoden.inference.denoiser import denoise
from napari_cryoden.io.images import read_image, write_mrc
from napari_cryoden.models.checkpoint import load_checkpoint
from napari_cryoden.simulation.movies import simulate_movie_dataset
from napari_cryoden.simulation.params import HIGH_CONTRAST
from napari_cryoden.training import EpochEnd, TrainStep, train
from napari_cryoden.training.blindspot import blind_spots, masked_mse
from napari_cryoden.training.modes import ModeBatches
from napari_cryoden.training.steps import make_step


@pytest.fixture(scope="module")
def halves(tmp_path_factory) -> Path:
    """8 simulated 96² exposures as even/odd frame sums (4 frames) and their noise-free truth."""
    root = tmp_path_factory.mktemp("modes")
    simulate_movie_dataset(root, 8, 96, seed=0, params=HIGH_CONTRAST, frames=4, movies=False,
                           even_odd=True)
    return root


def config(mode: str, epochs: int, **train: object) -> Config:
    return Config.from_dict({
        "data": {"patch_size": 32, "shuffle_buffer": 8, "val_fraction": 0.0},
        "train": {"batch_size": 8, "epochs": epochs, "device": "cpu", "lr": 2e-3,
                  "mode": mode, **train}})


def psnr_gain(run: Path, root: Path) -> tuple[float, float]:
    """Mean PSNR (data range 1) of the even halves and of their denoised versions vs the truth."""
    model, ckpt = load_checkpoint(run / "best.safetensors")
    noisy_db, denoised_db = [], []
    for i in range(8):
        noisy = read_image(root / "even" / f"mic_{i:04d}.mrc")[0]
        clean = read_image(root / "clean" / f"mic_{i:04d}.mrc")[0]
        denoised = denoise(model, noisy, normalization=ckpt.normalization)
        noisy_db.append(psnr(float(np.mean((noisy - clean) ** 2))))
        denoised_db.append(psnr(float(np.mean((denoised - clean) ** 2))))
    return float(np.mean(noisy_db)), float(np.mean(denoised_db))


def epochs_of(events: list) -> list[EpochEnd]:
    return [e for e in events if isinstance(e, EpochEnd)]


# -- Noise2Noise ------------------------------------------------------------------------------
def test_n2n_on_even_odd_halves_beats_the_noisy_input(halves: Path, tmp_path: Path) -> None:
    pairs = find_half_pairs(halves / "even", halves / "odd")
    clean_val = find_pairs(halves / "even", halves / "clean")[-1:]
    events = list(train(config("n2n", 8), pairs[:-1], pairs[-1:], tmp_path / "run",
                        clean_val_pairs=clean_val))
    noisy_db, denoised_db = psnr_gain(tmp_path / "run", halves)
    assert denoised_db > noisy_db + 4.0, (noisy_db, denoised_db)  # measured: 24.98 → 32.2 dB

    epochs = epochs_of(events)
    assert all(e.val_loss is not None and e.clean_val_loss is not None for e in epochs)
    assert epochs[-1].clean_val_loss < epochs[0].clean_val_loss
    assert "Clean Val Loss" in epochs[-1].describe()
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    record = history["epochs"][-1]
    assert {"val_loss", "val_mse", "clean_val_loss", "clean_val_mse"} <= set(record)
    assert record["clean_val_mse"] < record["val_mse"]  # the partner's own noise is in val_mse
    _, ckpt = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert ckpt.config.train.mode == "n2n" and history["config"]["train"]["mode"] == "n2n"


def test_n2n_swap_is_per_patch_and_seeded() -> None:
    even, odd = torch.zeros(64, 1, 4, 4), torch.ones(64, 1, 4, 4)
    batches = ModeBatches(config("n2n", 1).train, torch.device("cpu"))
    x, y, mask = batches.training(even, odd, step=5)
    swapped = x[:, 0, 0, 0] == 1
    assert mask is None and 10 < int(swapped.sum()) < 54  # per patch, about half
    assert torch.equal(x + y, torch.ones_like(x))  # every patch keeps one half of each
    again = ModeBatches(config("n2n", 1).train, torch.device("cpu")).training(even, odd, step=5)
    assert torch.equal(again[0], x)  # same seed, same step: the same swaps
    assert not torch.equal(batches.training(even, odd, step=6)[0], x)
    other_seed = ModeBatches(config("n2n", 1, seed=1).train, torch.device("cpu"))
    assert not torch.equal(other_seed.training(even, odd, step=5)[0], x)
    assert torch.equal(batches.validation(even, odd, 0)[0], even)  # validation: even → odd


def test_n2n_same_seed_same_losses(halves: Path, tmp_path: Path) -> None:
    pairs = find_half_pairs(halves / "even", halves / "odd")[:3]

    def losses(run: str, seed: int) -> list[float]:
        events = train(config("n2n", 2, seed=seed), pairs, [], tmp_path / run)
        return [e.loss for e in events if isinstance(e, TrainStep)]

    first = losses("a", 0)
    assert first == losses("b", 0)
    assert first != losses("c", 1)


# -- Noise2Void -------------------------------------------------------------------------------
def test_n2v_trains_on_noisy_micrographs_alone_and_beats_the_input(halves: Path,
                                                                    tmp_path: Path) -> None:
    pairs = single_pairs(halves / "even")
    assert all(noisy == target for noisy, target in pairs)
    events = list(train(config("n2v", 10), pairs[:-1], pairs[-1:], tmp_path / "run"))
    epochs = epochs_of(events)
    assert epochs[-1].val_loss < epochs[0].val_loss  # the masked validation loss fell
    assert all(e.clean_val_loss is None for e in epochs)
    noisy_db, denoised_db = psnr_gain(tmp_path / "run", halves)
    assert denoised_db > noisy_db + 3.0, (noisy_db, denoised_db)  # measured: 24.98 → 31.4 dB


def test_blind_spots_mask_one_pixel_per_cell_with_a_neighbour(tmp_path: Path) -> None:
    x = torch.randperm(2 * 40 * 37).float().view(2, 1, 40, 37)  # unique values: traceable
    generator = torch.Generator().manual_seed(3)
    masked, mask = blind_spots(x, 0.01, generator)  # 10-px cells: 4 x 4 per patch
    assert mask.dtype == torch.bool and mask.shape == x.shape
    assert int(mask.sum()) == 2 * 4 * 4
    for b in range(2):
        for cy in range(4):
            for cx in range(4):
                assert int(mask[b, 0, cy * 10:cy * 10 + 10, cx * 10:cx * 10 + 10].sum()) == 1
    assert torch.equal(masked[~mask], x[~mask])  # only the masked pixels change
    assert bool((masked[mask] != x[mask]).all())  # ... and each one does
    for b, _, y, xx in mask.nonzero().tolist():
        value = masked[b, 0, y, xx]
        where = (x[b, 0] == value).nonzero().tolist()
        assert len(where) == 1
        ny, nx = where[0]
        assert (ny, nx) != (y, xx) and abs(ny - y) <= 2 and abs(nx - xx) <= 2
    again = blind_spots(x, 0.01, torch.Generator().manual_seed(3))
    assert torch.equal(again[0], masked) and torch.equal(again[1], mask)


def test_masked_loss_sees_only_the_masked_pixels() -> None:
    torch.manual_seed(0)
    model = torch.nn.Conv2d(1, 1, 3, padding=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    step = make_step(model, optimizer, "fp32")
    x = torch.randn(4, 1, 16, 16)
    masked, mask = blind_spots(x, 0.02, torch.Generator().manual_seed(0))
    loss = float(step(masked, x, mask=mask))
    with torch.no_grad():
        expected = float(masked_mse(model(masked), x, mask))
    assert loss == pytest.approx(expected, rel=1e-6)
    changed = torch.where(mask, x, x + 100.0)  # targets off the mask do not matter
    assert float(step(masked, changed, mask=mask)) == pytest.approx(loss, rel=1e-6)
    chunked = make_step(model, optimizer, "fp32", chunks=2)  # micro-batches: the same loss
    assert float(chunked(masked, x, mask=mask)) == pytest.approx(loss, rel=1e-5)
    model.zero_grad()
    masked_mse(model(masked), x, mask).backward()
    gradient_with_mask = model.weight.grad.clone()
    model.zero_grad()
    (masked_mse(model(masked), changed, mask)).backward()
    assert torch.allclose(model.weight.grad, gradient_with_mask)


def test_n2v_validation_masks_are_the_same_every_epoch() -> None:
    batches = ModeBatches(config("n2v", 1).train, torch.device("cpu"))
    x = torch.randn(2, 1, 32, 32)
    first, second = batches.validation(x, x, 0), batches.validation(x, x, 0)
    assert torch.equal(first[2], second[2]) and torch.equal(first[0], second[0])
    assert torch.equal(first[1], x)  # the target is the unmasked input
    assert not torch.equal(batches.training(x, x, 0)[2], first[2])


# -- config and CLI ---------------------------------------------------------------------------
def test_mode_is_a_validated_config_field() -> None:
    assert Config().train.mode == "n2c"
    with pytest.raises(ConfigError, match="train.mode: 'n2x' is not one of n2c, n2n, n2v"):
        Config.from_dict({"train": {"mode": "n2x"}})
    with pytest.raises(ConfigError, match="n2v_fraction must be <= 0.05"):
        Config.from_dict({"train": {"n2v_fraction": 0.5}})


def test_cli_trains_n2n_from_even_odd_and_n2v_from_noisy(halves: Path, tmp_path: Path,
                                                        capsys) -> None:
    common = ["--patch-size", "32", "--batch-size", "8", "--epochs", "1", "--device", "cpu",
              "--val-fraction", "0.25"]
    assert main(["train", "--even", str(halves / "even"), "--odd", str(halves / "odd"),
                 "--val-noisy", str(halves / "even"), "--val-clean", str(halves / "clean"),
                 "--out", str(tmp_path / "n2n"), *common]) == 0
    out = capsys.readouterr().out
    assert "6 train / 2 val micrographs (Noise2Noise on even/odd halves, 8 clean val" in out
    assert "Clean Val Loss" in out
    _, ckpt = load_checkpoint(tmp_path / "n2n" / "best.safetensors")
    assert ckpt.config.train.mode == "n2n"  # implied by --even/--odd

    assert main(["train", "--noisy", str(halves / "even"), "--mode", "n2v",
                 "--out", str(tmp_path / "n2v"), *common]) == 0
    assert "Noise2Void" in capsys.readouterr().out
    history = json.loads((tmp_path / "n2v" / "history.json").read_text())
    assert history["config"]["train"]["mode"] == "n2v"
    assert history["epochs"][0]["clean_val_loss"] is None


@pytest.mark.parametrize(("flags", "message"), [
    (["--noisy", "E"], "give either --noisy and --clean folders, or --store; --mode n2v trains "
                       "on noisy micrographs alone"),
    (["--even", "E"], "give either --even and --odd folders (or --halves), or --store for "
                      "--mode n2n"),
    (["--noisy", "E", "--clean", "C", "--mode", "n2v"],
     "give either a --noisy folder (without --clean), or --store for --mode n2v"),
    (["--even", "E", "--odd", "O", "--mode", "n2c"],
     "give either --noisy and --clean folders, or --store; --even/--odd are for --mode n2n"),
    (["--even", "E", "--odd", "C"], "even and odd files do not pair by name"),
])
def test_cli_mode_errors_are_one_line(halves: Path, tmp_path: Path, capsys, flags: list[str],
                                      message: str) -> None:
    where = {"E": halves / "even", "O": halves / "odd", "C": halves / "clean_renamed"}
    where["C"].mkdir(exist_ok=True)
    write_mrc(where["C"] / "other.mrc", np.zeros((32, 32), np.float32), 1.0)
    argv = [str(where.get(flag, flag)) for flag in flags]
    assert main(["train", *argv, "--out", str(tmp_path / "run"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_torchrun_passes_even_odd_and_mode_through_to_each_rank(tmp_path: Path) -> None:
    """torchrun's parser would take ``--even`` for its ``--event-log-handler``: ranks get the
    hidden ``--even-sums`` spelling, which both parsers read right."""
    from torch.distributed.run import get_args_parser

    from napari_cryoden.cli.main import build_parser
    from napari_cryoden.cli.train import rank_argv, train_config
    from napari_cryoden.training.distributed import launch_command

    args = build_parser().parse_args(["train", "--even", "E", "--odd", "O", "--out", "R",
                                      "--mode", "n2n", "--n2v-fraction", "0.02", "--nproc", "2"])
    command = launch_command(rank_argv(args, train_config(args)), 2)
    launcher = get_args_parser().parse_args(command[3:])  # after python -m torch.distributed.run
    assert launcher.training_script == "napari_cryoden.cli"
    rank_args = build_parser().parse_args(launcher.training_script_args)
    assert (rank_args.even, rank_args.odd, rank_args.mode) == (Path("E"), Path("O"), "n2n")
    assert rank_args.n2v_fraction == 0.02


def test_a_store_packed_from_even_odd_trains_n2n_and_n2v(halves: Path, tmp_path: Path,
                                                         capsys) -> None:
    store = tmp_path / "store"
    assert main(["pack", "--noisy", str(halves / "even"), "--clean", str(halves / "odd"),
                 "--out", str(store), "--patch-size", "32"]) == 0
    for mode in ("n2n", "n2v"):
        assert main(["train", "--store", str(store), "--mode", mode, "--out",
                     str(tmp_path / mode), "--epochs", "1", "--batch-size", "8",
                     "--device", "cpu", "--val-fraction", "0.25"]) == 0
        _, ckpt = load_checkpoint(tmp_path / mode / "best.safetensors")
        assert ckpt.config.train.mode == mode
    clean_only = tmp_path / "clean_only"
    assert main(["pack", "--clean", str(halves / "clean"), "--dose", "50", "--out",
                 str(clean_only), "--patch-size", "32"]) == 0
    capsys.readouterr()
    assert main(["train", "--store", str(clean_only), "--mode", "n2n", "--out",
                 str(tmp_path / "bad"), "--device", "cpu"]) == 2
    assert "a clean-only store has no second noisy half" in capsys.readouterr().err
