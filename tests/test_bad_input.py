"""A corpus of bad files, one per case of issue 6, each refused with one line naming the file.

Library calls raise :class:`InputError` or :class:`WeightFileError` (both :class:`CryodenError`);
the CLI exits 2 with ``cryoden: error: …`` and no traceback. The security cases check that a
crafted pickle, wherever it is handed to the package, is refused and never executed.
"""

from __future__ import annotations

import builtins
import json
import os
import pickle
import struct
import tracemalloc
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import torch
from safetensors.torch import save as st_save

from napari_cryoden._reader import read_mrc
from napari_cryoden.cli.main import main
from napari_cryoden.config.sections import Config
from napari_cryoden.data.normalize import fit_normalizer
from napari_cryoden.data.pairs import find_pairs
from napari_cryoden.data.patches import index_patches
from napari_cryoden.errors import CryodenError, InputError, WeightFileError
from napari_cryoden.interop.auto import import_raw
from napari_cryoden.interop.raw import read_sidecar
from napari_cryoden.io.images import MicrographCache, list_images, read_image, read_info
from napari_cryoden.models.checkpoint import load_checkpoint, load_extra_tensors, save_checkpoint
from napari_cryoden.models.nets import build_model

_FIELD = {"nx": 0, "ny": 4, "nz": 8, "mode": 12, "ispg": 88, "nsymbt": 92}


def _mrc(path: Path, data: np.ndarray, stack: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        if stack:
            mrc.set_image_stack()
        mrc.voxel_size = 1.0
    return path


def _patch_header(path: Path, **fields: int) -> Path:
    raw = bytearray(path.read_bytes())
    for name, value in fields.items():
        struct.pack_into("<i", raw, _FIELD[name], value)
    path.write_bytes(bytes(raw))
    return path


def _refused(call, path: Path, problem: str, error: type = InputError) -> str:
    """``call(path)`` raises ``error``: one line, starting with the path, naming ``problem``."""
    with pytest.raises(error) as caught:
        call(path)
    message = str(caught.value)
    assert isinstance(caught.value, CryodenError)
    assert message.startswith(f"{path}: "), message
    assert problem in message and "\n" not in message, message
    return message


def _every_reader(path: Path, problem: str) -> None:
    for read in (read_info, read_image,
                 lambda p: MicrographCache().read_patch(p, 0, 0, 0, 1, 1), read_mrc):
        _refused(read, path, problem)


def _image(seed: int = 0, shape: tuple[int, ...] = (32, 32)) -> np.ndarray:
    return np.random.default_rng(seed).normal(1.0, 0.2, shape).astype(np.float32)


# -- MRC headers and sizes --------------------------------------------------------------------
def test_truncated_mrc(tmp_path: Path) -> None:
    path = _mrc(tmp_path / "cut.mrc", _image())
    path.write_bytes(path.read_bytes()[:1024 + 100])
    _every_reader(path, "truncated MRC file (1124 bytes, header says 5120 for 1x32x32 mode 2)")


def test_header_dimensions_disagree_with_the_file_size(tmp_path: Path) -> None:
    short = _patch_header(_mrc(tmp_path / "short.mrc", _image()), ny=40)
    _every_reader(short, "truncated MRC file")
    longer = _patch_header(_mrc(tmp_path / "long.mrcs", _image(shape=(3, 32, 32)), True), nz=2)
    _every_reader(longer, "MRC header and file size disagree (13312 bytes, header says 9216 "
                          "for 2x32x32 mode 2: 1.0 slices too many)")
    sub_slice = _mrc(tmp_path / "padded.mrc", _image())  # a few trailing bytes are tolerated
    sub_slice.write_bytes(sub_slice.read_bytes() + bytes(12))
    assert read_image(sub_slice)[0].shape == (32, 32)


@pytest.mark.parametrize("field", ["nx", "nsymbt"])
def test_absurd_declared_sizes_allocate_nothing(tmp_path: Path, field: str) -> None:
    path = _mrc(tmp_path / "absurd.mrc", _image(shape=(2, 8, 8)))
    huge = 2**31 - 1
    _patch_header(path, **{field: huge, **({"ny": huge, "nz": huge} if field == "nx" else {})})
    tracemalloc.start()
    try:
        _every_reader(path, "truncated MRC file")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"reading a {huge}-sized header allocated {peak} bytes"


@pytest.mark.parametrize(("fields", "problem"), [
    ({"mode": 3}, "MRC mode 3 (complex/4-bit) is not supported"),
    ({"mode": 4}, "MRC mode 4 (complex/4-bit) is not supported"),
    ({"mode": 101}, "MRC mode 101 (complex/4-bit) is not supported"),
    ({"mode": 7}, "unknown MRC mode 7 (readable modes: 0, 1, 2, 6, 12)"),
    ({"nx": 0}, "corrupt MRC header: size 0x32x1 (x, y, z must each be >= 1)"),
    ({"nz": -4}, "corrupt MRC header: size 32x32x-4"),
    ({"nsymbt": -8}, "corrupt MRC header: extended header size -8 < 0"),
    ({"ispg": 401}, "MRC volume stacks (4D, space group 401) are not supported"),
])
def test_exotic_or_corrupt_header_fields(tmp_path: Path, fields: dict, problem: str) -> None:
    path = _patch_header(_mrc(tmp_path / "odd.mrc", _image()), **fields)
    _every_reader(path, problem)


def test_blank_machine_stamp_is_read_by_the_byte_order_that_fits(tmp_path: Path) -> None:
    data = np.arange(6 * 5, dtype=">i2").reshape(6, 5)
    path = _mrc(tmp_path / "old.mrc", data)
    raw = bytearray(path.read_bytes())
    raw[212:216] = bytes(4)  # machine stamp 0 0 0 0, as some old writers leave it
    path.write_bytes(bytes(raw))
    np.testing.assert_array_equal(read_image(path)[0], data.astype(np.float32))


def test_not_an_mrc_file_and_wrong_suffixes(tmp_path: Path) -> None:
    (tmp_path / "notes.mrc").write_text("just some text, long enough " * 50)
    _every_reader(tmp_path / "notes.mrc", "not an MRC file (no 'MAP' ID in the header)")
    (tmp_path / "tiny.mrc").write_bytes(b"MRC")
    _every_reader(tmp_path / "tiny.mrc", "too short for an MRC header (3 of 1024 bytes)")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    _refused(read_info, tmp_path / "image.png", "unsupported file type '.png'")


# -- pixels -----------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Data array contains NaN:RuntimeWarning")
def test_nan_and_inf_pixels(tmp_path: Path) -> None:
    data = _image(shape=(3, 16, 16))
    data[1, 4, 6], data[2, 0, 0] = np.nan, np.inf
    path = _mrc(tmp_path / "holes.mrcs", data, stack=True)
    _refused(read_image, path, "2 NaN or infinite pixel(s), the first in slice 1 at y=4, x=6")
    cache = MicrographCache()
    assert cache.read_patch(path, 1, 8, 8, 4, 4).shape == (4, 4)  # a clean patch reads fine
    _refused(lambda p: cache.read_patch(p, 1, 2, 4, 4, 4), path,
             "NaN or infinite pixels in slice 1, rows 2-5, columns 4-7")
    with pytest.raises(InputError, match="holes.mrcs slice 1: contains NaN"):
        fit_normalizer(data[1], "meanstd", name=f"{path} slice 1")


@pytest.mark.parametrize("mode", ["meanstd", "percentile"])
def test_constant_and_nearly_constant_images(tmp_path: Path, mode: str) -> None:
    name = str(tmp_path / "flat.mrc")
    with pytest.raises(InputError, match=r"flat.mrc: constant image: cannot normalise"):
        fit_normalizer(np.full((16, 16), 7.0, np.float32), mode, name=name)
    ulp = np.full((16, 16), 1e4, np.float32)
    ulp[::2] = np.nextafter(np.float32(1e4), np.float32(2e4))  # differs only by rounding
    with pytest.raises(InputError, match=r"flat.mrc: nearly constant image"):
        fit_normalizer(ulp, mode, name=name)
    assert fit_normalizer(_image(), mode, name=name).scale > 0
    assert fit_normalizer(np.full((4, 4), 3.0), "none").scale == 1.0  # no statistics needed


def test_constant_micrograph_is_named_when_denoising(tmp_path: Path) -> None:
    from napari_cryoden.inference.denoiser import denoise_file

    path = _mrc(tmp_path / "blank.mrc", np.zeros((24, 24), np.float32))
    with pytest.raises(InputError, match=r"blank.mrc.*constant image"):
        denoise_file(build_model(seed=0), path, tmp_path / "out.mrc", normalization="meanstd")
    assert not (tmp_path / "out.mrc").exists()


# -- folders and pairs ------------------------------------------------------------------------
def test_pairs_of_different_shapes(tmp_path: Path) -> None:
    noisy = _mrc(tmp_path / "noisy" / "a.mrc", _image(shape=(32, 32)))
    clean = _mrc(tmp_path / "clean" / "a.mrc", _image(shape=(32, 40)))
    with pytest.raises(InputError, match=r"noisy/a.mrc \(32x32\) and .*clean/a.mrc \(40x32\) "
                                         r"differ in shape"):
        index_patches(find_pairs(noisy.parent, clean.parent), 16)


def test_names_that_do_not_pair_and_empty_or_missing_folders(tmp_path: Path) -> None:
    _mrc(tmp_path / "noisy" / "mic_001.mrc", _image())
    _mrc(tmp_path / "clean" / "mic_001_clean.mrc", _image())
    with pytest.raises(InputError, match=r"do not pair by name; only in .*noisy: mic_001.mrc; "
                                         r"only in .*clean: mic_001_clean.mrc"):
        find_pairs(tmp_path / "noisy", tmp_path / "clean")
    (tmp_path / "empty").mkdir()
    _refused(list_images, tmp_path / "empty", "no micrographs found")
    _refused(list_images, tmp_path / "nowhere", "folder not found")
    _refused(list_images, tmp_path / "noisy" / "mic_001.mrc", "not a folder")


def test_image_smaller_than_the_patch(tmp_path: Path) -> None:
    noisy = _mrc(tmp_path / "noisy" / "small.mrc", _image(shape=(20, 30)))
    clean = _mrc(tmp_path / "clean" / "small.mrc", _image(shape=(20, 30)))
    with pytest.raises(InputError, match=r"small.mrc: 30x20 is smaller than the patch size 32"):
        index_patches([(noisy, clean)], 32)


def test_volumes_are_read_as_z_slices_and_4d_or_2d_only_inputs_refused(tmp_path: Path) -> None:
    volume = _mrc(tmp_path / "map.mrc", _image(shape=(4, 16, 16)))  # mrcfile: space group 1
    info = read_info(volume)
    assert (info.kind, info.shape) == ("volume", (4, 16, 16))
    assert read_info(_mrc(tmp_path / "s.mrcs", _image(shape=(2, 8, 8)), True)).kind == "stack"
    assert read_info(_mrc(tmp_path / "one.mrc", _image())).kind == "image"
    with pytest.raises(InputError, match=r"map.mrc: expected a 2D micrograph, got shape "
                                         r"\(4, 16, 16\)"):
        fit_normalizer(read_image(volume)[0], "meanstd", name=str(volume))
    flat = _mrc(tmp_path / "flat.mrc", _image(shape=(16, 16)))
    with pytest.raises(InputError, match=r"map.mrc \(4 slices of 16x16\) and .*flat.mrc \(16x16\) "
                                         r"differ in shape"):
        index_patches([(volume, flat)], 8)


def test_missing_unreadable_and_folder_paths(tmp_path: Path, monkeypatch) -> None:
    _every_reader(tmp_path / "gone.mrc", "file not found")
    (tmp_path / "dir.mrc").mkdir()
    _refused(read_info, tmp_path / "dir.mrc", "is a folder, not a micrograph file")
    _refused(load_checkpoint, tmp_path / "gone.safetensors", "no such weight file",
             WeightFileError)
    _refused(load_checkpoint, tmp_path / "dir.mrc", "is a folder", WeightFileError)
    path = _mrc(tmp_path / "locked.mrc", _image())
    real_open = builtins.open

    def denied(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(builtins, "open", denied)
        _refused(read_info, path, "permission denied (not readable)")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root reads files whatever their mode, so chmod 000 cannot stop it")
def test_chmod_000_files_are_refused_as_unreadable(tmp_path: Path) -> None:
    path = _mrc(tmp_path / "locked.mrc", _image())
    weights = save_checkpoint(tmp_path / "locked.safetensors", build_model(seed=0), Config())
    for file in (path, weights):
        file.chmod(0)
    try:
        _refused(read_image, path, "permission denied")
        _refused(load_checkpoint, weights, "cannot read weight file (Permission denied)",
                 WeightFileError)
    finally:
        for file in (path, weights):
            file.chmod(0o644)


# -- weight files -----------------------------------------------------------------------------
def _meta(**changes: object) -> dict[str, str]:
    meta = {"format": "napari-cryoden-weights", "format_version": 1, "config": Config().to_dict(),
            "normalization": "meanstd", **changes}
    return {"cryoden": json.dumps(meta)}


def _weights(path: Path, tensors: dict[str, torch.Tensor] | None = None,
             metadata: dict[str, str] | None = None) -> Path:
    if tensors is None:
        tensors = {k: v.clone() for k, v in build_model(seed=0).state_dict().items()}
    path.write_bytes(st_save(tensors, metadata=_meta() if metadata is None else metadata))
    return path


@pytest.mark.parametrize(("change", "problem"), [
    (lambda t: {k.replace("conv", "layer"): v for k, v in t.items()},
     "tensor names do not fit the model: missing conv1.weight, conv1.bias, conv2.weight, "
     "conv2.bias (+2 more); unexpected layer1.bias"),
    (lambda t: {**t, "conv2.weight": t["conv2.weight"][:, :8].contiguous()},
     "conv2.weight has shape (16, 8, 3, 3), expected (16, 16, 3, 3) (out, in, kH, kW)"),
    (lambda t: {**t, "conv1.bias": t["conv1.bias"].to(torch.int32)},
     "conv1.bias has dtype torch.int32, expected a float type"),
    (lambda t: {**t, "conv3.bias": torch.tensor([float("nan")])},
     "conv3.bias contains NaN or Inf values"),
    (lambda t: {**t, "conv1.bias": t["conv1.bias"].double() * 1e300},
     "conv1.bias contains NaN or Inf values (as float32)"),
    (lambda t: {**t, "conv2.weight\n": t["conv2.weight"].clone()},
     "unexpected conv2.weight\\n"),
])
def test_weight_tensors_that_do_not_fit(tmp_path: Path, change, problem: str) -> None:
    tensors = {k: v.clone() for k, v in build_model(seed=0).state_dict().items()}
    _refused(load_checkpoint, _weights(tmp_path / "w.safetensors", change(tensors)), problem,
             WeightFileError)


def test_half_precision_weights_load(tmp_path: Path) -> None:
    tensors = {k: v.to(torch.bfloat16) for k, v in build_model(seed=0).state_dict().items()}
    model, _ = load_checkpoint(_weights(tmp_path / "bf16.safetensors", tensors))
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize(("metadata", "problem"), [
    ({}, "no napari-cryoden metadata (not written by cryoden?)"),
    ({"cryoden": "{not json"}, "corrupt metadata JSON (Expecting property name"),
    ({"cryoden": "[" * 100_000 + "]" * 100_000}, "corrupt metadata JSON (nested too deeply)"),
    ({"cryoden": json.dumps({"format": "something-else"})}, "metadata is not of format"),
    (_meta(config={"model": {"depth": "three"}}), "bad config in metadata: model.depth"),
    (_meta(config={"model": {"depth": 10**9}}), "the metadata's model has 1000000000 layers "
                                                "but the file holds 3 weight tensors"),
    (_meta(epoch="5; rm -rf /"), "bad metadata: epoch '5; rm -rf /' is not a whole number"),
    (_meta(normalization="__import__('os')"), "bad metadata: normalization \"__import__('os')\""),
])
def test_missing_or_corrupt_metadata(tmp_path: Path, metadata: dict, problem: str) -> None:
    path = _weights(tmp_path / "meta.safetensors", metadata=metadata)
    _refused(load_checkpoint, path, problem, WeightFileError)


def test_optimizer_tensor_names_are_checked_for_resume(tmp_path: Path) -> None:
    extra = {"optim.0.exp_avg": torch.zeros(3)}
    good = save_checkpoint(tmp_path / "good.safetensors", build_model(seed=0), Config(),
                           extra_tensors=extra)
    assert set(load_extra_tensors(good)) == {"optim.0.exp_avg"}
    tensors = {**build_model(seed=0).state_dict(), "optim.x": torch.zeros(1)}
    path = _weights(tmp_path / "odd.safetensors", tensors)
    _refused(load_extra_tensors, path, "optimizer tensor name 'optim.x' is not "
                                       "optim.<index>.<key>", WeightFileError)


# -- security: nothing is ever unpickled ------------------------------------------------------
class _Payload:
    """Unpickling this creates ``marker``: what a malicious 'model' shared online would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def no_unpickling(monkeypatch):
    """Any call of the unpicklers fails the test, whether or not a marker would appear."""
    def forbidden(*args, **kwargs):
        raise AssertionError("a load path tried to unpickle")

    for owner, name in ((pickle, "load"), (pickle, "loads"), (torch, "load"),
                        (pickle, "Unpickler")):
        monkeypatch.setattr(owner, name, forbidden)


def test_the_payload_is_live(tmp_path: Path) -> None:
    marker = tmp_path / "live"
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()  # so the marker's absence below means something


def test_crafted_pickles_are_refused_on_every_load_path(tmp_path: Path, capsys,
                                                        no_unpickling) -> None:
    marker = tmp_path / "pwned"
    raw_pickle = pickle.dumps(_Payload(marker))
    evil_st = tmp_path / "evil.safetensors"
    evil_st.write_bytes(raw_pickle)
    torch.save({"conv1.weight": _Payload(marker)}, tmp_path / "evil.pt")
    evil_pt_renamed = tmp_path / "evil_pt.safetensors"
    evil_pt_renamed.write_bytes((tmp_path / "evil.pt").read_bytes())
    hint = "not a safetensors weight file (it looks like a pickle/torch .pt file)"
    for path in (evil_st, evil_pt_renamed, tmp_path / "evil.pt"):
        _refused(load_checkpoint, path, hint, WeightFileError)
        _refused(load_extra_tensors, path, hint, WeightFileError)

    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    (raw_dir / "cryoden_raw.json").write_bytes(raw_pickle)
    with pytest.raises(WeightFileError, match="cryoden_raw.json: not valid JSON"):
        read_sidecar(raw_dir)
    (raw_dir / "cryoden_raw.json").unlink()
    for k in (1, 2, 3):
        (raw_dir / f"conv{k}_weights.bin").write_bytes(raw_pickle)
        (raw_dir / f"conv{k}_bias.bin").write_bytes(raw_pickle)
    with pytest.raises(WeightFileError, match="conv1_weights.bin"):
        import_raw(raw_dir, tmp_path / "imported.safetensors")

    (tmp_path / "evil.mrc").write_bytes(raw_pickle + bytes(2048))
    _every_reader(tmp_path / "evil.mrc", "not an MRC file")
    out = tmp_path / "out"
    for argv in (["denoise", str(evil_st), str(tmp_path / "evil.mrc"), "--out", str(out)],
                 ["check-weights", str(evil_pt_renamed)],
                 ["export-raw", str(tmp_path / "evil.pt"), str(out)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("cryoden: error: ") and hint in err and err.count("\n") == 1
    assert not marker.exists()


@pytest.mark.parametrize(("changes", "problem"), [
    ({"weights_pattern": "../../outside/conv{k}.bin"}, "must contain {k} (the layer number) and "
                                                       "be a plain file name, no folders"),
    ({"bias_pattern": "b{k}{k:>999999999}"}, "be a plain file name"),
    ({"weights_pattern": "{k.__class__.__mro__}"}, "be a plain file name"),
    ({"layout": ["o", "i", "h", "w"]}, "'layout' must be a str, got ['o', 'i', 'h', 'w']"),
    ({"model": 16}, "'model' must be a dict, got 16"),
])
def test_raw_sidecar_metadata_is_data_never_paths_or_code(tmp_path: Path, changes: dict,
                                                          problem: str) -> None:
    from napari_cryoden.interop.raw import export_raw

    model = save_checkpoint(tmp_path / "m.safetensors", build_model(seed=0), Config())
    export_raw(model, tmp_path / "raw")
    sidecar = tmp_path / "raw" / "cryoden_raw.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), **changes}))
    tracemalloc.start()
    try:
        with pytest.raises(CryodenError) as caught:
            import_raw(tmp_path / "raw", tmp_path / "imported.safetensors")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert problem in str(caught.value) and peak < 2**24
    assert not (tmp_path / "imported.safetensors").exists()


# -- the CLI: exit 2, one line, no traceback --------------------------------------------------
def _cli_error(argv: list[str], capsys) -> str:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert code == 2, captured
    err = captured.err.strip()
    assert err.startswith("cryoden: error: ") and len(err.splitlines()) == 1, err
    assert "Traceback" not in captured.err + captured.out
    return err


def test_cli_denoise_a_truncated_mrc(tmp_path: Path, capsys) -> None:
    model = save_checkpoint(tmp_path / "m.safetensors", build_model(seed=0), Config())
    mic = _mrc(tmp_path / "cut.mrc", _image())
    mic.write_bytes(mic.read_bytes()[:3000])
    err = _cli_error(["denoise", model, mic, "--out", tmp_path / "out"], capsys)
    assert f"{mic}: truncated MRC file (3000 bytes" in err
    assert not list((tmp_path / "out").glob("*.mrc"))


def test_cli_evaluate_with_mismatched_pairs(tmp_path: Path, capsys) -> None:
    model = save_checkpoint(tmp_path / "m.safetensors", build_model(seed=0), Config())
    _mrc(tmp_path / "noisy" / "a.mrc", _image())
    _mrc(tmp_path / "clean" / "b.mrc", _image())
    report = tmp_path / "r.json"
    err = _cli_error(["evaluate", model, "--noisy", tmp_path / "noisy", "--clean",
                      tmp_path / "clean", "--json", report], capsys)
    assert "noisy and clean files do not pair by name" in err and "a.mrc" in err
    _mrc(tmp_path / "clean" / "a.mrc", _image(shape=(32, 40)))
    (tmp_path / "clean" / "b.mrc").unlink()
    err = _cli_error(["evaluate", model, "--noisy", tmp_path / "noisy", "--clean",
                      tmp_path / "clean", "--json", report], capsys)
    assert "a.mrc: shape (32, 32) differs from" in err
    assert not report.exists()


def test_cli_denoise_with_a_pickle_weight_file(tmp_path: Path, capsys) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(pickle.dumps({"conv1.weight": np.zeros(3)}))
    mic = _mrc(tmp_path / "a.mrc", _image())
    err = _cli_error(["denoise", weights, mic, "--out", tmp_path / "out"], capsys)
    assert f"{weights}: not a safetensors weight file (it looks like a pickle" in err


def test_cli_train_on_empty_folders(tmp_path: Path, capsys) -> None:
    (tmp_path / "noisy").mkdir()
    (tmp_path / "clean").mkdir()
    err = _cli_error(["train", "--noisy", tmp_path / "noisy", "--clean", tmp_path / "clean",
                      "--out", tmp_path / "run"], capsys)
    assert f"{tmp_path / 'noisy'}: no micrographs found" in err
