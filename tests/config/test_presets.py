"""Architecture presets and learning-rate schedules: config rules, models, weight files,
exact tiling, training (1 tiny epoch each on simulated 64² micrographs), schedules and resume."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_cryoden.config.presets import PRESETS, UNET_RADIUS
from napari_cryoden.config.sections import Config, ConfigError, ModelConfig, TrainConfig
from napari_cryoden.data.normalize import fit_normalizer
from napari_cryoden.data.pairs import find_pairs
from napari_cryoden.errors import InputError, WeightFileError
from napari_cryoden.inference.denoiser import denoise, plan_tiles, receptive_radius
from napari_cryoden.interop.auto import import_raw
from napari_cryoden.interop.raw import export_raw
from napari_cryoden.kernels.fused import check_model
from napari_cryoden.kernels.train import supports
from napari_cryoden.models.checkpoint import load_checkpoint, save_checkpoint
from napari_cryoden.models.nets import build_model, expected_shapes
from napari_cryoden.simulation.micrographs import simulate_dataset
from napari_cryoden.training import EpochEnd, TrainStep, train
from napari_cryoden.training.schedules import Schedule

NAMES = list(PRESETS)
DEFAULTS = {  # (channels, depth, kernel_size, parameters)
    "seed": (16, 3, 3, 2_625), "deep": (32, 6, 3, 37_601), "residual": (16, 3, 3, 2_625),
    "wide5": (16, 3, 5, 7_233), "unet-small": (16, 11, 3, 118_113),
}


def preset_config(name: str, **sections: dict) -> Config:
    base = {"model": {"preset": name}, "data": {"patch_size": 32, "shuffle_buffer": 4},
            "train": {"batch_size": 4, "epochs": 1, "device": "cpu", "lr": 2e-3}}
    for key, values in sections.items():
        base.setdefault(key, {}).update(values)
    return Config.from_dict(base)


@pytest.fixture(scope="module")
def sim_pairs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, list]:
    root = tmp_path_factory.mktemp("sim")
    simulate_dataset(root, 5, 64, seed=1)
    pairs = find_pairs(root / "noisy", root / "clean")
    return pairs[:4], pairs[4:]


def run(config: Config, pairs: tuple[list, list], run_dir: Path, **kw) -> list:
    return list(train(config, pairs[0], pairs[1], run_dir, **kw))


# -- config -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_preset_supplies_defaults(name: str) -> None:
    model = Config.from_dict({"model": {"preset": name}}).model
    assert (model.channels, model.depth, model.kernel_size) == DEFAULTS[name][:3]
    assert Config().replace(model={"preset": name}).model == model  # replace resets to defaults


def test_seed_default_is_unchanged() -> None:
    assert ModelConfig() == ModelConfig(preset="seed", channels=16, depth=3, kernel_size=3)
    assert Config().to_dict()["model"] == {"preset": "seed", "channels": 16, "depth": 3,
                                           "kernel_size": 3}


@pytest.mark.parametrize(("model", "message"), [
    ({"preset": "deep", "depth": 3}, "model.depth: preset 'deep' has 5-7 layers, got 3"),
    ({"preset": "wide5", "kernel_size": 3}, "preset 'wide5' fixes it at 5, got 3"),
    ({"preset": "unet-small", "depth": 4}, "preset 'unet-small' fixes it at 11, got 4"),
    ({"preset": "unet-small", "kernel_size": 5}, "preset 'unet-small' fixes it at 3, got 5"),
    ({"preset": "resnet"}, "unknown preset 'resnet' (known: 'seed', 'deep', 'residual'"),
])
def test_contradictions_are_one_line_errors(model: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_dict({"model": model})
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_user_overrides_where_meaningful() -> None:
    deep = Config.from_dict({"model": {"preset": "deep", "depth": 7, "channels": 8}}).model
    assert (deep.depth, deep.channels) == (7, 8)
    unet = Config.from_dict({"model": {"preset": "unet-small", "channels": 8}}).model
    assert expected_shapes(unet)["conv7.weight"] == (16, 48, 3, 3)  # up(32) ‖ encoder 2 (16)
    wide = Config.from_dict({"model": {"preset": "wide5", "depth": 4}}).model
    assert wide.receptive_radius == 8


# -- models and weight files ------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_model_shapes_and_weight_file_round_trip(name: str, tmp_path: Path) -> None:
    config = preset_config(name)
    model = build_model(config.model, seed=0).eval()
    state = model.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == expected_shapes(config.model)
    assert list(state) == list(expected_shapes(config.model))  # conv1 … convN, in file order
    assert sum(p.numel() for p in model.parameters()) == DEFAULTS[name][3]
    x = torch.rand(2, 1, 37, 50)  # odd, non-square, not a multiple of the U-Net's 4
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    path = save_checkpoint(tmp_path / "w.safetensors", model, config, epoch=1)
    assert path.stat().st_size < 5 * 2**20
    loaded, ckpt = load_checkpoint(path)
    assert ckpt.config.model.preset == name and type(loaded) is type(model)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), y)


def test_residual_adds_the_input() -> None:
    residual = build_model(preset_config("residual").model, seed=0)
    seed = build_model(preset_config("seed").model, seed=0)
    x = torch.rand(1, 1, 20, 20)
    with torch.no_grad():
        torch.testing.assert_close(residual(x), x + seed(x))


def test_weights_of_another_preset_are_refused_by_name(tmp_path: Path) -> None:
    """A file whose metadata names one preset but holds another's tensors."""
    seed_model = build_model(seed=0)
    unet = preset_config("unet-small")
    payload = save_checkpoint(tmp_path / "seed.safetensors", seed_model, Config()).read_bytes()
    length = int.from_bytes(payload[:8], "little")
    header = json.loads(payload[8:8 + length])
    meta = json.loads(header["__metadata__"]["cryoden"])
    meta["config"] = unet.to_dict()
    header["__metadata__"]["cryoden"] = json.dumps(meta)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(len(text).to_bytes(8, "little") + text + payload[8 + length:])
    with pytest.raises(WeightFileError, match="model has 11 layers but the file holds 3 weight "
                                              "tensors \\(preset 'unet-small'\\)"):
        load_checkpoint(bad)
    with pytest.raises(WeightFileError, match=r"conv1.weight has shape \(16, 1, 3, 3\), expected "
                                              r"\(16, 1, 5, 5\).*for preset 'wide5'"):
        save_checkpoint(tmp_path / "x.safetensors", seed_model, preset_config("wide5"))


def test_unknown_preset_in_metadata_is_a_clear_error(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "w.safetensors", build_model(seed=0), Config())
    payload = path.read_bytes().replace(b'\\"preset\\": \\"seed\\"', b'\\"preset\\": \\"sead\\"')
    path.write_bytes(payload)
    with pytest.raises(WeightFileError, match="bad config in metadata: model.preset: unknown "
                                              "preset 'sead'"):
        load_checkpoint(path)


def test_fused_kernels_refuse_other_presets() -> None:
    assert check_model(build_model(seed=0)) == 16
    for name in NAMES[1:]:
        model = build_model(preset_config(name).model, seed=0)
        with pytest.raises(ValueError, match="seed preset only|need a DenoiseCNN"):
            check_model(model)
        assert not supports(model)


def test_unet_raw_folder_round_trip(tmp_path: Path) -> None:
    config = preset_config("unet-small")
    path = save_checkpoint(tmp_path / "u.safetensors", build_model(config.model, seed=2), config)
    export_raw(path, tmp_path / "raw", layout="fortran")
    result = import_raw(tmp_path / "raw", tmp_path / "back.safetensors")
    original, _ = load_checkpoint(path)
    back, ckpt = load_checkpoint(result.path)
    assert ckpt.config.model == config.model
    for (name, a), b in zip(original.state_dict().items(), back.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name


# -- tiling -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("shape", "tile"), [((150, 203), 80), ((2, 97, 130), 96)])
def test_tiled_equals_untiled(name: str, shape: tuple[int, ...], tile: int) -> None:
    model = build_model(preset_config(name).model, seed=3).eval()
    image = np.random.default_rng(0).random(shape, np.float32) * 3 + 1
    plan = plan_tiles(shape, halo=receptive_radius(model), tile_size=tile,
                      multiple=model.config.downsampling)
    assert plan.n_tiles > 2 * (shape[0] if len(shape) == 3 else 1)
    stack = image.reshape(-1, *shape[-2:])
    norm = [(n.offset, n.scale) for n in (fit_normalizer(s, "meanstd") for s in stack)]
    x = torch.from_numpy(np.stack([(s - m) / d for s, (m, d) in zip(stack, norm, strict=True)]))
    with torch.no_grad():
        whole = model(x[:, None].float())[:, 0].numpy()
    whole = np.stack([w * d + m for w, (m, d) in zip(whole, norm, strict=True)]).reshape(shape)
    tiled = denoise(model, image, normalization="meanstd", tile_size=tile)
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-5)


def test_unet_tiles_start_on_its_pooling_grid() -> None:
    plan = plan_tiles((150, 203), halo=UNET_RADIUS, tile_size=90, multiple=4)
    assert plan.tile[0] % 4 == 0 and plan.tile[1] % 4 == 0 and plan.multiple == 4
    from napari_cryoden.inference.tiling import axis_tiles

    tiles = axis_tiles(203, plan.tile[1], plan.halo, plan.blend, 4)
    assert all(t.start % 4 == 0 for t in tiles) and tiles[-1].start + tiles[-1].hi == 203


def test_unet_receptive_radius_is_exact() -> None:
    """In float64: an edge at a grid-aligned crop disturbs exactly UNET_RADIUS rows inwards."""
    model = build_model(preset_config("unet-small").model, seed=1).double().eval()
    x = torch.rand(1, 1, 192, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = model(x)
        for start, stop in ((32, 132), (44, 144)):
            diff = (model(x[..., start:stop, :]) - full[..., start:stop, :]).abs()[0, 0]
            rows = torch.nonzero(diff.amax(1) > 1e-12)[:, 0].tolist()
            half = (stop - start) // 2
            assert max(r for r in rows if r < half) + 1 == UNET_RADIUS
            assert (stop - start) - min(r for r in rows if r >= half) == UNET_RADIUS


# -- training ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_each_preset_trains_and_reloads(name: str, sim_pairs, tmp_path: Path) -> None:
    events = run(preset_config(name), sim_pairs, tmp_path / "run")
    steps = [e.loss for e in events if isinstance(e, TrainStep)]
    (epoch,) = [e for e in events if isinstance(e, EpochEnd)]
    assert len(steps) == 4 and all(np.isfinite(steps)) and np.isfinite(epoch.val_loss)
    model, ckpt = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert ckpt.config.model.preset == name
    image = np.random.default_rng(1).random((70, 45), np.float32)
    again, _ = load_checkpoint(tmp_path / "run" / "best.safetensors")
    np.testing.assert_array_equal(denoise(model, image), denoise(again, image))


def test_deep_preset_loss_decreases(sim_pairs, tmp_path: Path) -> None:
    cfg = preset_config("deep", train={"epochs": 3, "lr": 1e-3},
                        data={"normalization": "meanstd"})
    epochs = [e for e in run(cfg, sim_pairs, tmp_path / "r") if isinstance(e, EpochEnd)]
    assert epochs[-1].train_loss < epochs[0].train_loss


def test_same_seed_same_losses_for_a_unet(sim_pairs, tmp_path: Path) -> None:
    cfg = preset_config("unet-small", data={"crop": 24}, train={"schedule": "cosine"})
    a, b = ([e.loss for e in run(cfg, sim_pairs, tmp_path / d) if isinstance(e, TrainStep)]
            for d in ("a", "b"))
    assert a == b


def test_resume_refuses_another_preset(sim_pairs, tmp_path: Path) -> None:
    run(preset_config("deep"), sim_pairs, tmp_path / "run")
    with pytest.raises(InputError, match="preset='deep'.*differs from the requested one "
                                         r"\(ModelConfig\(preset='unet-small'"):
        run(preset_config("unet-small", train={"epochs": 2}), sim_pairs, tmp_path / "run",
            resume=True)


# -- schedules --------------------------------------------------------------------------------
def _schedule(kind: str, epochs: int = 4, steps: int = 5, patience: int = 2) -> Schedule:
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    config = TrainConfig(lr=0.1, epochs=epochs, schedule=kind, plateau_patience=patience)
    return Schedule(config, optimizer, steps)


def test_cosine_falls_from_lr_to_zero() -> None:
    schedule = _schedule("cosine")
    rates = [schedule.lr]
    for _ in range(20):
        schedule.after_step()
        rates.append(schedule.lr)
    assert rates[0] == 0.1 and rates[10] == pytest.approx(0.05) and rates[-1] == pytest.approx(0)
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))


def test_plateau_halves_after_patience() -> None:
    schedule = _schedule("plateau", patience=2)
    rates = []
    for loss in (1.0, 0.9, 0.95, 0.9, 0.91, 0.92, 0.93, 0.5):
        schedule.end_epoch(loss)
        rates.append(schedule.lr)
    # best 0.9 at epoch 2; epochs 3-5 are 3 > 2 bad ones: halved; then 6, 7 bad, 8 new best
    assert rates == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]
    state = schedule.state()
    fresh = _schedule("plateau", patience=2)
    fresh.load_state(json.loads(json.dumps(state)), 0)
    assert (fresh.lr, fresh.best, fresh.bad_epochs) == (0.05, 0.5, 0)


def test_constant_keeps_lr() -> None:
    schedule = _schedule("constant")
    for _ in range(7):
        schedule.after_step()
    schedule.end_epoch(1.0)
    schedule.end_epoch(2.0)
    assert schedule.lr == 0.1


def test_cosine_run_records_lr_and_resume_continues_the_schedule(sim_pairs,
                                                                  tmp_path: Path) -> None:
    cfg = preset_config("residual", train={"epochs": 3, "schedule": "cosine"})
    straight = run(cfg, sim_pairs, tmp_path / "straight")
    history = json.loads((tmp_path / "straight" / "history.json").read_text())
    rates = [e["lr"] for e in history["epochs"]]
    assert rates[0] < 2e-3 and rates[-1] == pytest.approx(0.0, abs=1e-12)
    assert rates == sorted(rates, reverse=True)

    stop, run_dir, events = threading.Event(), tmp_path / "stopped", []
    for event in train(cfg, sim_pairs[0], sim_pairs[1], run_dir, stop=stop):
        events.append(event)
        if isinstance(event, EpochEnd) and event.epoch == 2:
            stop.set()  # ends before epoch 3's first step
    _, last = load_checkpoint(run_dir / "last.safetensors")
    assert last.metadata["schedule"]["step"] == 8 and last.metadata["stopped"]
    events += run(cfg, sim_pairs, run_dir, resume=True)
    resumed = json.loads((run_dir / "history.json").read_text())
    assert [e["lr"] for e in resumed["epochs"]] == pytest.approx(rates, rel=1e-12)
    losses = [e.loss for e in events if isinstance(e, TrainStep)]
    expected = [e.loss for e in straight if isinstance(e, TrainStep)]
    np.testing.assert_allclose(losses, expected, rtol=1e-5)


def test_plateau_run_saves_and_restores_its_state(sim_pairs, tmp_path: Path) -> None:
    cfg = preset_config("seed", train={"epochs": 2, "schedule": "plateau",
                                       "plateau_patience": 0, "lr": 1e-6})
    run(cfg, sim_pairs, tmp_path / "run")
    _, last = load_checkpoint(tmp_path / "run" / "last.safetensors")
    state = last.metadata["schedule"]
    assert state["kind"] == "plateau" and state["step"] == 8 and state["best"] is not None
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["epochs"][0]["lr"] == 1e-6 and history["epochs"][-1]["lr"] == state["lr"]
    more = cfg.replace(train={"epochs": 3})
    run(more, sim_pairs, tmp_path / "run", resume=True)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["epochs"][2]["lr"] <= state["lr"]
