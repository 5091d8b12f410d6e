"""The packed float16 patch store and its loader: values, checks, atomicity, split, streaming."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from conftest import write_pairs
from napari_cryoden.cli.main import main
from napari_cryoden.data import _packed_ring, packed
from napari_cryoden.data.packed import PackedStore, pack
from napari_cryoden.data.packed_stream import PackedStream
from napari_cryoden.data.pairs import find_pairs, split_pairs
from napari_cryoden.data.patches import PatchRef
from napari_cryoden.data.stream import PatchStream
from napari_cryoden.errors import InputError
from napari_cryoden.io.images import write_mrc

P = 64  # 4 micrographs of 128² → 16 patches


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, PackedStore]:
    root = tmp_path_factory.mktemp("packed")
    noisy, clean = write_pairs(root, 4, 128, seed=1)
    return noisy, clean, pack(noisy, clean, root / "store", patch_size=P)


@pytest.fixture(scope="module")
def clean_only(tmp_path_factory: pytest.TempPathFactory) -> PackedStore:
    """Constant clean micrographs at 0.5, 1, 2, 4 (pixel size 1.5 Å) and their noise model."""
    root = tmp_path_factory.mktemp("clean_only")
    (root / "clean").mkdir()
    for i, level in enumerate((0.5, 1.0, 2.0, 4.0)):
        write_mrc(root / "clean" / f"m{i}.mrc", np.full((128, 128), level, np.float32), 1.5)
    return pack(None, root / "clean", root / "store", patch_size=P,
                noise={"dose": 10.0, "read_noise": 0.1})


def _stream(store: PackedStore, **kw: object) -> PackedStream:
    options: dict = dict(batch_size=5, shuffle=True, seed=4, reader_threads=2)
    return PackedStream(store, **{**options, **kw})


def _which(store: PackedStore, batches: list) -> list[int]:
    """The store index of every (whole, float16) clean sample, in stream order."""
    lookup = {store.patch(i).tobytes(): i for i in range(store.count)}
    return [lookup[c.numpy().tobytes()] for b in batches for c in b.clean[:, 0]]


def test_round_trip_equals_patchstream_at_float16(data) -> None:
    noisy_dir, clean_dir, store = data
    reference = list(PatchStream(find_pairs(noisy_dir, clean_dir), patch_size=P,
                                 normalization="meanstd", batch_size=16, shuffle=False, seed=0))
    (ref,) = reference
    assert store.count == 16 and store.arrays == ("noisy", "clean")
    for name in ("noisy", "clean"):
        expected = getattr(ref, name)[:, 0].numpy().astype(np.float16)
        np.testing.assert_array_equal(store.array(name), expected)
    np.testing.assert_array_equal(store.affine[:, 0], ref.offset.numpy())
    np.testing.assert_array_equal(store.affine[:, 1], ref.scale.numpy())
    (batch,) = list(_stream(store, batch_size=16, shuffle=False))
    assert batch.noisy.dtype == torch.float32 and batch.noisy.shape == (16, 1, P, P)
    np.testing.assert_allclose(batch.noisy.numpy(), ref.noisy.numpy(), atol=2e-3, rtol=1e-3)
    assert torch.equal(batch.scale, ref.scale) and torch.equal(batch.offset, ref.offset)


def test_stacks_are_normalised_per_slice(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    for folder in ("noisy", "clean"):
        (tmp_path / folder).mkdir()
    clean = rng.random((2, 64, 64), dtype=np.float32) * np.array([1, 10], np.float32)[:, None, None]
    write_mrc(tmp_path / "noisy/s.mrcs", clean + rng.random((2, 64, 64), dtype=np.float32), 1.0)
    write_mrc(tmp_path / "clean/s.mrcs", clean, 1.0)
    store = pack(tmp_path / "noisy", tmp_path / "clean", tmp_path / "store", patch_size=32)
    assert [(s["z"], Path(s["clean"]).name) for s in store.sources] == [(0, "s.mrcs"),
                                                                        (1, "s.mrcs")]
    (ref,) = PatchStream(find_pairs(tmp_path / "noisy", tmp_path / "clean"), patch_size=32,
                         normalization="meanstd", batch_size=8, shuffle=False, seed=0)
    np.testing.assert_array_equal(store.array("clean"), ref.clean[:, 0].numpy().astype(np.float16))
    assert store.patch_source.tolist() == [0] * 4 + [1] * 4
    assert store.affine[0, 1] != store.affine[4, 1]


def _corrupt_json(store: Path) -> Path:
    (store / "index.json").write_text("{not json")
    return store / "index.json"


def _truncate(store: Path) -> Path:
    with open(store / "clean.f16", "r+b") as fh:
        fh.truncate(100)
    return store / "clean.f16"


def _edit(change):
    def edit(store: Path) -> Path:
        index = json.loads((store / "index.json").read_text())
        change(index)
        (store / "index.json").write_text(json.dumps(index))
        return store / "index.json"
    return edit


@pytest.mark.parametrize("damage, words", [
    (_corrupt_json, "not valid JSON"),
    (_truncate, "truncated"),
    (_edit(lambda i: i.pop("patches")), "missing key 'patches'"),
    (_edit(lambda i: i.update(version=2)), "version 2"),
    (_edit(lambda i: i.update(count="16")), "'count' has the wrong type"),
    (_edit(lambda i: i["patches"]["source"].__setitem__(0, 99)), "past the 4 sources"),
])
def test_damaged_store_is_refused_naming_the_file(data, tmp_path: Path, damage, words) -> None:
    import shutil

    store = tmp_path / "store"
    shutil.copytree(data[2].path, store)
    bad_file = damage(store)
    with pytest.raises(InputError, match=words) as info:
        PackedStore.open(store)
    message = str(info.value)
    assert message.startswith(str(bad_file)) and "\n" not in message


def test_failed_pack_leaves_nothing_and_keeps_the_old_store(data, tmp_path, monkeypatch) -> None:
    noisy_dir, clean_dir, _ = data
    calls: list[int] = []
    real = packed.StoreWriter.add

    def fail_after_first(*args, **kwargs):
        if calls:
            raise OSError(28, "No space left on device")
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(packed.StoreWriter, "add", fail_after_first)
    with pytest.raises(OSError):
        pack(noisy_dir, clean_dir, tmp_path / "new", patch_size=P)
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary folder

    monkeypatch.setattr(packed.StoreWriter, "add", real)
    old = pack(noisy_dir, clean_dir, tmp_path / "store", patch_size=P)
    monkeypatch.setattr(packed.StoreWriter, "add", fail_after_first)
    calls.clear()
    with pytest.raises(OSError):
        pack(noisy_dir, clean_dir, tmp_path / "store", patch_size=32, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["store"]
    assert PackedStore.open(old.path).patch_size == P

    monkeypatch.setattr(packed.StoreWriter, "add", real)
    with pytest.raises(InputError, match="already exists"):
        pack(noisy_dir, clean_dir, tmp_path / "store", patch_size=32)
    assert pack(noisy_dir, clean_dir, tmp_path / "store", patch_size=32,
                overwrite=True).count == 64
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def test_float16_overflow_names_the_file(tmp_path: Path) -> None:
    for folder in ("noisy", "clean"):
        (tmp_path / folder).mkdir()
    big = np.random.default_rng(0).uniform(1e5, 2e5, (64, 64)).astype(np.float32)
    write_mrc(tmp_path / "noisy/a.mrc", big, 1.0)
    write_mrc(tmp_path / "clean/a.mrc", big, 1.0)
    with pytest.raises(InputError, match="float16") as info:
        pack(tmp_path / "noisy", tmp_path / "clean", tmp_path / "store", patch_size=32,
             normalization="none")
    assert str(info.value).startswith(str(tmp_path / "noisy/a.mrc"))
    assert not (tmp_path / "store").exists()


def test_split_holds_out_whole_files_like_split_pairs(data) -> None:
    noisy_dir, clean_dir, store = data
    train, val = store.split(0.25, seed=7)
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(16))
    assert set(store.patch_source[train]).isdisjoint(store.patch_source[val])
    assert len(set(store.patch_source[val])) == 1
    (val_pair,) = split_pairs(find_pairs(noisy_dir, clean_dir), 0.25, seed=7)[1]
    assert {store.sources[s]["noisy"] for s in store.patch_source[val]} == {str(val_pair[0])}
    again = store.split(0.25, seed=7)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], val)
    assert len(store.split(0.0, seed=7)[1]) == 0


def test_each_patch_once_per_epoch_with_crops_cut_from_it(data) -> None:
    store = data[2]
    for epoch in (0, 1):
        stream = _stream(store, crop=40, epoch=epoch)
        batches = list(stream)
        assert len(batches) == len(stream) == 4 and stream.sample_size == 40
        assert [b.noisy.shape[0] for b in batches] == [5, 5, 5, 1]
        samples = [c for b in batches for c in b.clean[:, 0].numpy()]
        windows = sliding_window_view(store.array("clean").astype(np.float32), (40, 40),
                                      axis=(1, 2))
        found = [int(np.flatnonzero((windows == s).all(axis=(-2, -1)).any(axis=(1, 2)))[0])
                 for s in samples]
        assert sorted(found) == list(range(16))
    first, second = (_which(store, list(_stream(store, dtype=torch.float16, epoch=e)))
                     for e in (0, 1))
    assert sorted(first) == sorted(second) == list(range(16)) and first != second


@pytest.mark.parametrize("shuffle", [True, False])
def test_ranks_are_disjoint_and_cover_the_epoch(data, shuffle: bool) -> None:
    store = data[2]
    indices = np.arange(2, 16)  # 14 patches over 3 ranks
    streams = [_stream(store, indices=indices, shuffle=shuffle, rank=r, world_size=3,
                       dtype=torch.float16) for r in range(3)]
    seen = [_which(store, list(s)) for s in streams]
    assert sum(len(s) for s in seen) == streams[0].n_patches_all_ranks
    assert len(set().union(*map(set, seen))) == sum(len(s) for s in seen)
    assert set().union(*map(set, seen)) <= set(indices.tolist())
    if shuffle:
        assert [len(s) for s in seen] == [4, 4, 4] and streams[0].n_dropped == 2
        assert len({len(s) for s in streams}) == 1
    else:
        assert sorted(sum(seen, [])) == indices.tolist()
    reference = PatchStream([], patch_size=P, batch_size=5, shuffle=shuffle, seed=0,
                            patches=[PatchRef(0, 0, 0, 0)] * 14, rank=1, world_size=3)
    assert (streams[1].n_patches, streams[1].n_dropped, len(streams[1])) == (
        reference.n_patches, reference.n_dropped, len(reference))


@pytest.mark.parametrize("store_name", ["data", "clean_only"])
def test_same_batches_whatever_the_reader_threads(request, store_name: str) -> None:
    fixture = request.getfixturevalue(store_name)
    store = fixture[2] if store_name == "data" else fixture
    runs = [list(_stream(store, crop=48, reader_threads=n, epoch=3)) for n in (1, 4)]
    for a, b in zip(*runs, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    other = list(_stream(store, crop=48, reader_threads=1, epoch=4))
    assert not torch.equal(other[0].noisy, runs[0][0].noisy)


@pytest.mark.parametrize("store_name", ["data", "clean_only"])
def test_same_batches_whatever_the_read_ahead(request, store_name: str, monkeypatch) -> None:
    """A ring of 1, 2 or 4 whole-batch buffers changes memory and overlap, never the batches."""
    fixture = request.getfixturevalue(store_name)
    store = fixture[2] if store_name == "data" else fixture
    runs = []
    for depth in (1, 2, 4):
        monkeypatch.setattr(_packed_ring, "RING", depth)
        stream = _stream(store, crop=48, reader_threads=2, epoch=3)
        assert stream.host_bytes == depth * 5 * (len(store.arrays) * store.patch_bytes + 16)
        runs.append(list(stream))
    for run in runs[1:]:
        for a, b in zip(runs[0], run, strict=True):
            assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_ring_holds_four_small_batches_and_two_of_1024_px(monkeypatch) -> None:
    """The read-ahead fits 128 MiB of host buffers, keeping two at least and four at most: a
    training batch of 32 float16 1024² patches (64 MiB) gets 2 buffers (128 MiB, not 256)."""
    monkeypatch.setattr(_packed_ring, "RING", None)
    mib = 1 << 20
    assert _packed_ring.ring_depth(32 * (1024 * 1024 * 2 + 16)) == 2  # clean store
    assert _packed_ring.ring_depth(32 * (2 * 1024 * 1024 * 2 + 16)) == 2  # pair store
    assert _packed_ring.ring_depth(40 * mib) == 3
    assert _packed_ring.ring_depth(32 * (256 * 256 * 2 + 16)) == 4  # 4 MiB batches
    assert _packed_ring.ring_depth(1) == 4
    monkeypatch.setattr(_packed_ring, "RING", 1)
    assert _packed_ring.ring_depth(32 * (1024 * 1024 * 2 + 16)) == 1


def test_clean_only_noise_has_the_shot_and_read_noise_variance(clean_only) -> None:
    store = clean_only
    assert store.arrays == ("clean",) and store.affine is None
    assert store.noise == {"dose": 10.0, "pixel_size": 1.5, "read_noise": 0.1}
    electrons = 10.0 * 1.5**2
    batches = list(_stream(store, normalization="none", shuffle=False, batch_size=4))
    for batch in batches:  # one source (constant level) per batch of 4 patches
        level = float(batch.clean[0, 0, 0, 0])
        assert torch.all(batch.clean == level)
        noisy = batch.noisy.double()
        assert float(noisy.mean()) == pytest.approx(level, rel=0.02)
        assert float(noisy.var()) == pytest.approx(level / electrons + 0.1**2, rel=0.06)
        assert torch.all(batch.offset == 0) and torch.all(batch.scale == 1)
    for batch in _stream(store, normalization="meanstd", crop=32):
        per_patch = batch.noisy.double().flatten(1)
        assert torch.allclose(per_patch.mean(1), torch.zeros(5, dtype=torch.float64), atol=1e-5)
        assert torch.allclose(per_patch.std(1, correction=0), torch.ones(5, dtype=torch.float64),
                              atol=1e-4)
        scale, offset = batch.scale[:, None, None, None], batch.offset[:, None, None, None]
        raw_clean = batch.clean * scale + offset
        assert raw_clean.shape[-1] == 32
        assert torch.allclose(raw_clean.amax((1, 2, 3)), raw_clean.amin((1, 2, 3)), atol=1e-4)
    with pytest.raises(InputError, match="percentile"):
        _stream(store, normalization="percentile")


def test_pair_store_refuses_another_normalization(data) -> None:
    with pytest.raises(InputError, match="packed with normalization 'meanstd'"):
        _stream(data[2], normalization="none")


def test_early_close_joins_threads_and_reader_errors_reach_the_consumer(data, tmp_path) -> None:
    import shutil

    before = threading.active_count()
    batches = iter(_stream(data[2], reader_threads=3))
    next(batches)
    assert threading.active_count() == before + 3
    batches.close()
    assert threading.active_count() == before

    shutil.copytree(data[2].path, tmp_path / "store")
    stream = _stream(PackedStore.open(tmp_path / "store"), shuffle=False)
    with open(tmp_path / "store" / "noisy.f16", "r+b") as fh:
        fh.truncate(5 * P * P * 2 + 10)  # after validation: batch 2 is cut short
    with pytest.raises(InputError, match="truncated store"):
        list(stream)
    assert threading.active_count() == before


def test_cli_pack_pairs_and_clean_only(data, tmp_path: Path, capsys) -> None:
    noisy_dir, clean_dir, _ = data
    out = tmp_path / "store"
    argv = ["pack", "--noisy", str(noisy_dir), "--clean", str(clean_dir), "--out", str(out),
            "--patch-size", "64"]
    assert main(argv) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and line.startswith("packed 16 patches") and "MB/s" in line
    assert PackedStore.open(out).count == 16
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--normalization", "percentile"]) == 0
    assert PackedStore.open(out).normalization == "percentile"
    assert main(["pack", "--clean", str(clean_dir), "--out", str(tmp_path / "c")]) == 2
    assert "--dose" in capsys.readouterr().err
    assert main(["pack", "--clean", str(clean_dir), "--out", str(tmp_path / "c"),
                 "--patch-size", "64", "--dose", "50", "--pixel-size", "2"]) == 0
    assert PackedStore.open(tmp_path / "c").noise == {"dose": 50.0, "pixel_size": 2.0,
                                                      "read_noise": 0.0}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_match_the_cpu_ones(data) -> None:
    store = data[2]  # batches of 2: 8 batches cycle the ring of host buffers twice
    cpu = list(_stream(store, crop=48, batch_size=2))
    gpu = list(_stream(store, crop=48, batch_size=2, device="cuda", dtype=torch.float16))
    assert len(cpu) == len(gpu) == 8
    for a, b in zip(cpu, gpu, strict=True):
        assert b.noisy.is_cuda and b.noisy.dtype == torch.float16 and b.scale.is_cuda
        assert torch.equal(a.noisy.half(), b.noisy.cpu()) and torch.equal(a.clean.half(),
                                                                         b.clean.cpu())
        assert torch.equal(a.offset, b.offset.cpu()) and torch.equal(a.scale, b.scale.cpu())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_synthetic_noise(clean_only) -> None:
    electrons = 10.0 * 1.5**2
    for batch in _stream(clean_only, normalization="none", shuffle=False, batch_size=4,
                         device="cuda"):
        level = float(batch.clean[0, 0, 0, 0])
        assert float(batch.noisy.double().var()) == pytest.approx(level / electrons + 0.01,
                                                                  rel=0.06)
