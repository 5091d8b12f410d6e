"""The CLI end to end (simulate → train → denoise → evaluate) and its one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from napari_cryoden.cli.main import main
from napari_cryoden.models.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def workflow(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    assert main(["simulate", str(root / "sim"), "--n", "5", "--size", "96", "--seed", "3",
                 "--pixel-size", "1.7"]) == 0
    assert main(["train", "--noisy", str(root / "sim/noisy"), "--clean", str(root / "sim/clean"),
                 "--out", str(root / "run"), "--epochs", "2", "--patch-size", "48",
                 "--batch-size", "4", "--device", "cpu", "--val-fraction", "0.2"]) == 0
    return {"root": root, "sim": root / "sim", "run": root / "run"}


def test_simulate_writes_pairs(workflow) -> None:
    noisy = sorted((workflow["sim"] / "noisy").glob("*.mrc"))
    assert len(noisy) == 5 and len(list((workflow["sim"] / "clean").glob("*.mrc"))) == 5
    with mrcfile.open(noisy[0]) as mrc:
        assert mrc.data.shape == (96, 96)
        assert mrc.voxel_size.x == pytest.approx(1.7)


def test_train_writes_run_folder(workflow) -> None:
    run = workflow["run"]
    names = {p.name for p in run.iterdir()}
    assert {"best.safetensors", "last.safetensors", "history.json"} <= names
    history = json.loads((run / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    _, ckpt = load_checkpoint(run / "best.safetensors")
    assert ckpt.config.data.patch_size == 48 and ckpt.config.train.epochs == 2


def test_train_records_the_pixel_sizes_of_its_micrographs(workflow) -> None:
    for name in ("best.safetensors", "last.safetensors"):
        _, ckpt = load_checkpoint(workflow["run"] / name)
        assert ckpt.pixel_size_range == pytest.approx((1.7, 1.7))  # simulated at 1.7 Å/px


def test_train_resume_continues(workflow, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(workflow["run"], run)
    sim = workflow["sim"]
    before = json.loads((run / "history.json").read_text())
    assert main(["train", "--noisy", str(sim / "noisy"), "--clean", str(sim / "clean"),
                 "--resume", str(run), "--epochs", "3", "--patch-size", "48",
                 "--batch-size", "4", "--device", "cpu", "--val-fraction", "0.2"]) == 0
    history = json.loads((run / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3]
    assert history["epochs"][:2] == before["epochs"]  # the curve goes on, not restarts


def test_train_resume_needs_a_run_to_resume(workflow, tmp_path: Path, capsys) -> None:
    sim = workflow["sim"]
    data = ["--noisy", str(sim / "noisy"), "--clean", str(sim / "clean"), "--device", "cpu"]
    assert main(["train", *data, "--resume", str(tmp_path / "empty")]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert main(["train", *data, "--resume", str(workflow["run"]),
                 "--out", str(tmp_path / "other")]) == 2
    assert "different run folders" in capsys.readouterr().err
    assert main(["train", *data]) == 2
    assert "--out RUN_DIR" in capsys.readouterr().err


def test_denoise_keeps_shape_and_pixel_size(workflow, capsys) -> None:
    out = workflow["root"] / "denoised"
    assert main(["denoise", str(workflow["run"] / "best.safetensors"),
                 str(workflow["sim"] / "noisy"), "--out", str(out), "--device", "cpu"]) == 0
    files = sorted(out.glob("*.mrc"))
    assert len(files) == 5
    with mrcfile.open(files[0]) as mrc:
        assert mrc.data.shape == (96, 96) and mrc.data.dtype == np.float32
        assert mrc.voxel_size.x == pytest.approx(1.7)
    assert "denoised 5 micrograph(s)" in capsys.readouterr().out


def test_evaluate_writes_contract_json(workflow, capsys) -> None:
    report_path = workflow["root"] / "report.json"
    figures = workflow["root"] / "figures"
    assert main(["evaluate", str(workflow["run"] / "best.safetensors"),
                 "--noisy", str(workflow["sim"] / "noisy"),
                 "--clean", str(workflow["sim"] / "clean"),
                 "--json", str(report_path), "--figures", str(figures), "--device", "cpu"]) == 0
    report = json.loads(report_path.read_text())
    for key in ("mse", "rmse", "psnr", "corr", "patches", "checklist"):
        assert key in report
    assert len(report["patches"]) == 5 * 4  # 96 px micrographs in 48 px patches
    assert len(report["checklist"]) == 10
    assert report["target_kind"] == "clean"
    assert {p.name for p in figures.glob("*.png")} >= {"scatter.png", "histograms.png",
                                                       "panel.png", "loss.png"}
    out = capsys.readouterr().out
    assert "noisy input" in out and "Gaussian" in out and ("PASS" in out or "FAIL" in out)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--noisy", "{t}/missing", "--clean", "{t}/missing", "--out", "{t}/r"],
         "missing"),
        (["denoise", "{t}/nope.safetensors", "{t}", "--out", "{t}/o"],
         "nope.safetensors: no such weight file"),
        (["denoise", "{t}/fake.safetensors", "{t}", "--out", "{t}/o"],
         "fake.safetensors: not a safetensors weight file"),
        (["train", "--noisy", "{t}", "--clean", "{t}", "--out", "{t}/r", "--epochs", "0"],
         "train.epochs must be >= 1"),
        (["simulate", "{t}/s", "--n", "0"], "--n must be >= 1"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, capsys, argv, message) -> None:
    (tmp_path / "fake.safetensors").write_bytes(b"\x80\x04not a weight file")
    code = main([a.replace("{t}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("cryoden: error:") and message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_console_script_help_and_version() -> None:
    exe = Path(sys.executable).with_name("cryoden")
    for argv in (["--help"], ["train", "--help"], ["evaluate", "--help"], ["--version"]):
        result = subprocess.run([str(exe), *argv], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    assert "--val-fraction" in subprocess.run([str(exe), "train", "--help"], capture_output=True,
                                              text=True, timeout=60).stdout


def test_pack_then_train_from_the_store(workflow, tmp_path: Path, capsys) -> None:
    sim = workflow["sim"]
    store = tmp_path / "store"
    assert main(["pack", "--noisy", str(sim / "noisy"), "--clean", str(sim / "clean"),
                 "--out", str(store), "--patch-size", "48"]) == 0
    assert "packed 20 patches of 48x48" in capsys.readouterr().out
    run = tmp_path / "run"
    assert main(["train", "--store", str(store), "--out", str(run), "--epochs", "2",
                 "--batch-size", "4", "--device", "cpu", "--val-fraction", "0.2"]) == 0
    out = capsys.readouterr().out
    # the same file is held out as by `train --noisy --clean --val-fraction 0.2 --seed 0`
    assert f"store {store}, 16 train / 4 val patches, 4 steps per epoch of 4 (fp32)" in out
    model, ckpt = load_checkpoint(run / "best.safetensors")
    assert ckpt.config.data.patch_size == 48  # the store's, not the default 1024
    history = json.loads((run / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert all(e["val_loss"] is not None for e in history["epochs"])


def test_train_needs_folders_or_a_store(workflow, tmp_path: Path, capsys) -> None:
    assert main(["train", "--out", str(tmp_path / "r"), "--device", "cpu"]) == 2
    assert "give either --noisy and --clean folders, or --store" in capsys.readouterr().err


def test_train_a_preset_with_a_schedule_then_denoise_and_evaluate(workflow, tmp_path: Path,
                                                                   capsys) -> None:
    sim, run = workflow["sim"], tmp_path / "unet"
    assert main(["train", "--noisy", str(sim / "noisy"), "--clean", str(sim / "clean"),
                 "--out", str(run), "--epochs", "2", "--patch-size", "48", "--batch-size", "4",
                 "--device", "cpu", "--val-fraction", "0.2", "--preset", "unet-small",
                 "--channels", "8", "--schedule", "cosine"]) == 0
    _, ckpt = load_checkpoint(run / "best.safetensors")
    assert ckpt.config.model.preset == "unet-small" and ckpt.config.model.channels == 8
    assert ckpt.config.train.schedule == "cosine"
    history = json.loads((run / "history.json").read_text())
    assert history["epochs"][-1]["lr"] == pytest.approx(0.0, abs=1e-12)
    out = tmp_path / "denoised"
    assert main(["denoise", str(run / "best.safetensors"), str(sim / "noisy"), "--out", str(out),
                 "--device", "cpu"]) == 0
    with mrcfile.open(sorted(out.glob("*.mrc"))[0]) as mrc:
        assert mrc.data.shape == (96, 96)
    report = tmp_path / "report.json"
    assert main(["evaluate", str(run / "best.safetensors"), "--noisy", str(sim / "noisy"),
                 "--clean", str(sim / "clean"), "--json", str(report), "--device", "cpu"]) == 0
    assert np.isfinite(json.loads(report.read_text())["mse"])
    capsys.readouterr()
    assert main(["train", "--noisy", str(sim / "noisy"), "--clean", str(sim / "clean"),
                 "--out", str(tmp_path / "bad"), "--preset", "deep", "--depth", "3"]) == 2
    assert "model.depth: preset 'deep' has 5-7 layers, got 3" in capsys.readouterr().err


def test_ctrl_c_mid_training_keeps_best_and_saves_history(workflow, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from napari_cryoden.models.checkpoint import load_checkpoint

    run, sim = tmp_path / "run", workflow["sim"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "napari_cryoden.cli", "train", "--noisy", str(sim / "noisy"),
         "--clean", str(sim / "clean"), "--out", str(run), "--epochs", "500", "--patch-size",
         "48", "--batch-size", "2", "--device", "cpu", "--val-fraction", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run / "best.safetensors").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (run / "best.safetensors").exists(), proc.stderr.read() if proc.poll() else ""
        best_before = (run / "best.safetensors").read_bytes()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "interrupted: history and last weights saved" in err
    assert "Traceback" not in err
    history = json.loads((run / "history.json").read_text())
    assert history["stopped"] is True and history["epochs"]
    assert history["epochs"][-1]["epoch"] < 500
    load_checkpoint(run / "last.safetensors")
    load_checkpoint(run / "best.safetensors")  # intact: a new best may have replaced it whole
    assert (run / "best.safetensors").read_bytes() == best_before or history["best_epoch"] > 1


def test_train_from_a_shipped_model_with_coloured_noise(workflow, tmp_path: Path) -> None:
    sim, run = workflow["sim"], tmp_path / "run"
    assert main(["train", "--noisy", str(sim / "noisy"), "--clean", str(sim / "clean"),
                 "--out", str(run), "--epochs", "1", "--patch-size", "48", "--batch-size", "4",
                 "--device", "cpu", "--init", "general-fast", "--noise-colour", "0:1.5"]) == 0
    _, ckpt = load_checkpoint(run / "best.safetensors")
    assert ckpt.config.model.preset == "seed" and ckpt.metadata["init"]["model"] == "general-fast"
    assert ckpt.config.train.noise_colour == "0:1.5"
    assert ckpt.pixel_size_range == pytest.approx((1.7, 1.7))


@pytest.mark.parametrize(("flags", "words"), [
    (["--init", "general", "--preset", "seed"], "differs from the configured model"),
    (["--init", "no-such-model"], "no-such-model"),
    (["--mode", "n2v", "--noise-colour", "0:1"], "noise_colour is for noisy → clean"),
])
def test_train_init_and_noise_colour_errors_are_one_line(workflow, tmp_path: Path, capsys,
                                                         flags: list[str], words: str) -> None:
    sim = workflow["sim"]
    assert main(["train", "--noisy", str(sim / "noisy"), "--clean", str(sim / "clean"),
                 "--out", str(tmp_path / "r"), "--device", "cpu", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err
