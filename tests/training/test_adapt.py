"""Adapting a model to one's own micrographs: time box, never worse, seeded, and it helps."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy.ndimage import gaussian_filter

from napari_cryoden.api import adapt
from napari_cryoden.cli.main import main
from napari_cryoden.errors import InputError
from napari_cryoden.inference.denoiser import denoise
from napari_cryoden.io.images import write_mrc
from napari_cryoden.models.checkpoint import load_checkpoint
from napari_cryoden.models.pretrained import shipped_path
from napari_cryoden.training.adapt import (
    AdaptOptions,
    AdaptResult,
    adapt_steps,
    default_batch_size,
)
from napari_cryoden.training.adapt_data import (
    AdaptData,
    held_out_boxes,
    nyquist_power_ratio,
    split_patches,
)
from napari_cryoden.training.blindspot import blind_spots

START = "general-fast-v1"  # a fixed start that learned other data (white noise, cartoon)


def _micrograph(seed: int, size: int = 128, noise: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Smooth blobs (truth) and the truth plus strong white noise."""
    rng = np.random.default_rng(seed)
    truth = gaussian_filter(rng.random((size, size)), 3.0)
    truth = (0.3 + 0.5 * (truth - truth.min()) / np.ptp(truth)).astype(np.float32)
    return (truth + rng.normal(0, noise, truth.shape)).astype(np.float32), truth


def _run(micrograph: np.ndarray, **options: object) -> AdaptResult:
    model, checkpoint = load_checkpoint(shipped_path(START))
    opts = AdaptOptions(device="cpu", patch_size=32, **options)  # type: ignore[arg-type]
    *_, result = adapt_steps(model, [(micrograph, None)], checkpoint.normalization, opts)
    assert isinstance(result, AdaptResult)
    return result


def test_the_default_fit_changes_the_biases_and_leaves_every_weight_as_it_was() -> None:
    noisy, _ = _micrograph(3, size=128)
    start, _ = load_checkpoint(shipped_path(START))

    def changed(result: AdaptResult) -> set[str]:
        return {name for name, value in result.model.state_dict().items()
                if not torch.equal(value, start.state_dict()[name])}

    assert AdaptOptions().tune == "biases"
    result = _run(noisy, seconds=60, max_steps=20, evidence=0.0)
    assert not result.kept_start and changed(result)  # a state with other biases was kept
    assert all(name.endswith("bias") for name in changed(result))
    assert all(p.requires_grad for p in result.model.parameters())
    every = _run(noisy, seconds=60, max_steps=20, evidence=0.0, tune="all")
    assert any(name.endswith("weight") for name in changed(every))
    with pytest.raises(ValueError, match="tune must be"):
        _run(noisy, max_steps=1, tune="weights")


def test_a_two_second_box_ends_in_about_two_seconds() -> None:
    noisy, _ = _micrograph(0, size=256)
    t0 = time.perf_counter()
    result = _run(noisy, seconds=2.0)
    elapsed = time.perf_counter() - t0
    assert result.steps > 0
    assert result.seconds <= 2.0 + 1.0 and elapsed < 2.0 + 2.5


def test_a_step_takes_8_patches_on_a_cpu_32_on_a_gpu_or_the_batch_given(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_batch_size(torch.device("cpu")) == 8
    assert default_batch_size(torch.device("cuda", 0)) == 32
    drawn: list[int] = []
    draw = AdaptData.batch

    def counting(self: AdaptData, generator: torch.Generator, size: int) -> tuple:
        drawn.append(size)
        return draw(self, generator, size)

    monkeypatch.setattr(AdaptData, "batch", counting)
    noisy, _ = _micrograph(2)
    _run(noisy, seconds=60, max_steps=2)
    _run(noisy, seconds=60, max_steps=2, batch_size=5)
    assert drawn == [8, 8, 5, 5]


def test_same_seed_gives_the_same_losses() -> None:
    noisy, _ = _micrograph(1)
    first = _run(noisy, seconds=60, max_steps=12, validate_every=4, seed=3)
    second = _run(noisy, seconds=60, max_steps=12, validate_every=4, seed=3)
    losses = [(p.train_loss, p.held_out_loss) for p in first.history]
    assert len(losses) == 3
    assert losses == [(p.train_loss, p.held_out_loss) for p in second.history]


def test_adapted_model_beats_the_start_on_a_held_out_micrograph() -> None:
    noisy, _ = _micrograph(2, size=256, noise=0.6)  # noisier than the start learned from
    result = _run(noisy, seconds=60, max_steps=100, lr=2e-3, validate_every=10)
    assert not result.kept_start and result.loss_after < result.loss_before
    start, checkpoint = load_checkpoint(shipped_path(START))
    other, truth = _micrograph(7, noise=0.6)

    def mse(net: torch.nn.Module) -> float:
        out = denoise(net, other, normalization=checkpoint.normalization)
        return float(np.mean((out - truth) ** 2))

    assert mse(result.model) < 0.8 * mse(start)


def test_a_gain_no_larger_than_chance_keeps_the_start() -> None:
    noisy, _ = _micrograph(2, size=256, noise=0.6)  # the fine-tune above helps here
    result = _run(noisy, seconds=60, max_steps=30, lr=2e-3, validate_every=10, evidence=1e6)
    assert result.kept_start and result.loss_after == result.loss_before
    assert min(p.held_out_loss for p in result.history) < result.loss_before  # it did improve
    start, _ = load_checkpoint(shipped_path(START))
    kept, theirs = result.model.state_dict(), start.state_dict()
    assert all(torch.equal(kept[k].cpu(), theirs[k]) for k in theirs)


def test_more_blind_spot_passes_score_more_pixels_the_same_way_each_time() -> None:
    noisy, _ = _micrograph(4)
    one = _run(noisy, seconds=60, max_steps=4, validate_every=2, val_passes=1)
    three = _run(noisy, seconds=60, max_steps=4, validate_every=2, val_passes=3)
    again = _run(noisy, seconds=60, max_steps=4, validate_every=2, val_passes=3)
    assert three.loss_before != one.loss_before
    assert [p.held_out_loss for p in three.history] == [p.held_out_loss for p in again.history]


def test_a_diverging_fine_tune_writes_the_starting_weights(tmp_path: Path) -> None:
    noisy, _ = _micrograph(3)
    write_mrc(tmp_path / "mic.mrc", noisy, 1.0)
    out = tmp_path / "adapted.safetensors"
    report = adapt(START, [tmp_path / "mic.mrc"], out, device="cpu", seconds=30,
                   max_steps=20, lr=1e4, patch_size=32, validate_every=5)
    assert report["kept_start"]
    start = load_file(shipped_path(START))
    written = load_file(out)
    assert set(written) == set(start)
    assert all(torch.equal(written[k], start[k]) for k in start)


def test_median_blind_spot_shows_the_median_of_its_neighbours() -> None:
    x = torch.arange(100, dtype=torch.float32).view(1, 1, 10, 10) ** 1.5
    masked, mask = blind_spots(x, 0.04, torch.Generator().manual_seed(0), radius=1,
                               replacement="median")
    for y, xx in mask[0, 0].nonzero().tolist():
        if 0 < y < 9 and 0 < xx < 9:
            near = x[0, 0, y - 1:y + 2, xx - 1:xx + 2].flatten()
            near = torch.cat([near[:4], near[5:]])
            assert masked[0, 0, y, xx] == near.median()


@pytest.mark.parametrize(("args", "names"), [
    (["general-fast", "{tmp}/missing.mrc", "-o", "{tmp}/o.safetensors"], "missing.mrc"),
    (["general-fast", "{tmp}/mic.mrc", "-o", "{tmp}/o.pt"], "o.pt"),
    (["general-fast", "-o", "{tmp}/o.safetensors", "--even", "{tmp}/mic.mrc"], "odd"),
    (["general-fast", "{tmp}/small.mrc", "-o", "{tmp}/o.safetensors"], "small.mrc"),
    (["general-fast", "{tmp}/mic.mrc", "-o", "{tmp}/o.safetensors", "--batch-size", "0"],
     "--batch-size"),
])
def test_cli_errors_are_one_line_naming_the_problem(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], names: str) -> None:
    write_mrc(tmp_path / "mic.mrc", _micrograph(4)[0], 1.0)
    write_mrc(tmp_path / "small.mrc", _micrograph(4, size=40)[0], 1.0)
    assert main(["adapt"] + [a.format(tmp=tmp_path) for a in args] + ["--seconds", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cryoden: error:") and "\n" not in err and names in err


def test_cli_prints_before_and_after(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    noisy, truth = _micrograph(5)
    write_mrc(tmp_path / "mic.mrc", noisy, 1.0)
    write_mrc(tmp_path / "truth.mrc", truth, 1.0)
    status = main(["adapt", "general-fast", str(tmp_path / "mic.mrc"), "-o",
                   str(tmp_path / "a.safetensors"), "--clean", str(tmp_path / "truth.mrc"),
                   "--seconds", "1.5", "--patch-size", "32", "--device", "cpu",
                   "--batch-size", "6", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert status == 0
    assert "held-out loss:" in out and "PSNR vs" in out and "truth.mrc" in out
    assert " steps of 6 in " in out
    assert json.loads((tmp_path / "r.json").read_text())["batch_size"] == 6
    assert (tmp_path / "a.safetensors").exists() and (tmp_path / "r.json").exists()


def test_held_out_boxes_are_where_the_held_out_patches_came_from() -> None:
    images = [_micrograph(8, size=128)[0], _micrograph(9, size=96)[0]]
    data = split_patches([(im, None) for im in images], 32, 0.25, 5, "none")
    boxes = held_out_boxes([im.shape for im in images], 32, 0.25, 5)
    cut = [im[y:y + 32, x:x + 32] for im, where in zip(images, boxes, strict=True)
           for y, x in where]
    assert len(cut) == data.n_val
    assert np.array_equal(np.stack(cut), data.val_a[:, 0].numpy())


def test_holding_out_micrographs_judges_on_micrographs_never_learned_from() -> None:
    images = [_micrograph(k, size=96)[0] for k in (8, 9, 10, 11)]
    data = split_patches([(im, None) for im in images], 32, 0.25, 5, "none", by_micrograph=True)
    boxes = held_out_boxes([im.shape for im in images], 32, 0.25, 5, by_micrograph=True)
    whole = [k for k, where in enumerate(boxes) if where]
    assert len(whole) == 1 and len(boxes[whole[0]]) == 9  # one micrograph, all of its patches
    cut = np.stack([images[whole[0]][y:y + 32, x:x + 32] for y, x in boxes[whole[0]]])
    assert np.array_equal(cut, data.val_a[:, 0].numpy())
    assert data.n_train == 27  # the other three micrographs, nothing of the held-out one
    single = split_patches([(images[0], None)], 32, 0.25, 5, "none", by_micrograph=True)
    assert single.n_val == 2 and single.n_train == 7  # one micrograph: patches held out


def test_cli_reports_split_frame_snr_with_halves(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(11)
    _, truth = _micrograph(11, size=192)
    for half in ("EVN", "ODD"):
        noisy = truth + rng.normal(0, 0.1, truth.shape).astype(np.float32)
        write_mrc(tmp_path / f"mic_{half}.mrc", noisy, 1.0)
    status = main(["adapt", "general-fast", "-o", str(tmp_path / "a.safetensors"),
                   "--even", str(tmp_path / "mic_EVN.mrc"), "--odd", str(tmp_path / "mic_ODD.mrc"),
                   "--seconds", "1.5", "--patch-size", "32", "--device", "cpu",
                   "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert status == 0
    snr = json.loads((tmp_path / "r.json").read_text())["split_frame_snr"]
    assert snr["n_patches"] == 7  # 36 patches of 32 px, 20 % held out
    assert all(np.isfinite(snr[k]) for k in ("raw_half_db", "before_db", "after_db"))
    assert snr["before_db"] > snr["raw_half_db"]  # the start model denoises: SNR goes up
    assert f"split-frame SNR on 7 held-out patches: raw half {snr['raw_half_db']:.2f} dB" in out
    assert f"{snr['before_db']:.2f} dB before, {snr['after_db']:.2f} dB after" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert ("caution: Noise2Noise learned from one half at a time" in out) == (
        not report["kept_start"])
    if report["sums_check"] is not None:  # a state beat the start on the halves
        assert "held-out patches of even + odd (SURE): squared error" in out


def test_cli_judges_on_a_held_out_micrograph(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(12)
    for k in range(3):
        _, truth = _micrograph(20 + k, size=96)
        for half in ("EVN", "ODD"):
            noisy = truth + rng.normal(0, 0.1, truth.shape).astype(np.float32)
            write_mrc(tmp_path / f"mic{k}_{half}.mrc", noisy, 1.0)
    evens = [str(tmp_path / f"mic{k}_EVN.mrc") for k in range(3)]
    odds = [str(tmp_path / f"mic{k}_ODD.mrc") for k in range(3)]
    status = main(["adapt", "general-fast", "-o", str(tmp_path / "a.safetensors"),
                   "--even", *evens, "--odd", *odds, "--hold-out-micrographs",
                   "--tune", "biases", "--seconds", "1", "--patch-size", "32", "--device", "cpu",
                   "--json", str(tmp_path / "r.json")])
    capsys.readouterr()
    assert status == 0
    report = json.loads((tmp_path / "r.json").read_text())
    # one of three micrographs is held out whole: its 9 patches judge, the other 18 teach
    assert report["n_held_out_patches"] == 9 and report["n_train_patches"] == 18
    assert report["split_frame_snr"]["n_patches"] == 9
    assert report["tune"] == "biases"


def _coloured(seed: int, size: int = 256) -> np.ndarray:
    """Blobs under noise that neighbouring pixels share (white noise blurred by 0.8 px)."""
    rng = np.random.default_rng(seed)
    _, truth = _micrograph(seed, size)
    noise = gaussian_filter(rng.normal(0, 1.0, truth.shape), 0.8)
    return (truth + 0.3 * noise / noise.std()).astype(np.float32)


def test_nyquist_power_ratio_tells_white_from_shared_noise() -> None:
    white, _ = _micrograph(10, size=256)
    assert nyquist_power_ratio(white) > 0.9
    assert nyquist_power_ratio(_coloured(10)) < 0.5


def test_a_blind_spot_refuses_noise_that_neighbouring_pixels_share(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    coloured = _coloured(11)
    with pytest.raises(InputError, match=r"^shared\.mrc: its noise is shared .* even/odd"):
        _run_named(coloured, "shared.mrc")
    write_mrc(tmp_path / "shared.mrc", coloured, 1.0)
    out = tmp_path / "a.safetensors"
    assert main(["adapt", "general-fast", str(tmp_path / "shared.mrc"), "-o", str(out),
                 "--seconds", "1", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "shared.mrc: its noise is shared" in err and "\n" not in err and not out.exists()
    # the check can be switched off (to measure what a blind spot does to such data)
    assert _run(coloured, seconds=60, max_steps=2, check_noise=False).steps == 2


def _run_named(micrograph: np.ndarray, name: str) -> None:
    model, checkpoint = load_checkpoint(shipped_path(START))
    for _ in adapt_steps(model, [(micrograph, None)], checkpoint.normalization,
                         AdaptOptions(device="cpu", patch_size=32), names=[name]):
        pass
