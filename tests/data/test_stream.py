"""The streaming loader: coverage, reproducibility, crops, normalisation, clean-up, bounded memory.

Most tests use micrographs whose clean pixel value encodes where it is,
``pair * 100000 + z * 10000 + y * 100 + x``, so a batch tells which patch (and crop) it holds.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_cryoden.config.sections import ConfigError
from napari_cryoden.data.normalize import Normalizer, fit_normalizer
from napari_cryoden.data.patches import index_patches
from napari_cryoden.data.stream import PatchStream
from napari_cryoden.errors import InputError
from napari_cryoden.io.images import read_image, write_mrc

PATCH = 32


def _encoded(pair: int, shape: tuple[int, int, int]) -> np.ndarray:
    z, y, x = np.indices(shape)
    return (pair * 100000 + z * 10000 + y * 100 + x).astype(np.float32)


@pytest.fixture
def pairs(tmp_path: Path) -> list[tuple[Path, Path]]:
    """Three 64x80 micrographs (6 patches each) and a 2-slice 64x64 stack (8 patches): 26."""
    shapes = [(1, 64, 80)] * 3 + [(2, 64, 64)]
    result = []
    for i, shape in enumerate(shapes):
        suffix = ".mrcs" if shape[0] > 1 else ".mrc"
        clean = _encoded(i, shape)
        paths = (tmp_path / f"noisy_{i}{suffix}", tmp_path / f"clean_{i}{suffix}")
        write_mrc(paths[0], (clean + 0.5).squeeze(), pixel_size=1.0)
        write_mrc(paths[1], clean.squeeze(), pixel_size=1.0)
        result.append(paths)
    return result


def _stream(pairs: list[tuple[Path, Path]], **kw: object) -> PatchStream:
    options: dict = dict(patch_size=PATCH, batch_size=4, shuffle=True, seed=3,
                         shuffle_buffer=5, reader_threads=2)
    return PatchStream(pairs, **{**options, **kw})


def _corners(stream: PatchStream) -> list[tuple[int, int, int, int]]:
    """(pair, z, y, x) of the top-left pixel of every sample, in stream order."""
    values = [int(v) for batch in stream for v in batch.clean[:, 0, 0, 0].round()]
    return [(v // 100000, v // 10000 % 10, v // 100 % 100, v % 100) for v in values]


def test_each_patch_exactly_once_per_epoch(pairs: list[tuple[Path, Path]]) -> None:
    stream = _stream(pairs, reader_threads=3)
    batches = list(stream)
    assert stream.n_patches == 26 and len(stream) == len(batches) == 7
    assert [b.noisy.shape for b in batches] == [(4, 1, PATCH, PATCH)] * 6 + [(2, 1, PATCH, PATCH)]
    assert all(torch.all(b.noisy - b.clean == 0.5) for b in batches)  # noisy and clean aligned
    expected = sorted((r.pair, r.z, r.y, r.x) for r in index_patches(pairs, PATCH))
    assert sorted(_corners(stream)) == expected


def test_without_shuffle_whole_patches_come_in_index_order(pairs: list) -> None:
    stream = _stream(pairs, shuffle=False, crop=16)
    assert stream.sample_size == PATCH
    assert _corners(stream) == [(r.pair, r.z, r.y, r.x) for r in index_patches(pairs, PATCH)]


def test_same_seed_and_epoch_give_identical_batches(pairs: list) -> None:
    one_thread = _stream(pairs, crop=16, reader_threads=1)
    four_threads = _stream(pairs, crop=16, reader_threads=4)
    first = list(one_thread)
    for again in (list(four_threads), list(one_thread)):
        assert all(torch.equal(a.noisy, b.noisy) and torch.equal(a.clean, b.clean)
                   for a, b in zip(first, again, strict=True))
    four_threads.set_epoch(1)
    assert _corners(four_threads) != _corners(one_thread)
    assert _corners(_stream(pairs, seed=4)) != _corners(_stream(pairs, seed=3))


def test_crops_have_the_crop_size_and_lie_inside_their_patch(pairs: list) -> None:
    stream = _stream(pairs, crop=16)
    batches = list(stream)
    assert all(b.noisy.shape[1:] == (1, 16, 16) == b.clean.shape[1:] for b in batches)
    refs = index_patches(pairs, PATCH)
    corners = _corners(stream)
    for pair, z, y, x in corners:
        assert any(r.pair == pair and r.z == z and r.y <= y <= r.y + 16 and r.x <= x <= r.x + 16
                   for r in refs)
    offsets = np.add.outer(np.arange(16) * 100, np.arange(16))
    for batch in batches:
        for sample in batch.clean[:, 0].numpy():
            np.testing.assert_array_equal(sample - sample[0, 0], offsets)  # one contiguous crop
    assert len({(y % 32, x % 32) for _, _, y, x in corners}) > 5  # positions vary


def test_drop_last(pairs: list) -> None:
    stream = _stream(pairs, drop_last=True)
    assert len(stream) == 6 and [b.noisy.shape[0] for b in stream] == [4] * 6


@pytest.mark.parametrize("mode", ["meanstd", "percentile"])
def test_normalisation_is_inverted_exactly_and_matches_inference(tmp_path: Path,
                                                                  mode: str) -> None:
    rng = np.random.default_rng(0)
    clean = (rng.random((64, 64)) * 0.5 + 0.3).astype(np.float32)
    noisy = (clean + rng.normal(0, 0.2, clean.shape)).astype(np.float32)
    write_mrc(tmp_path / "n.mrc", noisy, 1.0)
    write_mrc(tmp_path / "c.mrc", clean, 1.0)
    stream = _stream([(tmp_path / "n.mrc", tmp_path / "c.mrc")], shuffle=False, normalization=mode)
    inference = fit_normalizer(read_image(tmp_path / "n.mrc")[0], mode)
    refs = index_patches([(tmp_path / "n.mrc", tmp_path / "c.mrc")], PATCH)
    batch = next(iter(stream))
    assert torch.all(batch.offset == np.float32(inference.offset))
    assert torch.all(batch.scale == np.float32(inference.scale))
    scale, offset = batch.scale.view(-1, 1, 1, 1), batch.offset.view(-1, 1, 1, 1)
    for raw, normalised in ((noisy, batch.noisy), (clean, batch.clean)):
        restored = (normalised * scale + offset)[:, 0].numpy()
        want = np.stack([raw[r.y:r.y + PATCH, r.x:r.x + PATCH] for r in refs])
        np.testing.assert_allclose(restored, want, rtol=1e-5, atol=1e-6)
    if mode == "meanstd":
        assert abs(float(batch.noisy.mean())) < 0.05 and abs(float(batch.noisy.std()) - 1) < 0.05


def test_fit_normalizer_reads_a_row_subsample_identically_for_any_dtype() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(-500, 500, (1024, 300)).astype(np.int16)
    expected = Normalizer("meanstd", float(image[::4].mean()), float(image[::4].std()))
    spoiled = image.copy()
    spoiled[1::4] = 30000  # rows the subsample (every 4th, from row 0) never reads
    for candidate in (image, spoiled, image.astype(np.float32)):
        assert fit_normalizer(candidate, "meanstd") == expected
    assert fit_normalizer(image, "none") == Normalizer("none", 0.0, 1.0)
    low, high = np.percentile(image[::4].astype(np.float64), [0.5, 99.5])
    assert fit_normalizer(image, "percentile") == Normalizer("percentile", low, high - low)


def test_normalizer_apply_invert_and_dict_round_trip() -> None:
    norm = Normalizer("meanstd", 0.7, 0.1)
    x = np.array([0.6, 0.7, 0.9], np.float32)
    assert norm.apply(x).dtype == np.float32
    np.testing.assert_allclose(norm.apply(x), [-1.0, 0.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(norm.invert(norm.apply(x)), x, rtol=1e-6)
    t = torch.from_numpy(x)
    assert norm.invert(norm.apply(t)).dtype == torch.float32
    assert Normalizer.from_dict(norm.to_dict()) == norm
    with pytest.raises(ConfigError):
        Normalizer.from_dict({"mode": "meanstd", "offset": 0.0, "scale": 0.0})
    with pytest.raises(ConfigError):
        Normalizer.from_dict({"mode": "zscore"})


def test_constant_micrograph_cannot_be_normalised(tmp_path: Path) -> None:
    write_mrc(tmp_path / "flat.mrc", np.full((64, 64), 3.0), 1.0)
    write_mrc(tmp_path / "c.mrc", np.zeros((64, 64)), 1.0)
    stream = _stream([(tmp_path / "flat.mrc", tmp_path / "c.mrc")], normalization="meanstd")
    with pytest.raises(InputError) as err:
        list(stream)
    assert str(err.value) == f"{tmp_path / 'flat.mrc'}: constant image: cannot normalise (std = 0)"
    assert list(_stream([(tmp_path / "flat.mrc", tmp_path / "c.mrc")]))  # fine without


def test_early_close_leaves_no_thread_running(pairs: list) -> None:
    baseline = threading.active_count()
    batches = iter(_stream(pairs, reader_threads=3))
    next(batches)
    assert threading.active_count() == baseline + 3
    batches.close()
    assert threading.active_count() == baseline
    for _ in _stream(pairs):
        break
    assert threading.active_count() == baseline


def test_reader_errors_reach_the_consumer_with_the_file_name(pairs: list) -> None:
    baseline = threading.active_count()
    stream = _stream(pairs, shuffle=False)  # indexed while the files were good
    broken = pairs[2][1]
    broken.write_bytes(broken.read_bytes()[:2000])
    with pytest.raises(InputError, match=f"{broken}: truncated MRC file"):
        list(stream)
    assert threading.active_count() == baseline


_RSS_SCRIPT = """
import resource, sys
from napari_cryoden.data.pairs import find_pairs
from napari_cryoden.data.stream import PatchStream
root = sys.argv[1]
stream = PatchStream(find_pairs(root + "/noisy", root + "/clean"), patch_size=256, batch_size=4,
                     shuffle=True, seed=0, normalization="meanstd")
n = sum(batch.noisy.shape[0] for batch in stream)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(n, peak / 1024 if sys.platform != "darwin" else peak / 2**20)
"""


def _peak_rss_mb(root: Path, n_pairs: int) -> float:
    rng = np.random.default_rng(n_pairs)
    for folder in ("noisy", "clean"):
        (root / folder).mkdir(parents=True)
        for i in range(n_pairs):
            write_mrc(root / folder / f"m{i:03d}.mrc", rng.random((1024, 1024), np.float32), 1.0)
    done = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(root)], check=True,
                          capture_output=True, text=True)
    n_patches, peak = done.stdout.split()
    assert int(n_patches) == n_pairs * 16
    return float(peak)


@pytest.mark.skipif(sys.platform == "win32", reason="resource.getrusage is POSIX-only")
def test_host_memory_does_not_grow_with_the_dataset(tmp_path: Path) -> None:
    small = _peak_rss_mb(tmp_path / "small", 4)  # 32 MB of micrographs
    large = _peak_rss_mb(tmp_path / "large", 32)  # 256 MB: keeping them would add 224 MB
    print(f"\npeak RSS streaming one epoch: 4 pairs {small:.0f} MB, 32 pairs {large:.0f} MB, "
          f"difference {large - small:.1f} MB")
    assert large - small < 100


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_through_pinned_buffers_equal_cpu_batches(pairs: list) -> None:
    on_cpu = list(_stream(pairs, crop=16, normalization="meanstd"))
    on_gpu = list(_stream(pairs, crop=16, normalization="meanstd", device="cuda"))  # all kept
    torch.cuda.synchronize()
    assert len(on_gpu) == len(on_cpu)
    for cpu, gpu in zip(on_cpu, on_gpu, strict=True):
        assert gpu.noisy.is_cuda and gpu.scale.is_cuda
        for a, b in zip(cpu, gpu, strict=True):
            assert torch.equal(a, b.cpu())
