"""The micrograph simulator: reproducible, in the seed's [0, 1] convention, with physical noise,
visible particles, Thon rings where the CTF predicts them, and paired MRC files on disk."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from napari_cryoden.config.sections import ConfigError
from napari_cryoden.simulation.micrographs import (
    ctf_zero,
    electron_wavelength,
    simulate_dataset,
    simulate_exposure,
    simulate_micrograph,
)
from napari_cryoden.simulation.params import PARTICLE_KINDS, SimulationParams

# 3 Å pixels put a dozen particles into a 256² test micrograph.
SMALL = SimulationParams(pixel_size=3.0, carbon_edge_probability=0.0)


def _exposure(params: SimulationParams, seed: int, size: int = 256):
    return simulate_exposure(params, np.random.default_rng(seed), size)


def test_same_seed_same_micrograph_other_seed_other_micrograph() -> None:
    a = simulate_micrograph(SMALL, np.random.default_rng(7), 128)
    b = simulate_micrograph(SMALL, np.random.default_rng(7), 128)
    c = simulate_micrograph(SMALL, np.random.default_rng(8), 128)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a[1], c[1])
    assert all(x.dtype == np.float32 and x.shape == (128, 128) for x in a)


def test_rectangular_size_and_repeated_calls_differ() -> None:
    rng = np.random.default_rng(0)
    first, second = simulate_micrograph(SMALL, rng, (96, 160)), simulate_micrograph(SMALL, rng, 96)
    assert first[0].shape == (96, 160) and second[0].shape == (96, 96)
    assert not np.allclose(first[1][:, :96], second[1])


@pytest.mark.parametrize("carbon", [0.0, 1.0])
def test_clean_lies_in_unit_range_with_the_seeds_mean(carbon: float) -> None:
    params = dataclasses.replace(SMALL, carbon_edge_probability=carbon)
    means = []
    for seed in range(4):
        shot = _exposure(params, seed)
        assert shot.truth.min() >= 0.0 and shot.truth.max() <= 1.0
        assert shot.carbon is bool(carbon)
        means.append(float(shot.clean.mean()))
    assert all(0.6 <= m <= 0.72 for m in means), means


@pytest.mark.parametrize(
    ("dose", "pixel_size", "read_noise"), [(20.0, 1.0, 0.01), (5.0, 2.0, 0.05), (60.0, 0.8, 0.0)]
)
def test_noise_variance_matches_the_dose(dose: float, pixel_size: float, read_noise: float) -> None:
    params = SimulationParams(pixel_size=pixel_size, dose=dose, read_noise=read_noise)
    noisy, clean = simulate_micrograph(params, np.random.default_rng(1), 192)
    expected = clean.mean() / (dose * pixel_size**2) + read_noise**2
    assert np.var(noisy - clean) == pytest.approx(expected, rel=0.1)
    assert abs(float(np.mean(noisy - clean))) < 0.01  # unbiased: same units as clean


def test_clean_dose_gives_a_noisy_target_and_keeps_the_truth() -> None:
    params = dataclasses.replace(SMALL, clean_dose=200.0, read_noise=0.0)
    shot = _exposure(params, 3, 192)
    electrons = 200.0 * params.pixel_size**2
    assert np.var(shot.clean - shot.truth) == pytest.approx(shot.truth.mean() / electrons, rel=0.1)
    noisy_var = np.var(shot.noisy - shot.truth)
    assert noisy_var == pytest.approx(shot.truth.mean() / (20.0 * 9.0), rel=0.1)
    noise_free = _exposure(dataclasses.replace(params, clean_dose=None), 3, 192)
    np.testing.assert_array_equal(noise_free.clean, noise_free.truth)


def test_particles_add_dark_structure_to_the_same_ice() -> None:
    for seed in range(3):
        shot = _exposure(SMALL, seed)
        empty = _exposure(dataclasses.replace(SMALL, particle_density=0.0), seed)
        assert len(empty.particle_kinds) == 0 and len(shot.particle_kinds) >= 3
        assert shot.truth.var() > 1.2 * empty.truth.var()
        signal = shot.truth - empty.truth  # same ice, defocus and noise streams: only particles
        yy, xx = np.mgrid[:256, :256]
        near = np.zeros(signal.shape, bool)
        for y, x in shot.particle_centres:
            near |= (yy - y) ** 2 + (xx - x) ** 2 < 10**2  # 30 Å around each centre
        assert signal[near].mean() < -0.002 < signal[~near].mean()  # particles look dark


def test_contrast_scale_strengthens_structure_not_the_mean() -> None:
    plain, strong = (_exposure(dataclasses.replace(SMALL, contrast_scale=c), 4) for c in (1, 3))
    assert strong.truth.std() > 1.5 * plain.truth.std()
    assert strong.truth.mean() == pytest.approx(plain.truth.mean(), abs=0.02)


@pytest.mark.parametrize("kind", PARTICLE_KINDS)
def test_every_particle_kind_renders(kind: str) -> None:
    params = dataclasses.replace(SMALL, particle_kinds=(kind,), particle_weights=(1.0,))
    shot = _exposure(params, 0, 128)
    empty = _exposure(dataclasses.replace(params, particle_density=0.0), 0, 128)
    assert set(shot.particle_kinds) == {kind}
    assert np.abs(shot.truth - empty.truth).max() > 0.01


def _radial_power(image: np.ndarray, pixel_size: float) -> tuple[np.ndarray, np.ndarray]:
    n = image.shape[0]
    power = np.abs(np.fft.fft2(image - image.mean())) ** 2
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(n, pixel_size), np.fft.fftfreq(n, pixel_size)))
    step = 1.0 / (n * pixel_size)
    rings = np.round(k / step).astype(int).ravel()
    profile = np.bincount(rings, power.ravel()) / np.maximum(np.bincount(rings), 1)
    return np.arange(len(profile)) * step, profile


@pytest.mark.parametrize("defocus", [1.0, 1.5, 2.2])
def test_power_spectrum_shows_thon_rings_at_the_predicted_zero(defocus: float) -> None:
    params = SimulationParams(
        pixel_size=2.0, defocus_min=defocus, defocus_max=defocus, astigmatism=0.0,
        carbon_edge_probability=0.0,
    )
    shot = _exposure(params, 5, 512)
    k, profile = _radial_power(shot.truth.astype(np.float64), params.pixel_size)
    k1 = ctf_zero(params, defocus)
    window = (k > 0.85 * k1) & (k < 1.15 * k1)
    k_min = k[window][np.argmin(profile[window])]
    assert abs(k_min - k1) < 0.03 * k1  # the ring minimum sits on the predicted first zero
    peak = profile[(k > 0.6 * k1) & (k < 0.85 * k1)].max()  # between the first peak and zero
    assert profile[window].min() < 0.1 * peak


def test_ctf_zero_and_wavelength_are_physical() -> None:
    assert electron_wavelength(300) == pytest.approx(0.01969, abs=1e-5)
    assert electron_wavelength(200) == pytest.approx(0.02508, abs=1e-5)
    params = SimulationParams()
    # Without Cs and amplitude contrast the first zero is at 1/sqrt(lambda * defocus).
    approx = 1 / np.sqrt(electron_wavelength(300) * 1.5e4)
    assert ctf_zero(params, 1.5) == pytest.approx(approx, rel=0.05)
    assert ctf_zero(params, 1.0) > ctf_zero(params, 2.0)
    assert ctf_zero(params, 1.5, 2) > ctf_zero(params, 1.5, 1)


@pytest.mark.parametrize(
    "bad",
    [
        {"pixel_size": 0.0},
        {"dose": -1.0},
        {"defocus_min": 3.0, "defocus_max": 1.0},
        {"particle_kinds": ("ribosome",), "particle_weights": (1.0,)},
        {"particle_weights": (1.0,)},
        {"clean_dose": 0.0},
        {"transmission": 1.5},
        {"contrast_scale": 0.0},
    ],
)
def test_bad_parameters_are_refused(bad: dict) -> None:
    with pytest.raises(ConfigError, match="simulation"):
        SimulationParams(**bad)


def test_params_round_trip_through_a_dict() -> None:
    params = SimulationParams(clean_dose=50.0, particle_kinds=("globular",), particle_weights=(2,))
    assert SimulationParams.from_dict(json.loads(json.dumps(params.to_dict()))) == params
    with pytest.raises(ConfigError, match="unknown"):
        SimulationParams.from_dict({"dose": 1.0, "magnification": 3})


def test_a_1024_micrograph_is_fast() -> None:
    rng = np.random.default_rng(0)
    simulate_micrograph(SimulationParams(), rng, 256)  # warm caches (particle templates)
    start = time.perf_counter()
    noisy, clean = simulate_micrograph(SimulationParams(), rng, 1024)
    assert time.perf_counter() - start < 2.0  # ~0.2 s on one core; loose for busy machines
    assert noisy.shape == clean.shape == (1024, 1024)


def _mrc_data(path: Path) -> tuple[np.ndarray, float]:
    with mrcfile.open(path) as mrc:
        return mrc.data.copy(), float(mrc.voxel_size.x)


def test_simulate_dataset_writes_reproducible_pairs(tmp_path: Path) -> None:
    params = dataclasses.replace(SMALL, pixel_size=2.5)
    first = simulate_dataset(tmp_path / "a", n=3, size=64, seed=11, params=params)
    again = simulate_dataset(tmp_path / "b", n=2, size=64, seed=11, params=params)
    other = simulate_dataset(tmp_path / "c", n=1, size=64, seed=12, params=params)
    names = [p.name for p in first.noisy_paths]
    assert names == ["mic_0000.mrc", "mic_0001.mrc", "mic_0002.mrc"]
    assert [p.name for p in first.clean_paths] == names and first.truth_paths == ()
    assert sorted(p.name for p in first.clean_dir.iterdir()) == names
    assert not (tmp_path / "a" / "truth").exists()
    for noisy_path, clean_path in zip(first.noisy_paths, first.clean_paths, strict=True):
        noisy, px_noisy = _mrc_data(noisy_path)
        clean, px_clean = _mrc_data(clean_path)
        assert noisy.shape == clean.shape == (64, 64) and noisy.dtype == np.float32
        assert px_noisy == px_clean == pytest.approx(2.5)
        assert 0.0 <= clean.min() and clean.max() <= 1.0
    for i in range(2):  # micrograph i depends on the seed, not on n
        np.testing.assert_array_equal(
            _mrc_data(first.noisy_paths[i])[0], _mrc_data(again.noisy_paths[i])[0]
        )
    assert not np.allclose(_mrc_data(first.clean_paths[0])[0], _mrc_data(first.clean_paths[1])[0])
    assert not np.allclose(_mrc_data(first.clean_paths[0])[0], _mrc_data(other.clean_paths[0])[0])
    record = json.loads((tmp_path / "a" / "simulation.json").read_text())
    assert record["seed"] == 11 and record["size"] == [64, 64]
    assert SimulationParams.from_dict(record["params"]) == params
    defoci = [m["defocus_um"] for m in record["micrographs"]]
    assert len(set(defoci)) == 3 and all(0.8 <= d <= 2.5 for d in defoci)


def test_simulate_dataset_with_clean_dose_writes_truth(tmp_path: Path) -> None:
    params = dataclasses.replace(SMALL, clean_dose=100.0)
    dataset = simulate_dataset(tmp_path, n=2, size=48, seed=0, params=params)
    assert [p.parent.name for p in dataset.truth_paths] == ["truth", "truth"]
    clean, _ = _mrc_data(dataset.clean_paths[0])
    truth, px = _mrc_data(dataset.truth_paths[0])
    assert px == pytest.approx(3.0) and not np.array_equal(clean, truth)
    assert abs(float(clean.mean() - truth.mean())) < 0.02


def test_ranges_draw_per_micrograph_values_and_keep_the_rest(tmp_path: Path) -> None:
    vary = {"dose": (10.0, 60.0), "pixel_size": (0.6, 2.5)}
    varied = simulate_dataset(tmp_path / "a", 4, 48, seed=5, vary=vary)
    again = simulate_dataset(tmp_path / "b", 4, 48, seed=5, vary=vary)
    simulate_dataset(tmp_path / "c", 4, 48, seed=5)  # same seeds, nothing varied
    records = json.loads((tmp_path / "a" / "simulation.json").read_text())["micrographs"]
    doses = [r["dose"] for r in records]
    assert all(10 <= d <= 60 for d in doses) and len(set(doses)) == 4
    for record, path in zip(records, varied.noisy_paths, strict=True):
        with mrcfile.open(path) as mrc:  # each file carries its own pixel size
            assert float(mrc.voxel_size.x) == pytest.approx(record["pixel_size"], abs=1e-3)
    for a, b in zip(varied.noisy_paths, again.noisy_paths, strict=True):
        assert np.array_equal(mrcfile.read(a), mrcfile.read(b))  # reproducible
    plain_records = json.loads((tmp_path / "c" / "simulation.json").read_text())["micrographs"]
    assert [r["defocus_um"] for r in records] == [r["defocus_um"] for r in plain_records]
    with pytest.raises(ConfigError, match="cannot vary 'particle_kinds'"):
        simulate_dataset(tmp_path / "d", 1, 32, vary={"particle_kinds": (0, 1)})
    with pytest.raises(ConfigError, match="low <= high"):
        simulate_dataset(tmp_path / "e", 1, 32, vary={"dose": (60, 10)})
