"""Raw weight interop with the Fortran/cuDNN trainer: layouts, import/export, auto, size errors.

Raw files are built the way the Fortran program builds them: numpy arrays in ``order="F"``
emulate Fortran's column-major arrays and its element-wise assignment between arrays of
different shapes (the seed's save routine, before and after its fix).
"""

from __future__ import annotations

import json
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from conftest import write_pairs
from napari_cryoden.cli.main import main
from napari_cryoden.config.sections import Config, ModelConfig
from napari_cryoden.data.pairs import find_pairs
from napari_cryoden.errors import InputError, WeightFileError
from napari_cryoden.interop.auto import (
    distinct_axis_orders,
    import_raw_folder,
    load_validation,
    score_model,
)
from napari_cryoden.interop.raw import (
    LAYOUTS,
    all_axis_orders,
    check_roundtrips,
    export_raw,
    from_layout,
    read_raw,
    to_layout,
    write_raw,
)
from napari_cryoden.models.checkpoint import load_checkpoint
from napari_cryoden.training import train


# -- emulating the Fortran writers -------------------------------------------------------------
def seed_device_writer(weight: np.ndarray, fixed: bool) -> bytes:
    """The seed's ``cryo_train.cuf`` save routine, before (``fixed=False``) and after its fix.

    ``layer%weights`` is the buffer cuDNN trains with an NCHW filter descriptor, so its memory
    is C-order (out, in, kH, kW) whatever Fortran calls its axes; Fortran declares it
    ``(out, in, kH, kW)`` and sees that memory column-major. ``h_weights = layer%weights``
    copies element by element in column-major order into ``h_weights(kH, kW, in, out)``
    (buggy) or ``h_weights(out, in, kH, kW)`` (fixed), and ``write`` dumps its memory.
    """
    o, i, h, w = weight.shape
    layer_weights = weight.ravel(order="C").reshape((o, i, h, w), order="F")
    shape = (o, i, h, w) if fixed else (h, w, i, o)
    h_weights = layer_weights.ravel(order="F").reshape(shape, order="F")
    return np.asarray(h_weights, "<f4").tobytes(order="F")


def fortran_semantic_writer(weight: np.ndarray) -> bytes:
    """A Fortran program whose array ``w(o, i, y, x)`` means what its indices say, written
    column-major: the ``fortran`` layout."""
    return np.asfortranarray(weight, "<f4").tobytes(order="F")


def seed_legacy_reader(path: Path, c_in: int, c_out: int) -> np.ndarray:
    """The seed's notebook loader before the fix, verbatim."""
    return np.fromfile(path, dtype=np.float32).reshape(3, 3, c_in, c_out).transpose(3, 2, 0, 1)


def write_folder(model: torch.nn.Module, folder: Path, writer) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    for k in range(1, 4):
        (folder / f"conv{k}_weights.bin").write_bytes(writer(state[f"conv{k}.weight"].numpy()))
        (folder / f"conv{k}_bias.bin").write_bytes(state[f"conv{k}.bias"].numpy().tobytes())
    return folder


# -- data and trained models -------------------------------------------------------------------
def write_streaks(root: Path, n: int, size: int, seed: int) -> tuple[Path, Path]:
    """Clean images smooth along x, sharp along y, plus white noise: a direction to learn."""
    rng = np.random.default_rng(seed)
    for sub in ("noisy", "clean"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        clean = gaussian_filter(rng.random((size, size)), (0.6, 5.0))
        clean = (0.3 + 0.5 * (clean - clean.min()) / np.ptp(clean)).astype(np.float32)
        noisy = (clean + rng.normal(0, 0.15, clean.shape)).astype(np.float32)
        for sub, data in (("noisy", noisy), ("clean", clean)):
            with mrcfile.new(root / sub / f"mic_{i}.mrc", overwrite=True) as mrc:
                mrc.set_data(data)
    return root / "noisy", root / "clean"


def train_model(root: Path, train_dirs, val_dirs, normalization: str, epochs: int) -> Path:
    config = Config.from_dict({
        "data": {"patch_size": 32, "shuffle_buffer": 4, "normalization": normalization},
        "train": {"batch_size": 4, "epochs": epochs, "device": "cpu", "lr": 3e-3}})
    list(train(config, find_pairs(*train_dirs), find_pairs(*val_dirs), root / "run"))
    return root / "run" / "best.safetensors"


@pytest.fixture(scope="module")
def streaks(tmp_path_factory) -> dict:
    """A model trained (meanstd) on direction-dependent data, and its validation folders."""
    root = tmp_path_factory.mktemp("streaks")
    val = write_streaks(root / "val", 2, 64, seed=1)
    model_path = train_model(root, write_streaks(root / "train", 4, 64, seed=0), val,
                             "meanstd", epochs=6)
    return {"root": root, "model": model_path, "val": val}


@pytest.fixture(scope="module")
def seed_like(tmp_path_factory) -> dict:
    """The seed's setting: raw intensities (normalisation none), isotropic blobs."""
    root = tmp_path_factory.mktemp("seed_like")
    val = write_pairs(root / "val", 1, 96, seed=5)
    model_path = train_model(root, write_pairs(root / "train", 4, 96, seed=4), val,
                             "none", epochs=6)
    return {"root": root, "model": model_path, "val": val}


IMAGE = torch.from_numpy(np.random.default_rng(7).random((1, 1, 40, 40), np.float32))


def output(model: torch.nn.Module, image: torch.Tensor = IMAGE) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(image)


def validate_flags(dirs: tuple[Path, Path]) -> list[str]:
    return ["--validate-noisy", str(dirs[0]), "--validate-clean", str(dirs[1])]


# -- layouts -----------------------------------------------------------------------------------
def test_every_axis_order_round_trips_and_differs() -> None:
    weight = np.random.default_rng(0).random((4, 3, 5, 2)).astype(np.float32)  # all dims differ
    buffers = {axes: to_layout(weight, axes) for axes in all_axis_orders()}
    assert len(buffers) == 24
    for axes, buffer in buffers.items():
        assert np.array_equal(from_layout(buffer, weight.shape, axes), weight)
    assert len({b.tobytes() for b in buffers.values()}) == 24


def test_named_layouts_are_their_writers_orders(tmp_path: Path) -> None:
    w = np.random.default_rng(1).random((16, 8, 3, 3)).astype(np.float32)
    assert np.array_equal(to_layout(w, "oihw"), w.ravel())
    assert np.array_equal(to_layout(w, "fortran"), w.ravel(order="F"))
    assert to_layout(w, "fortran").tobytes() == fortran_semantic_writer(w)
    assert np.array_equal(to_layout(w, "hwio"), w.transpose(2, 3, 1, 0).ravel())  # TF kernel
    path = tmp_path / "w.bin"
    w.ravel().tofile(path)  # any buffer: seed-legacy reads it exactly as the seed's loader did
    assert np.array_equal(from_layout(np.fromfile(path, np.float32), w.shape, "seed-legacy"),
                          seed_legacy_reader(path, 8, 16))


def test_the_seed_writer_wrote_cudnn_order_before_and_after_its_fix() -> None:
    w = np.random.default_rng(2).random((16, 16, 3, 3)).astype(np.float32)
    buggy, fixed = seed_device_writer(w, fixed=False), seed_device_writer(w, fixed=True)
    assert buggy == fixed == to_layout(w, "oihw").tobytes()
    assert buggy != fortran_semantic_writer(w)


def test_distinct_orders_drop_only_true_duplicates() -> None:
    assert len(distinct_axis_orders(ModelConfig())) == 24  # conv2 is 16x16x3x3: all differ
    one = ModelConfig(channels=1, depth=2, kernel_size=3)  # (1,1,3,3) twice: only h/w matter
    assert distinct_axis_orders(one) == ["oihw", "whio"]


# -- explicit layouts --------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["oihw", "fortran", "hwio", "seed-legacy", "ohwi"])
def test_export_then_import_is_identical(streaks, tmp_path: Path, layout: str) -> None:
    raw, out = tmp_path / "raw", tmp_path / "back.safetensors"
    assert main(["export-raw", str(streaks["model"]), str(raw), "--layout", layout]) == 0
    (raw / "cryoden_raw.json").unlink()  # as from the Fortran program: flags only
    assert main(["import-raw", str(raw), "--out", str(out), "--layout", layout,
                 "--normalization", "meanstd"]) == 0
    original, _ = load_checkpoint(streaks["model"])
    imported, ckpt = load_checkpoint(out)
    assert torch.equal(output(imported), output(original))
    assert ckpt.normalization == "meanstd" and ckpt.metadata["source"]["layout"] == layout


def test_fortran_written_folders_import_identically(streaks, tmp_path: Path) -> None:
    original, _ = load_checkpoint(streaks["model"])
    cases = {"oihw": lambda w: seed_device_writer(w, fixed=True),
             "fortran": fortran_semantic_writer}
    for layout, writer in cases.items():
        folder = write_folder(original, tmp_path / layout, writer)
        model = read_raw(folder, ModelConfig(), layout)
        assert torch.equal(output(model), output(original)), layout


def test_sidecar_makes_import_flagless(streaks, tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "m.safetensors"
    assert main(["export-raw", str(streaks["model"]), str(raw), "--layout", "fortran",
                 "--weights-pattern", "layer{k}.w", "--bias-pattern", "layer{k}.b"]) == 0
    assert (raw / "layer2.w").stat().st_size == 16 * 16 * 9 * 4
    sidecar = json.loads((raw / "cryoden_raw.json").read_text())
    assert sidecar["axes"] == "whio" and sidecar["files"]["layer2.w"] == [16, 16, 3, 3]
    assert main(["import-raw", str(raw), "--out", str(out)]) == 0
    original, _ = load_checkpoint(streaks["model"])
    imported, ckpt = load_checkpoint(out)
    assert torch.equal(output(imported), output(original)) and ckpt.normalization == "meanstd"


# -- auto --------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["oihw", "fortran"])
def test_auto_recovers_the_layout(streaks, tmp_path: Path, capsys, layout: str) -> None:
    original, _ = load_checkpoint(streaks["model"])
    writer = fortran_semantic_writer if layout == "fortran" else (
        lambda w: seed_device_writer(w, fixed=False))
    folder = write_folder(original, tmp_path / "raw", writer)
    out = tmp_path / "auto.safetensors"
    assert main(["import-raw", str(folder), "--out", str(out), "--layout", "auto",
                 "--normalization", "meanstd", *validate_flags(streaks["val"])]) == 0
    printed = capsys.readouterr().out
    table = [line for line in printed.splitlines() if line.strip()[:2] in ("1 ", "2 ")]
    assert LAYOUTS[layout] in table[0] and len(printed.splitlines()) > 24  # the whole ranking
    imported, ckpt = load_checkpoint(out)
    assert torch.equal(output(imported), output(original))
    assert ckpt.metadata["source"]["axes"] == LAYOUTS[layout]
    assert ckpt.metadata["source"]["validation"]["warnings"] == []


def test_auto_refuses_a_tie_and_lists_candidates(streaks, tmp_path: Path, capsys) -> None:
    model, ckpt = load_checkpoint(streaks["model"])
    with torch.no_grad():  # kernels symmetric under transpose: h/w order is undecidable
        for name, tensor in model.state_dict().items():
            if name.endswith("weight"):
                tensor.copy_((tensor + tensor.transpose(2, 3)) / 2)
    folder = tmp_path / "raw"
    write_raw(model, folder, "oihw")
    out = tmp_path / "never.safetensors"
    code = main(["import-raw", str(folder), "--out", str(out), "--layout", "auto",
                 "--normalization", "meanstd", *validate_flags(streaks["val"])])
    captured = capsys.readouterr()
    assert code == 2 and not out.exists()
    assert "within 1%" in captured.err and "refusing to guess" in captured.err
    assert "oihw" in captured.err and "oiwh" in captured.err
    assert "swapping kH and kW" in captured.err
    assert captured.err.count("\n") == 1 and "rank" in captured.out  # one-line error, table


def test_auto_refuses_a_transpose_on_isotropic_data(seed_like, tmp_path: Path, capsys) -> None:
    original, _ = load_checkpoint(seed_like["model"])
    folder = write_folder(original, tmp_path / "raw", lambda w: seed_device_writer(w, True))
    assert main(["import-raw", str(folder), "--out", str(tmp_path / "x.safetensors"),
                 "--layout", "auto", *validate_flags(seed_like["val"])]) == 2
    captured = capsys.readouterr()
    assert "not consistently" in captured.err or "within 1%" in captured.err
    assert "swapping kH and kW" in captured.err and "best vs runner-up" in captured.out
    top_two = [line.split()[1] for line in captured.out.splitlines()[1:3]]
    assert sorted(top_two) == ["oihw", "oiwh"]


def test_auto_without_validation_is_refused(streaks, tmp_path: Path, capsys) -> None:
    raw = tmp_path / "raw"
    assert main(["export-raw", str(streaks["model"]), str(raw)]) == 0
    assert main(["import-raw", str(raw), "--out", str(tmp_path / "x.safetensors"),
                 "--layout", "auto"]) == 2
    err = capsys.readouterr().err
    assert "needs a validation pair" in err and "guess" in err


# -- the seed's bug, end to end ----------------------------------------------------------------
def test_the_seed_bug_is_flagged_and_the_right_read_is_exact(seed_like, tmp_path: Path,
                                                             capsys) -> None:
    original, _ = load_checkpoint(seed_like["model"])
    folder = write_folder(original, tmp_path / "seed_raw",
                          lambda w: seed_device_writer(w, fixed=False))
    legacy = tmp_path / "legacy.safetensors"
    assert main(["import-raw", str(folder), "--out", str(legacy), "--layout", "seed-legacy",
                 *validate_flags(seed_like["val"])]) == 0
    err = capsys.readouterr().err
    assert "THIS MODEL LOOKS BROKEN" in err and "worse than the identity" in err
    report = tmp_path / "report.json"
    assert main(["evaluate", str(legacy), "--noisy", str(seed_like["val"][0]), "--clean",
                 str(seed_like["val"][1]), "--json", str(report), "--patch-size", "48"]) == 0
    data = json.loads(report.read_text())
    noisy = data["baselines"]["noisy"]["pooled"]
    assert data["pooled"]["corr"] < 0.1 and data["pooled"]["mse"] > 5 * noisy["mse"]
    assert any("worse than the identity" in w for w in data["warnings"])
    assert "warning:" in capsys.readouterr().err

    right = tmp_path / "right.safetensors"
    assert main(["import-raw", str(folder), "--out", str(right), "--layout", "oihw",
                 *validate_flags(seed_like["val"])]) == 0
    assert "warning" not in capsys.readouterr().err
    assert torch.equal(output(load_checkpoint(right)[0]), output(original))
    mse, corr = score_model(load_checkpoint(right)[0], load_validation(*seed_like["val"]))
    assert mse < noisy["mse"] and corr > noisy["corr"]
    # docs/weight-interop.md quotes these (seeded): legacy MSE 0.1735, r -0.071; oihw MSE
    # 0.004461, r 0.492; noisy input MSE 0.02295, r 0.394


def test_fortran_file_read_as_seed_legacy_is_a_kernel_transpose(seed_like, tmp_path) -> None:
    original, _ = load_checkpoint(seed_like["model"])
    folder = write_folder(original, tmp_path / "f", fortran_semantic_writer)
    misread = read_raw(folder, ModelConfig(), "seed-legacy")
    expected = output(original, IMAGE.transpose(2, 3)).transpose(2, 3)
    assert torch.allclose(output(misread), expected, atol=1e-6)
    assert not torch.allclose(output(misread), output(original), atol=1e-4)


# -- errors and check-weights ------------------------------------------------------------------
def test_wrong_sizes_give_clear_errors(streaks, tmp_path: Path, capsys) -> None:
    raw = tmp_path / "raw"
    assert main(["export-raw", str(streaks["model"]), str(raw)]) == 0
    w2 = raw / "conv2_weights.bin"
    w2.write_bytes(w2.read_bytes()[: 16 * 16 * 9 * 4 - 8])
    with pytest.raises(WeightFileError, match=r"conv2_weights.bin: holds 2302 float32 values, "
                                               r"expected 2304 for conv2.weight \(16×16×3×3\)"):
        read_raw(raw, ModelConfig(), "oihw")
    w2.write_bytes(b"\0" * 10)
    with pytest.raises(WeightFileError, match="10 bytes is not a whole number of float32"):
        read_raw(raw, ModelConfig(), "oihw")
    assert main(["import-raw", str(raw), "--out", str(tmp_path / "m.safetensors"),
                 "--channels", "8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cryoden: error: ") and "conv1_weights.bin: holds 144" in err
    assert "expected 72" in err and err.count("\n") == 1
    (raw / "conv3_bias.bin").unlink()
    with pytest.raises(WeightFileError, match="conv2_weights.bin"):
        read_raw(raw, ModelConfig(), "oihw")
    write_raw(load_checkpoint(streaks["model"])[0], raw)
    (raw / "conv4_weights.bin").write_bytes(b"")
    with pytest.raises(WeightFileError, match="more layers than the model's depth 3"):
        read_raw(raw, ModelConfig(), "oihw")
    (raw / "conv4_weights.bin").unlink()
    (raw / "conv3_bias.bin").unlink()
    with pytest.raises(WeightFileError, match=r"conv3_bias.bin: missing \(conv3.bias"):
        read_raw(raw, ModelConfig(), "oihw")


def test_bad_layout_names_are_refused(streaks, tmp_path: Path, capsys) -> None:
    assert main(["export-raw", str(streaks["model"]), str(tmp_path / "r"), "--layout",
                 "auto"]) == 2
    assert "only for reading" in capsys.readouterr().err
    assert main(["export-raw", str(streaks["model"]), str(tmp_path / "r"), "--layout",
                 "ooiw"]) == 2
    assert "unknown layout 'ooiw'" in capsys.readouterr().err


def test_check_weights_table(streaks, capsys) -> None:
    assert main(["check-weights", str(streaks["model"])]) == 0
    table = capsys.readouterr().out
    for name in ("safetensors", "oihw", "fortran", "hwio", "seed-legacy", "all 24 axis orders"):
        assert any(name in line and line.endswith("PASS") for line in table.splitlines()), name
    assert "check-weights: 6/6 round trips identical" in table
    controls = [line for line in table.splitlines() if line.startswith("raw control")]
    assert len(controls) == 2 and all(line.endswith("PASS") for line in controls)


def test_check_weights_catches_a_broken_reader(streaks, monkeypatch) -> None:
    from napari_cryoden.interop import raw as interop

    model, ckpt = load_checkpoint(streaks["model"])
    real = interop.from_layout
    monkeypatch.setattr(interop, "from_layout",  # a reader that mixes up h and w for fortran
                        lambda b, s, a: real(b, s, "hwio" if a == "whio" else a))
    rows = {r.layout: r for r in check_roundtrips(model, ckpt.config)}
    assert not rows["fortran"].passed and rows["oihw"].passed and rows["hwio"].passed


# -- the Denoise widget's import, headless -----------------------------------------------------
def test_import_raw_folder_reads_the_sidecar_layout_or_ranks_on_a_pair(streaks,
                                                                        tmp_path: Path) -> None:
    original, _ = load_checkpoint(streaks["model"])
    folder = tmp_path / "raw"
    export_raw(streaks["model"], folder, "fortran")
    explicit = tmp_path / "explicit.safetensors"
    assert import_raw_folder(folder, "fortran", explicit) == "whio"
    pair = load_validation(*streaks["val"])[0]
    ranked = tmp_path / "auto.safetensors"
    assert import_raw_folder(folder, "auto", ranked, pair) == "whio"
    for path in (explicit, ranked):
        imported, ckpt = load_checkpoint(path)
        assert torch.equal(output(imported), output(original))
        assert ckpt.normalization == "meanstd"  # from the sidecar
    with pytest.raises(InputError, match="noisy/clean pair"):
        import_raw_folder(folder, "auto", tmp_path / "none.safetensors")
