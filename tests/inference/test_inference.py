"""Tiled inference: the tiled, blended result equals one whole-image pass, at any size."""

from __future__ import annotations

import resource
import sys
import tracemalloc
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from napari_cryoden.cli.main import main
from napari_cryoden.config.sections import Config, ConfigError, ModelConfig
from napari_cryoden.data.normalize import fit_normalizer
from napari_cryoden.errors import InputError
from napari_cryoden.inference import loops
from napari_cryoden.inference.denoiser import (
    CPU_ACTIVATION_BYTES,
    compare_precision,
    denoise,
    denoise_file,
    plan_tiles,
    precision_error,
    receptive_radius,
)
from napari_cryoden.inference.tiling import CPU_TILE_BYTES
from napari_cryoden.io.images import read_image, write_mrc
from napari_cryoden.models.checkpoint import save_checkpoint
from napari_cryoden.models.nets import build_model

TOL = 1e-5


def _image(shape: tuple[int, ...], seed: int = 0, offset: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32) + np.float32(offset)


def _untiled(model: nn.Module, image: np.ndarray, normalization: str = "none") -> np.ndarray:
    """The reference: each slice normalised, run through the model whole, mapped back."""
    slices = []
    for plane in image.reshape((-1, *image.shape[-2:])):
        norm = fit_normalizer(plane, normalization)
        with torch.inference_mode():
            x = torch.from_numpy(np.asarray(norm.apply(plane), np.float32))[None, None]
            slices.append(norm.invert(model(x)[0, 0].numpy()))
    return np.stack(slices).reshape(image.shape)


class _ZeroNet(nn.Module):
    """Outputs 0 everywhere: after inversion the output shows the normaliser's offset."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.0


@pytest.fixture(scope="module")
def seed_net() -> nn.Module:
    return build_model(seed=1)


@pytest.mark.parametrize(
    ("shape", "tile_size", "min_tiles"),
    [
        ((40, 50), None, 1),  # smaller than any tile: one tile, the image itself
        ((40, 50), 64, 1),
        ((300, 517), 64, 40),  # non-square
        ((257, 129), 40, 30),  # odd sizes
        ((1000, 1000), 128, 64),
        ((3, 200, 150), 48, 60),  # stack, slice by slice
    ],
)
def test_tiled_equals_untiled(seed_net: nn.Module, shape: tuple[int, ...], tile_size: int | None,
                              min_tiles: int) -> None:
    image = _image(shape)
    plan = plan_tiles(shape, tile_size=tile_size)
    assert plan.n_tiles >= min_tiles
    result = denoise(seed_net, image, tile_size=tile_size)
    assert result.shape == shape and result.dtype == np.float32
    np.testing.assert_allclose(result, _untiled(seed_net, image), rtol=0, atol=TOL)


def test_wide_receptive_field_is_exact_too() -> None:
    model = build_model(ModelConfig(depth=5, kernel_size=5, channels=4), seed=2)
    assert receptive_radius(model) == 10
    image = _image((230, 190), seed=3)
    result = denoise(model, image, tile_size=60)
    np.testing.assert_allclose(result, _untiled(model, image), rtol=0, atol=TOL)


def test_too_small_halo_leaves_seams(seed_net: nn.Module) -> None:
    """Proves the equality tests can fail: without the halo, tile edges differ from untiled."""
    image = _image((200, 200), seed=4)
    wrong = denoise(seed_net, image, tile_size=48, halo=0)
    assert np.abs(wrong - _untiled(seed_net, image)).max() > 1e-3


def test_tile_and_batch_sizes_do_not_change_the_answer(seed_net: nn.Module) -> None:
    image = _image((2, 180, 211), seed=5)
    results = [denoise(seed_net, image, tile_size=t, batch_size=b)
               for t, b in [(None, None), (32, 1), (57, 3), (100, 7), (500, 2)]]
    for other in results[1:]:
        np.testing.assert_allclose(other, results[0], rtol=0, atol=TOL)


@pytest.mark.parametrize("normalization", ["meanstd", "percentile"])
def test_normalisation_keeps_brightness(seed_net: nn.Module, normalization: str) -> None:
    image = _image((150, 170), seed=6, offset=1000.0)  # raw counts far from [0, 1]
    same = denoise(nn.Identity(), image, normalization=normalization, tile_size=40)
    assert abs(float(same.mean()) - float(image.mean())) < 1e-3
    np.testing.assert_allclose(same, image, rtol=0, atol=1e-3)
    tiled = denoise(seed_net, image, normalization=normalization, tile_size=40)
    np.testing.assert_allclose(tiled, _untiled(seed_net, image, normalization), rtol=0,
                               atol=TOL * 1000)  # float32 at magnitude 1000


def test_normalisation_is_fitted_per_slice() -> None:
    stack = np.stack([_image((64, 80), seed=7, offset=o) for o in (0.0, 50.0, 300.0)])
    out = denoise(_ZeroNet(), stack, normalization="meanstd", tile_size=32)
    np.testing.assert_allclose(out.mean(axis=(1, 2)), stack.mean(axis=(1, 2)), rtol=1e-4)
    assert np.all(out.std(axis=(1, 2)) < 1e-3)  # one offset per slice, no tile pattern
    assert np.all(denoise(_ZeroNet(), stack, normalization="none") == 0.0)


def test_integer_input_reads_like_float(seed_net: nn.Module) -> None:
    counts = np.random.default_rng(8).integers(0, 60000, (90, 70)).astype(np.uint16)
    np.testing.assert_allclose(denoise(seed_net, counts, tile_size=32),
                               denoise(seed_net, counts.astype(np.float32), tile_size=32),
                               rtol=1e-6, atol=TOL)


def test_progress_reports_every_tile(seed_net: nn.Module) -> None:
    calls: list[tuple[int, int]] = []
    shape = (2, 120, 130)
    denoise(seed_net, _image(shape), tile_size=40, batch_size=5,
            progress=lambda done, total: calls.append((done, total)))
    total = plan_tiles(shape, tile_size=40).n_tiles
    assert calls[-1] == (total, total) and total > 10
    assert [d for d, _ in calls] == sorted({d for d, _ in calls})
    assert all(b - a <= 5 for (a, _), (b, _) in zip(calls, calls[1:], strict=False))


def test_injected_out_of_memory_backs_off(seed_net: nn.Module,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    forward = loops.forward
    seen: list[tuple[int, ...]] = []

    def flaky(model: nn.Module, batch: torch.Tensor, *args: object) -> torch.Tensor:
        seen.append(tuple(batch.shape))
        if batch.shape[0] > 1 or max(batch.shape[-2:]) > 64:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return forward(model, batch, *args)

    monkeypatch.setattr(loops, "forward", flaky)
    image = _image((300, 260), seed=9)
    with pytest.warns(RuntimeWarning, match="out of memory") as record:
        result = denoise(seed_net, image, tile_size=128, batch_size=4)
    assert len(record) == 3  # batch 4 -> 2 -> 1, then the tile halved
    assert seen[0][0] == 4 and max(seen[-1][-2:]) <= 64
    np.testing.assert_allclose(result, _untiled(seed_net, image), rtol=0, atol=TOL)


def test_out_of_memory_at_the_smallest_tile_is_raised(seed_net: nn.Module,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def broke(*args: object) -> torch.Tensor:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")

    monkeypatch.setattr(loops, "forward", broke)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(torch.cuda.OutOfMemoryError):
            denoise(seed_net, _image((200, 200)), tile_size=128)


def test_cpu_plan_keeps_tiles_cache_sized_and_within_budget() -> None:
    for shape in [(8192, 8192), (4096, 4096), (5, 1000, 3000)]:
        plan = plan_tiles(shape, halo=3, hidden_channels=16)
        assert 4 * 16 * plan.tile[0] * plan.tile[1] <= CPU_TILE_BYTES and plan.batch == 1
        assert 4 * (1 + 2 * 16) * plan.tile[0] * plan.tile[1] * plan.batch <= CPU_ACTIVATION_BYTES
        overlap = 2 * plan.halo + plan.blend
        for n, t, g in zip(shape[-2:], plan.tile, plan.grid, strict=True):
            assert t <= n and (g == 1 or g * (t - overlap) + overlap >= n)
    big = plan_tiles((8192, 8192))
    assert big.tile[0] >= 400 and big.n_tiles == big.grid[0] * big.grid[1]
    assert plan_tiles((8192, 8192), hidden_channels=64).tile[0] <= 256  # bytes, not pixels
    small = plan_tiles((40, 64, 64))  # small slices are batched: one forward for many slices
    assert small.n_tiles == 40 and small.batch > 1 and small.tile == (64, 64)
    tight = plan_tiles((4096, 4096), budget_bytes=132 * 200**2)
    assert max(tight.tile) <= 200


def test_cuda_plan_batches_large_tiles_in_half_the_free_memory(
        monkeypatch: pytest.MonkeyPatch) -> None:
    free = 8 * 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 80 * 2**30))
    shape = (3, 8192, 8192)
    plan = plan_tiles(shape, device="cuda")
    assert 1024 < max(plan.tile) <= 1024 + 2 * 3 + 64 and plan.batch > 1
    slices = 8 * 8192 * 8192  # input and output of one slice on the device
    assert (4 * 33 + 8) * plan.tile[0] * plan.tile[1] * plan.batch + slices <= free // 2
    n_batches = -(-plan.n_tiles // plan.batch)
    assert n_batches * plan.batch - plan.n_tiles < n_batches  # batches are evened out
    half = plan_tiles(shape, device="cuda", precision="fp16")
    assert half.tile == plan.tile and half.batch > plan.batch  # 2-byte activations
    assert plan_tiles(shape, device="cuda", amp=True).batch == half.batch
    one = plan_tiles(shape, device="cuda", batch_size=1)
    assert one.batch == 1 and one.tile == plan.tile
    tight = plan_tiles((2048, 2048), device="cuda", budget_bytes=8 * 2048**2 + 140 * 600**2)
    assert 500 < max(tight.tile) <= 600 and tight.batch == 1  # the largest tile that fits


def test_amp_is_deprecated_and_ignored_on_cpu(seed_net: nn.Module) -> None:
    image = _image((100, 90), seed=10)
    with pytest.warns(DeprecationWarning, match="precision='fp16'"):
        result = denoise(seed_net, image, amp=True, tile_size=48)
    np.testing.assert_array_equal(result, denoise(seed_net, image, tile_size=48))
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match="contradicts"):
        denoise(seed_net, image, amp=True, precision="bf16")


@pytest.mark.parametrize("bad", ["fp8", "half", "FP16", ""])
def test_bad_precision_is_refused(seed_net: nn.Module, bad: str) -> None:
    with pytest.raises(ConfigError, match="precision"):
        denoise(seed_net, _image((32, 32)), precision=bad)
    with pytest.raises(ValueError, match="precision"):
        compare_precision(seed_net, _image((32, 32)), bad)


def test_fp32_and_tf32_on_cpu_are_the_exact_path(seed_net: nn.Module) -> None:
    image = _image((210, 190), seed=20)
    fp32 = denoise(seed_net, image, precision="fp32", tile_size=64)
    np.testing.assert_allclose(fp32, _untiled(seed_net, image), rtol=0, atol=TOL)
    np.testing.assert_array_equal(denoise(seed_net, image, precision="tf32", tile_size=64), fp32)


def test_channels_last_equals_nchw_and_model_is_restored(seed_net: nn.Module) -> None:
    image = _image((2, 230, 170), seed=21)
    weights = {k: (v.data_ptr(), v.stride()) for k, v in seed_net.state_dict().items()}
    fast = denoise(seed_net, image, channels_last=True, normalization="meanstd", tile_size=80)
    plain = denoise(seed_net, image, channels_last=False, normalization="meanstd", tile_size=80)
    np.testing.assert_allclose(fast, plain, rtol=0, atol=TOL)
    np.testing.assert_allclose(fast, _untiled(seed_net, image, "meanstd"), rtol=0, atol=TOL)
    assert {k: (v.data_ptr(), v.stride()) for k, v in seed_net.state_dict().items()} == weights


@pytest.mark.parametrize("normalization", ["none", "meanstd"])
def test_device_resident_path_equals_untiled(seed_net: nn.Module, normalization: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA/MPS loop (upload slices, cut on the device, pad the last batch), run on CPU."""
    monkeypatch.setattr(loops, "slices_on_device", lambda dev: True)
    shapes: list[tuple[int, ...]] = []
    forward = loops.forward
    monkeypatch.setattr(loops, "forward",
                        lambda m, b, p: shapes.append(tuple(b.shape)) or forward(m, b, p))
    stack = np.stack([_image((170, 150), seed=22, offset=o) for o in (0.0, 40.0, 900.0)])
    counts = (stack * 10).astype(np.uint16)  # cast on upload
    for image in (stack, counts):
        result = denoise(seed_net, image, normalization=normalization, tile_size=64,
                         batch_size=5)
        np.testing.assert_allclose(result, _untiled(seed_net, image.astype(np.float32),
                                                    normalization), rtol=0, atol=TOL * 1000)
    assert len(set(shapes)) == 1 and shapes[0][0] == 5  # the last batch is padded, not shorter
    assert plan_tiles(stack.shape, tile_size=64, batch_size=5).n_tiles % 5 != 0


def test_compare_precision_is_zero_for_fp32_and_small_for_bf16(seed_net: nn.Module) -> None:
    image = _image((300, 280), seed=23, offset=500.0)
    exact = compare_precision(seed_net, image, "fp32", normalization="meanstd")
    assert exact.max_abs == 0.0 and precision_error(seed_net, image, "tf32") == 0.0
    assert "fp32: max |difference| vs fp32 on the first tiles = 0.0e+00 (0 %" in str(exact)
    try:
        check = compare_precision(seed_net, image, "bf16", normalization="meanstd",
                                  tile_size=128, batch_size=2)
    except RuntimeError as exc:  # autocast to bf16 unsupported on this CPU build
        pytest.skip(f"bf16 autocast on CPU: {exc}")
    assert 0.0 < check.relative < 0.05 and check.image_std == pytest.approx(0.29, abs=0.02)
    assert check.max_abs == pytest.approx(check.relative * check.image_std)
    with pytest.warns(RuntimeWarning, match="slower than fp32"):
        bf16 = denoise(seed_net, image, precision="bf16", normalization="meanstd")
    error = np.abs(bf16 - _untiled(seed_net, image, "meanstd")).max()
    assert 0.0 < error < 10 * check.max_abs  # the first tiles are representative
    fp16 = compare_precision(seed_net, image * 1e3, "fp16")  # 5e5 overflows float16
    assert fp16.max_abs == np.inf and "inf" in str(fp16)


def test_cli_denoise_precision_flag(seed_net: nn.Module, tmp_path, capsys) -> None:
    weights = save_checkpoint(tmp_path / "m.safetensors", seed_net, Config())
    image = _image((96, 80), seed=24)
    (tmp_path / "in").mkdir()
    write_mrc(tmp_path / "in" / "a.mrc", image, 1.2)
    argv = ["denoise", str(weights), str(tmp_path / "in"), "--device", "cpu", "--tile-size", "48",
            "--smooth", "0"]  # the model's output, compared to fp32's
    assert main([*argv, "--out", str(tmp_path / "fp32")]) == 0
    assert "vs fp32" not in capsys.readouterr().out
    with pytest.warns(RuntimeWarning, match="slower"):
        assert main([*argv, "--out", str(tmp_path / "bf16"), "--precision", "bf16"]) == 0
    out = capsys.readouterr()
    assert "bf16: max |difference| vs fp32 on the first tiles = " in out.out
    assert "(bf16)" in out.out and "warning" not in out.err
    fp32, bf16 = (read_image(tmp_path / d / "a.mrc")[0] for d in ("fp32", "bf16"))
    expected = _untiled(seed_net, image, Config().data.normalization)
    np.testing.assert_allclose(fp32, expected, rtol=0, atol=TOL)
    assert 0 < np.abs(bf16 - fp32).max() < 0.05
    loud = build_model(seed=3)
    with torch.no_grad():
        loud.conv1.weight *= 1e3  # hidden activations too large for float16's precision
    argv[1] = str(save_checkpoint(tmp_path / "loud.safetensors", loud, Config()))
    with pytest.warns(RuntimeWarning):
        assert main([*argv, "--out", str(tmp_path / "fp16"), "--precision", "fp16"]) == 0
    out = capsys.readouterr()
    assert "fp16: max |difference| vs fp32 on the first tiles = " in out.out
    assert "differs from fp32 by more than 1 % of the image's std" in out.err
    with pytest.raises(SystemExit):
        main([*argv, "--out", str(tmp_path / "x"), "--precision", "fp8"])


def test_training_mode_is_restored(seed_net: nn.Module) -> None:
    seed_net.train()
    denoise(seed_net, _image((32, 32)))
    assert seed_net.training
    seed_net.eval()


def test_host_memory_is_about_one_output(seed_net: nn.Module) -> None:
    image = _image((1024, 1024), seed=11)
    tracemalloc.start()
    try:
        denoise(seed_net, image, tile_size=128, batch_size=4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * image.nbytes  # the output array plus tile-sized temporaries


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc thresholds")
def test_cpu_tiles_do_not_page_fault_on_every_forward(seed_net: nn.Module) -> None:
    image = _image((1024, 1024), seed=25)
    denoise(seed_net, image, tile_size=300)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    denoise(seed_net, image, tile_size=300)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    tiles = plan_tiles(image.shape, tile_size=300).n_tiles
    activation_pages = 300 * 300 * 16 * 4 // 4096
    assert faults < tiles * activation_pages, (faults, tiles)  # unsettled: 3 activations a tile


def test_receptive_radius_of_plain_conv_nets() -> None:
    assert receptive_radius(build_model(seed=0)) == 3
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(4, 1, 5, padding=4, dilation=2))
    assert receptive_radius(net) == 5
    image = _image((150, 140), seed=12)
    np.testing.assert_allclose(denoise(net, image, tile_size=40), _untiled(net, image),
                               rtol=0, atol=TOL)
    with pytest.raises(ValueError, match="halo"):
        receptive_radius(nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2)))


@pytest.mark.parametrize("shape", [(10,), (2, 2, 8, 8), (0, 16)])
def test_bad_shapes_are_refused(seed_net: nn.Module, shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match="shape"):
        denoise(seed_net, np.zeros(shape, np.float32))


def test_bad_options_are_refused(seed_net: nn.Module) -> None:
    with pytest.raises(ConfigError, match="normalization"):
        denoise(seed_net, _image((32, 32)), normalization="zscore")
    with pytest.raises(ValueError, match="tile_size"):
        denoise(seed_net, _image((64, 64)), tile_size=8)


def test_denoise_file_writes_mrc_with_pixel_size(seed_net: nn.Module, tmp_path) -> None:
    image = _image((3, 64, 48), seed=13)
    write_mrc(tmp_path / "in.mrcs", image, 1.34)
    written = denoise_file(seed_net, tmp_path / "in.mrcs", tmp_path / "out.mrcs", tile_size=32)
    data, pixel_size = read_image(written)
    assert pixel_size == pytest.approx(1.34, abs=1e-3)
    np.testing.assert_allclose(data, _untiled(seed_net, image), rtol=0, atol=TOL)


@pytest.mark.slow
def test_8k_micrograph_with_a_tiny_model() -> None:
    model = build_model(ModelConfig(channels=2), seed=14)
    image = _image((8192, 8192), seed=15)
    result = denoise(model, image)
    assert result.shape == image.shape and result.dtype == np.float32
    assert plan_tiles(image.shape, hidden_channels=2).n_tiles > 1
    crop = image[4000:4300, 4100:4400]  # away from its own border it must match the full result
    np.testing.assert_allclose(result[4003:4297, 4103:4397], _untiled(model, crop)[3:-3, 3:-3],
                               rtol=0, atol=TOL)


def _hot_pixel_pair(size: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A simulated micrograph, the same with 20 counting outliers at 500, and the pixels within
    the seed net's receptive radius (3) of an outlier.
    """
    from scipy.ndimage import binary_dilation

    from napari_cryoden.simulation.micrographs import simulate_micrograph
    from napari_cryoden.simulation.params import HIGH_CONTRAST

    clean_of_outliers, _ = simulate_micrograph(HIGH_CONTRAST, np.random.default_rng(0), size)
    hot = clean_of_outliers.copy()
    rng = np.random.default_rng(1)
    is_hot = np.zeros(hot.shape, bool)
    is_hot[rng.integers(0, size, 20), rng.integers(0, size, 20)] = True
    hot[is_hot] = 500.0
    near = binary_dilation(is_hot, np.ones((3, 3), bool), iterations=3)
    return clean_of_outliers, hot, near


def test_pixel_cutoff_denoises_a_hot_micrograph_like_the_clean_one(seed_net: nn.Module) -> None:
    clean_of_outliers, hot, near = _hot_pixel_pair()
    reference = denoise(seed_net, clean_of_outliers, normalization="meanstd")
    clipped = denoise(seed_net, hot, normalization="meanstd", pixel_cutoff=5.0)
    np.testing.assert_allclose(clipped[~near], reference[~near], rtol=0, atol=1e-3)
    assert np.abs(clipped - reference).max() < 0.1  # no 500-valued blob at the hot pixels
    unclipped = denoise(seed_net, hot, normalization="meanstd")  # without the flag: as before
    np.testing.assert_allclose(unclipped, _untiled(seed_net, hot, "meanstd"), rtol=0, atol=TOL)
    assert np.abs(unclipped - reference)[~near].max() > 0.1  # the outliers skew meanstd


def test_cli_denoise_pixel_cutoff_flag(seed_net: nn.Module, tmp_path, capsys) -> None:
    weights = save_checkpoint(tmp_path / "m.safetensors", seed_net, Config())
    clean_of_outliers, hot, near = _hot_pixel_pair(128)
    (tmp_path / "in").mkdir()
    write_mrc(tmp_path / "in" / "hot.mrc", hot, 1.06)
    argv = ["denoise", str(weights), str(tmp_path / "in"), "--device", "cpu", "--smooth", "0"]
    assert main([*argv, "--out", str(tmp_path / "plain")]) == 0
    assert main([*argv, "--out", str(tmp_path / "clip"), "--pixel-cutoff", "5"]) == 0
    plain, clip = (read_image(tmp_path / d / "hot.mrc")[0] for d in ("plain", "clip"))
    normalization = Config().data.normalization
    np.testing.assert_allclose(plain, _untiled(seed_net, hot, normalization), rtol=0, atol=TOL)
    reference = denoise(seed_net, clean_of_outliers, normalization=normalization)
    np.testing.assert_allclose(clip[~near], reference[~near], rtol=0, atol=1e-3)
    assert clip.max() < 2.0 < plain.max()
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*argv, "--out", str(tmp_path / "x"), "--pixel-cutoff", "-1"])
    assert "not a positive number of standard deviations" in capsys.readouterr().err
