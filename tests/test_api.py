"""The public API at the package root: light to import, and docs/api.md's example runs as shown."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

import napari_cryoden
from napari_cryoden import api
from napari_cryoden.config import Config, ConfigError
from napari_cryoden.errors import CryodenError, InputError
from napari_cryoden.io.images import read_image

DOCS = Path(__file__).resolve().parents[1] / "docs" / "api.md"
PUBLIC = ["Config", "train", "denoise", "denoise_file", "evaluate", "load_model", "save_model",
          "simulate", "adapt"]
TINY = {"data": {"patch_size": 32, "shuffle_buffer": 4},
        "train": {"epochs": 1, "batch_size": 4, "device": "cpu"}}


def test_import_is_light_and_every_public_name_resolves() -> None:
    code = ("import sys, napari_cryoden as c\n"
            "heavy = ('torch', 'qtpy', 'napari')\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n"
            "print(all(callable(getattr(c, n)) for n in c.__all__[1:]))\n"
            "print(sorted(m for m in heavy if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "True", "[]"], "the API must load torch only when used"


def test_all_lists_the_api_and_the_version() -> None:
    assert napari_cryoden.__all__ == ["__version__", *PUBLIC]
    assert isinstance(napari_cryoden.__version__, str)
    assert set(PUBLIC) <= set(dir(napari_cryoden))
    assert napari_cryoden.Config is Config
    with pytest.raises(AttributeError, match="no attribute 'simulate_micrographs'"):
        napari_cryoden.simulate_micrographs  # noqa: B018


def test_root_names_survive_importing_every_subpackage() -> None:
    """A subpackage named like a root function would replace it once imported."""
    package = Path(napari_cryoden.__file__).parent
    for init in package.glob("*/__init__.py"):
        if init.parent.name != "_qt":
            importlib.import_module(f"napari_cryoden.{init.parent.name}")
    for name in PUBLIC:
        assert getattr(napari_cryoden, name) is getattr(api, name), name


def docs_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    runnable = [b for b in blocks if "cryoden.train(" in b]
    assert len(runnable) == 1, "docs/api.md should have one runnable example"
    return runnable[0]


def test_docs_example_runs_and_the_model_beats_the_noisy_input(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    scope: dict = {}
    exec(compile(docs_example(), str(DOCS), "exec"), scope)  # noqa: S102 - our own docs
    result, noisy, denoised = scope["result"], scope["noisy"], scope["denoised"]
    assert result.epochs_completed == 1 and not result.stopped
    assert result.best_path.is_file() and tmp_path in result.best_path.parents
    assert len(result.history["epochs"]) == 1
    assert denoised.shape == noisy.shape and denoised.dtype == np.float32
    from_file, _ = read_image(scope["written"])
    np.testing.assert_allclose(from_file, denoised, rtol=1e-5, atol=1e-6)
    report = scope["report"]
    assert report["n_micrographs"] == 8
    assert report["psnr"] > report["baselines"]["noisy"]["psnr"]


def test_save_and_load_model_round_trip(tmp_path: Path) -> None:
    model = napari_cryoden.load_model("general-fast", device="cpu")
    path = napari_cryoden.save_model(model, tmp_path / "copy.safetensors", note="grid 3")
    again = napari_cryoden.load_model(path, device="cpu")
    assert again.config == model.config and again.normalization == model.normalization
    assert again.checkpoint.metadata["note"] == "grid 3"
    image = np.random.default_rng(0).normal(0.5, 0.1, (48, 40)).astype(np.float32)
    np.testing.assert_array_equal(napari_cryoden.denoise(image, again, device="cpu"),
                                  napari_cryoden.denoise(image, "general-fast", device="cpu"))
    with pytest.raises(InputError, match="bare.safetensors: save_model needs the config"):
        napari_cryoden.save_model(model.net, tmp_path / "bare.safetensors")


def test_denoise_file_into_a_folder_keeps_the_name(make_pairs, tmp_path: Path) -> None:
    noisy_dir, _ = make_pairs(n=1, size=40)
    out = tmp_path / "denoised"
    out.mkdir()
    written = napari_cryoden.denoise_file(noisy_dir / "mic_000.mrc", out, "general-fast",
                                          device="cpu")
    assert written == out / "mic_000.mrc"
    image, pixel_size = read_image(written)
    assert image.shape == (40, 40) and pixel_size == pytest.approx(1.5)


def test_even_odd_folders_train_noise2noise(make_pairs, tmp_path: Path) -> None:
    even, odd = make_pairs(n=3, size=64)
    result = napari_cryoden.train(Config.from_dict(TINY), even=even, odd=odd,
                                  run_dir=tmp_path / "run")
    assert result.history["config"]["train"]["mode"] == "n2n"
    assert napari_cryoden.load_model(result.best_path).config.train.mode == "n2n"


def test_callback_sees_events_and_can_stop_the_run(make_pairs, tmp_path: Path) -> None:
    noisy, clean = make_pairs(n=3, size=64)
    stop, seen = threading.Event(), []

    def on_event(event: object) -> None:
        seen.append(type(event).__name__)
        if seen.count("TrainStep") == 2:
            stop.set()

    config = Config.from_dict({**TINY, "train": {**TINY["train"], "epochs": 3}})
    result = napari_cryoden.train(config, noisy=noisy, clean=clean, run_dir=tmp_path / "run",
                                  callback=on_event, stop=stop)
    assert seen[0] == "TrainStart" and seen[-1] == "TrainEnd"
    assert result.stopped and result.epochs_completed == 0 and result.best_path is None
    assert result.last_path is not None and result.last_path.is_file()


def test_bad_sources_and_parameters_are_one_line_errors(make_pairs, tmp_path: Path) -> None:
    noisy, _ = make_pairs(n=2, size=32)
    with pytest.raises(CryodenError, match="give either --noisy and --clean folders"):
        napari_cryoden.train(Config.from_dict(TINY), noisy=noisy, run_dir=tmp_path / "run")
    with pytest.raises(ConfigError, match="n must be >= 1"):
        napari_cryoden.simulate(tmp_path / "sim", n=0)
    with pytest.raises(ConfigError, match="unknown parameter.*dose_rate"):
        napari_cryoden.simulate(tmp_path / "sim", n=1, size=16, dose_rate=3.0)


def test_interrupting_a_run_keeps_its_history_and_last_weights(make_pairs, tmp_path: Path) -> None:
    noisy, clean = make_pairs(n=3, size=64)

    def ctrl_c(event: object) -> None:
        if type(event).__name__ == "TrainStep":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        napari_cryoden.train(Config.from_dict(TINY), noisy=noisy, clean=clean,
                             run_dir=tmp_path / "run", callback=ctrl_c)
    assert (tmp_path / "run" / "history.json").is_file()
    assert (tmp_path / "run" / "last.safetensors").is_file()


def test_denoise_with_a_pixel_cutoff_clips_hot_pixels_first(make_pairs, tmp_path: Path) -> None:
    noisy_dir, _ = make_pairs(n=1, size=64)
    image, _ = read_image(noisy_dir / "mic_000.mrc")
    hot = image.copy()
    hot[20, 30] = 500.0
    clipped = napari_cryoden.denoise(hot, "general-fast", device="cpu", pixel_cutoff=5.0)
    assert clipped.max() < 2.0 < napari_cryoden.denoise(hot, "general-fast", device="cpu").max()
    written = napari_cryoden.denoise_file(noisy_dir / "mic_000.mrc", tmp_path / "d.mrc",
                                          "general-fast", device="cpu", pixel_cutoff=5.0)
    np.testing.assert_allclose(read_image(written)[0],
                               napari_cryoden.denoise(image, "general-fast", device="cpu",
                                                      pixel_cutoff=5.0), atol=1e-6)
