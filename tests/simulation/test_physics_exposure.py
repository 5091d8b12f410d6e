"""The exposure stage of the physics-grade simulator: counting, detector, drift, dose weighting.

Every test reads the noise as ``noisy - truth``: the truth is the noise-free image through the same
pipeline, so whatever colour the noise has comes from the pipeline, and the tests check it.
"""

from __future__ import annotations

import dataclasses

import mrcfile
import numpy as np
import pytest

from napari_cryoden.config.sections import ConfigError
from napari_cryoden.simulation.micrographs import simulate_exposure
from napari_cryoden.simulation.params import SimulationParams
from napari_cryoden.simulation.physics.contract import NoiseFreeImage
from napari_cryoden.simulation.physics.detector import detector_filters
from napari_cryoden.simulation.physics.exposure import expose_drawn, expose_movie
from napari_cryoden.simulation.physics.exposure_params import ExposureParams
from napari_cryoden.simulation.physics.exposure_spectrum import poisson_level, radial_noise_power

PLAIN = dict(dose=(40.0, 40.0), frames=(8, 8), detectors=("perfect",), drift=(0.0, 0.0),
             jitter=0.0, alignment_error=0.0, interpolations=("fourier",), dose_weighting=False)


@pytest.fixture(scope="module")
def noise_free() -> NoiseFreeImage:
    shot = simulate_exposure(SimulationParams(pixel_size=1.0), np.random.default_rng(3), 128)
    return NoiseFreeImage(shot.truth, 1.0, shot.defocus, shot.astigmatism, 0.0,
                          shot.particle_centres, shot.particle_kinds, shot.carbon)


def exposed(noise_free: NoiseFreeImage, seed: int = 0, **changes: object):
    params = ExposureParams(**{**PLAIN, **changes})  # type: ignore[arg-type]
    return expose_movie(noise_free, params, np.random.default_rng(seed))


def high(power: np.ndarray) -> float:
    """Mean power over the top quarter of frequencies (0.375–0.5 cycles per pixel)."""
    return float(power[-4:].mean())


def test_counting_alone_gives_white_noise_at_the_poisson_level(noise_free) -> None:
    shot = exposed(noise_free)
    _, power = radial_noise_power(shot.noisy - shot.truth, bins=8)
    level = poisson_level(float(noise_free.image.mean()), 40.0, 1.0)
    assert np.all(np.abs(power[1:] / level - 1) < 0.1), power / level  # shell 0: ~100 modes
    assert power[:4].mean() == pytest.approx(power[4:].mean(), rel=0.08)
    assert float(np.var(shot.noisy - shot.truth)) == pytest.approx(level, rel=0.03)
    assert float(shot.noisy.mean()) == pytest.approx(float(noise_free.image.mean()), rel=0.01)


def test_bilinear_drift_correction_lowers_high_frequency_noise(noise_free) -> None:
    drift = dict(drift=(4.0, 4.0), jitter=0.2)
    _, fourier = radial_noise_power(*_noise(exposed(noise_free, **drift)), bins=16)
    _, bilinear = radial_noise_power(
        *_noise(exposed(noise_free, interpolations=("bilinear",), **drift)), bins=16)
    assert high(bilinear) < 0.75 * high(fourier)
    assert bilinear[:3].mean() == pytest.approx(fourier[:3].mean(), rel=0.15)  # low band kept


def test_unnormalised_dose_weighting_lowers_high_frequency_noise(noise_free) -> None:
    _, plain = radial_noise_power(*_noise(exposed(noise_free)), bins=16)
    weighted = exposed(noise_free, dose_weighting=True, weight_normalisation="none")
    _, noise = radial_noise_power(*_noise(weighted), bins=16)
    assert high(noise) < 0.5 * high(plain)
    assert float(weighted.noisy.mean()) == pytest.approx(float(noise_free.image.mean()), rel=0.01)
    np.testing.assert_allclose(weighted.even + weighted.odd, weighted.noisy, atol=1e-5)


def test_power_normalised_dose_weighting_keeps_the_noise_power_and_raises_the_signal(
        noise_free) -> None:
    """RELION's and MotionCor's normalisation: white noise stays white, damaged signal gains."""
    plain, weighted = exposed(noise_free), exposed(noise_free, dose_weighting=True)
    _, noise_plain = radial_noise_power(*_noise(plain), bins=16)
    _, noise_weighted = radial_noise_power(*_noise(weighted), bins=16)
    assert high(noise_weighted) == pytest.approx(high(noise_plain), rel=0.15)
    _, signal_plain = radial_noise_power(plain.truth, bins=16)
    _, signal_weighted = radial_noise_power(weighted.truth, bins=16)
    assert high(signal_weighted) > 1.5 * high(signal_plain)


def test_even_plus_odd_is_the_sum_and_their_noises_are_independent(noise_free) -> None:
    shot = exposed(noise_free, detectors=("k3",), interpolations=("bilinear",), drift=(3.0, 3.0))
    np.testing.assert_allclose(shot.even + shot.odd, shot.noisy, atol=1e-5)
    np.testing.assert_allclose(shot.truth_even + shot.truth_odd, shot.truth, atol=1e-5)
    r = np.corrcoef((shot.even - shot.truth_even).ravel(), (shot.odd - shot.truth_odd).ravel())
    assert abs(r[0, 1]) < 0.04
    assert float(shot.even.mean()) == pytest.approx(float(shot.noisy.mean()) / 2, rel=0.02)


def test_same_seed_same_micrograph_other_seed_other_noise(noise_free) -> None:
    changes = dict(detectors=("k2", "k3"), interpolations=("bicubic", "bilinear"),
                   drift=(1.0, 4.0), dose_weighting=True)
    first, again = exposed(noise_free, 5, **changes), exposed(noise_free, 5, **changes)
    other = exposed(noise_free, 6, **changes)
    for name in ("noisy", "even", "odd", "truth"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.allclose(first.noisy, other.noisy)


def test_truth_is_the_mean_over_noise_realisations(noise_free) -> None:
    """The truth passed through every step: averaging the noise away leaves it, and no bias."""
    params = ExposureParams(**{**PLAIN, "detectors": ("k2",), "interpolations": ("bilinear",),
                               "drift": (3.0, 3.0), "jitter": 0.2, "alignment_error": 0.3,
                               "dose_weighting": True, "binning": 1.5})
    drawn = params.draw(np.random.default_rng(0), noise_free.pixel_size)
    shots = [expose_drawn(noise_free, drawn, np.random.default_rng(s)) for s in range(24)]
    mean = np.mean([s.noisy for s in shots], axis=0)
    noise_var = np.mean([np.var(s.noisy - s.truth) for s in shots])
    assert shots[0].noisy.shape == (85, 85) and shots[0].pixel_size == pytest.approx(128 / 85)
    assert float(np.mean((mean - shots[0].truth) ** 2)) == pytest.approx(noise_var / 24, rel=0.2)


def test_detector_mtf_colours_the_noise_as_its_dqe_says(noise_free) -> None:
    mtf, sqrt_nps = detector_filters("falcon4ec", 300.0, (64, 64))
    assert mtf[0, 0] == pytest.approx(1.0, abs=1e-3) and sqrt_nps[0, 0] == pytest.approx(1.0,
                                                                                         abs=1e-3)
    shot = exposed(noise_free, detectors=("falcon4ec",))
    _, power = radial_noise_power(*_noise(shot), bins=16)
    assert high(power) < 0.2 * power[:2].mean()  # Falcon 4's MTF falls below the sinc


def test_raw_frames_stream_to_an_mrc_stack_that_sums_to_the_micrograph(noise_free,
                                                                       tmp_path) -> None:
    params = ExposureParams(**PLAIN)  # type: ignore[arg-type]
    shot = expose_movie(noise_free, params, np.random.default_rng(0), tmp_path / "movie.mrcs")
    with mrcfile.open(tmp_path / "movie.mrcs") as mrc:
        assert mrc.data.shape == (8, 128, 128)
        np.testing.assert_allclose(mrc.data.sum(axis=0), shot.noisy, atol=1e-4)


def test_params_round_trip_and_refuse_bad_values() -> None:
    params = ExposureParams(detectors=("k3",), binning=2.0)
    assert ExposureParams.from_dict(params.to_dict()) == params
    bad = [dict(dose=(60.0, 15.0)), dict(dose=(0.0, 10.0)), dict(frames=(1, 4)),
           dict(detectors=("k9",)), dict(interpolations=("lanczos",)), dict(binning=0.5),
           dict(voltage=120.0), dict(weight_normalisation="max")]
    for changes in bad:
        with pytest.raises(ConfigError, match="exposure"):
            dataclasses.replace(params, **changes)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown"):
        ExposureParams.from_dict({"dose_rate": 3})


def _noise(shot) -> tuple[np.ndarray]:
    return (shot.noisy - shot.truth,)
