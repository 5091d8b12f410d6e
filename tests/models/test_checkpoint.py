"""Weight files: the seed's layout bug must be impossible.

A hand-built model with asymmetric kernels (a shift, a one-sided edge filter, distinct biases)
must give the output computed by hand with numpy; save → load must be bit-identical; and a
transposed or permuted kernel — what the seed's Fortran writer and Python reader did — must
change the output (so this test would have caught the bug) or be refused by the loader.
"""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_cryoden.config.sections import Config
from napari_cryoden.errors import WeightFileError
from napari_cryoden.models.checkpoint import load_checkpoint, save_checkpoint
from napari_cryoden.models.nets import build_model, expected_shapes


def known_model() -> torch.nn.Module:
    """conv1: ch0 = in[y, x-1] + 0.1, ch1 = in[y, x+1] - in[y, x] + 0.2;
    conv2: ch0 = ch0[y-1, x] + 0.3, ch1 = 2 * ch1 + 0.0;
    conv3: out = ch0[y, x] - 0.5 * ch1[y+1, x] - 0.05.
    Every kernel is asymmetric, so any transpose or flip changes the output."""
    model = build_model(seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        w1, b1 = model.conv1.weight, model.conv1.bias
        w1[0, 0, 1, 0] = 1.0  # kernel column 0 = left neighbour (cross-correlation)
        w1[1, 0, 1, 2], w1[1, 0, 1, 1] = 1.0, -1.0
        b1[0], b1[1] = 0.1, 0.2
        w2, b2 = model.conv2.weight, model.conv2.bias
        w2[0, 0, 0, 1] = 1.0  # row 0 = the pixel above
        w2[1, 1, 1, 1] = 2.0
        b2[0] = 0.3
        w3, b3 = model.conv3.weight, model.conv3.bias
        w3[0, 0, 1, 1] = 1.0
        w3[0, 1, 2, 1] = -0.5  # row 2 = the pixel below
        b3[0] = -0.05
    return model


def shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """out[y, x] = a[y + dy, x + dx], zero outside (the conv's zero padding)."""
    out = np.zeros_like(a)
    h, w = a.shape
    ys, yd = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h + min(-dy, 0))
    xs, xd = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w + min(-dx, 0))
    out[yd, xd] = a[ys, xs]
    return out


def expected_output(image: np.ndarray) -> np.ndarray:
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    ch0 = relu(shift(image, 0, -1) + 0.1)
    ch1 = relu(shift(image, 0, 1) - image + 0.2)
    ch0b = relu(shift(ch0, -1, 0) + 0.3)
    ch1b = relu(2 * ch1)
    # conv2's other 14 channels are zero + bias 0 → relu 0: they add nothing.
    return ch0b - 0.5 * shift(ch1b, 1, 0) - 0.05


def run(model: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(image)[None, None]).numpy()[0, 0]


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(1).random((13, 17), dtype=np.float32)


def test_known_case_matches_hand_computation(image: np.ndarray) -> None:
    np.testing.assert_allclose(run(known_model(), image), expected_output(image), atol=1e-6)


def test_save_load_is_bit_identical(tmp_path: Path, image: np.ndarray) -> None:
    model = known_model()
    path = save_checkpoint(tmp_path / "m.safetensors", model, Config(), epoch=3, val_loss=0.5)
    loaded, ckpt = load_checkpoint(path)
    assert np.array_equal(run(loaded, image), run(model, image))
    assert np.array_equal(run(loaded, image), run(known_model(), image))
    assert ckpt.epoch == 3 and ckpt.metadata["val_loss"] == 0.5
    assert ckpt.config == Config()


@pytest.mark.parametrize(
    "scramble",
    [
        lambda w: w.transpose(-1, -2),  # kH <-> kW
        lambda w: w.flip(-1),  # kernel mirrored (convolution vs cross-correlation)
        lambda w: w.permute(1, 0, 2, 3) if w.shape[0] == w.shape[1] else w.transpose(-1, -2),
        # the seed's bug: (out,in,kH,kW) memory read as (kH,kW,in,out), then transposed back
        lambda w: torch.from_numpy(
            w.numpy().reshape(-1).reshape(w.shape[2], w.shape[3], w.shape[1], w.shape[0])
            .transpose(3, 2, 0, 1).copy()),
    ],
    ids=["transpose-hw", "flip", "swap-in-out", "seed-legacy"],
)
def test_scrambled_layout_changes_output(image: np.ndarray, scramble) -> None:
    good = known_model()
    bad = known_model()
    with torch.no_grad():
        for name in ("conv1", "conv2", "conv3"):
            conv = getattr(bad, name)
            conv.weight.copy_(scramble(conv.weight.detach().clone()))
    assert not np.allclose(run(bad, image), run(good, image), atol=1e-3)
    assert not np.allclose(run(bad, image), expected_output(image), atol=1e-3)


def test_every_tensor_name_and_shape(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.safetensors", build_model(seed=0), Config())
    header_len = struct.unpack("<Q", path.read_bytes()[:8])[0]
    header = json.loads(path.read_bytes()[8 : 8 + header_len])
    shapes = {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    assert shapes == expected_shapes(Config().model)
    assert shapes["conv1.weight"] == (16, 1, 3, 3) and shapes["conv3.weight"] == (1, 16, 3, 3)
    meta = json.loads(header["__metadata__"]["cryoden"])
    assert meta["config"]["model"]["channels"] == 16 and meta["package_version"]


def _write_raw(path: Path, tensors: dict[str, torch.Tensor], meta: dict | None) -> None:
    from safetensors.torch import save_file

    save_file(tensors, str(path),
              metadata=None if meta is None else {"cryoden": json.dumps(meta)})


def _meta() -> dict:
    return {"format": "napari-cryoden-weights", "config": Config().to_dict()}


def test_wrong_shape_names_the_tensor(tmp_path: Path) -> None:
    tensors = {k: v.clone() for k, v in build_model(seed=0).state_dict().items()}
    tensors["conv2.weight"] = tensors["conv2.weight"].permute(2, 3, 1, 0).contiguous()[:, :, :, :]
    tensors["conv1.weight"] = tensors["conv1.weight"].permute(2, 3, 1, 0).contiguous()
    _write_raw(tmp_path / "bad.safetensors", tensors, _meta())
    with pytest.raises(WeightFileError, match=r"bad.safetensors: conv1.weight has shape "
                                              r"\(3, 3, 1, 16\), expected \(16, 1, 3, 3\)"):
        load_checkpoint(tmp_path / "bad.safetensors")


def test_wrong_names_missing_metadata_nan(tmp_path: Path) -> None:
    good = {k: v.clone() for k, v in build_model(seed=0).state_dict().items()}
    renamed = {k.replace("conv", "layer"): v for k, v in good.items()}
    _write_raw(tmp_path / "names.safetensors", renamed, _meta())
    with pytest.raises(WeightFileError, match="missing conv1.weight.*unexpected layer1.bias"):
        load_checkpoint(tmp_path / "names.safetensors")
    _write_raw(tmp_path / "nometa.safetensors", good, None)
    with pytest.raises(WeightFileError, match="nometa.safetensors: no napari-cryoden metadata"):
        load_checkpoint(tmp_path / "nometa.safetensors")
    nan = dict(good, **{"conv3.bias": torch.tensor([float("nan")])})
    _write_raw(tmp_path / "nan.safetensors", nan, _meta())
    with pytest.raises(WeightFileError, match="conv3.bias contains NaN"):
        load_checkpoint(tmp_path / "nan.safetensors")


def test_pickle_is_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(WeightFileError, match="evil.safetensors: not a safetensors weight file"):
        load_checkpoint(path)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "model.pt")
    (tmp_path / "model.pt").rename(tmp_path / "renamed.safetensors")
    with pytest.raises(WeightFileError, match="renamed.safetensors: not a safetensors"):
        load_checkpoint(tmp_path / "renamed.safetensors")
    assert not marker.exists()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightFileError, match="nope.safetensors: no such weight file"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_failed_write_keeps_previous_file(tmp_path: Path, monkeypatch, image) -> None:
    path = save_checkpoint(tmp_path / "best.safetensors", known_model(), Config(), epoch=1)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", broken_replace)
    with pytest.raises(OSError):
        save_checkpoint(path, build_model(seed=5), Config(), epoch=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["best.safetensors"]  # no temp file left
    model, ckpt = load_checkpoint(path)
    assert ckpt.epoch == 1 and np.array_equal(run(model, image), run(known_model(), image))
