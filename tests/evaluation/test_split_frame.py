"""Split-frame SNR against the truth of simulated movies (issue 15).

The truth SNR of a denoised half ``D`` with noise-free signal ``S`` (``truth / 2``) is, per
patch, ``var(α·S) / var(D − α·S)`` with ``α·S`` the least-squares projection of ``D`` on ``S``
(its signal part; the residual holds the noise and whatever the filter distorted), i.e.
``r²/(1 − r²)`` with ``r = CC(D, S)``, ``r`` averaged over patches as the estimator averages.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_cryoden.evaluation.frc import ring_sums
from napari_cryoden.evaluation.split_frame import (
    db,
    patch_moments,
    pool_split_frame,
    snr_against_truth,
    split_frame_snr,
)
from napari_cryoden.simulation.micrographs import simulate_exposure
from napari_cryoden.simulation.movies import expose_frames
from napari_cryoden.simulation.params import SimulationParams

CONTRAST = 3.0  # raw half SNR -21 … -10 dB over these doses: estimable on 4 × 512² pixels


def _halves(dose: float, n: int = 4, size: int = 512) -> list[tuple[np.ndarray, ...]]:
    """(even, odd, signal) of ``n`` two-frame movies; signal = truth / 2, one half's expectation."""
    params = SimulationParams(dose=dose, contrast_scale=CONTRAST)
    out = []
    for i in range(n):
        rng = np.random.default_rng(i)
        shot = simulate_exposure(params, rng, size)
        even, odd = expose_frames(shot.truth, dose, 2, params, rng)
        out.append((even.astype(np.float64), odd.astype(np.float64), shot.truth / 2.0))
    return out


def _estimate_and_truth(data: list[tuple[np.ndarray, ...]], sigma: float) -> tuple[object, float]:
    moments, denoised = [], []
    for even, odd, _ in data:
        de, do = (ndimage.gaussian_filter(h, sigma) for h in (even, odd))
        moments.append(patch_moments(even, odd, de, do))
        denoised.append(de)
    truth = snr_against_truth(denoised, [s for *_, s in data])
    return pool_split_frame(moments), truth


@pytest.fixture(scope="module")
def doses() -> dict[float, list[tuple[np.ndarray, ...]]]:
    return {dose: _halves(dose) for dose in (5.0, 10.0, 20.0, 40.0, 80.0)}


@pytest.mark.parametrize("dose", [10.0, 20.0, 40.0, 80.0])
def test_frank_estimate_matches_truth_within_1_db(doses, dose: float) -> None:
    estimate, truth = _estimate_and_truth(doses[dose], sigma=2.0)
    assert abs(db(estimate.snr_denoised_frank) - db(truth)) < 1.0


@pytest.mark.parametrize("dose", [5.0, 10.0, 20.0])
def test_ratio_formula_matches_truth_where_denoised_snr_is_low(doses, dose: float) -> None:
    """SNR_mixed² / SNR_raw_half estimates SNR/(1 + SNR): equal to the SNR below about −6 dB."""
    estimate, truth = _estimate_and_truth(doses[dose], sigma=1.0)
    assert db(truth) < -5.5
    assert abs(db(estimate.snr_denoised) - db(truth)) < 1.0
    assert estimate.snr_denoised > estimate.snr_raw_half  # a Gaussian raises the SNR


def test_ratio_formula_saturates_at_high_snr(doses) -> None:
    estimate, truth = _estimate_and_truth(doses[80.0], sigma=2.0)
    assert db(truth) > 3 and db(estimate.snr_denoised) < db(truth) - 2  # documented limit


def test_bias_ratio_grows_as_the_gaussian_widens(doses) -> None:
    ratios = [_estimate_and_truth(doses[40.0], sigma)[0].bias_ratio
              for sigma in (0.5, 1.0, 2.0, 4.0, 8.0)]
    assert ratios == sorted(ratios), ratios
    assert ratios[0] < 0.05 and ratios[-1] > 0.3


def test_identity_denoiser_changes_nothing() -> None:
    even, odd, _ = _halves(20.0, n=1, size=256)[0]
    result = split_frame_snr(even, odd, even, odd, patch_size=128)
    assert result.snr_denoised == pytest.approx(result.snr_raw_half)
    assert result.var_b == pytest.approx(0.0, abs=1e-12)
    assert result.gain_db == pytest.approx(0.0, abs=1e-9)
    assert result.to_json()["n_patches"] == 4


def test_per_frequency_transfer_follows_the_gaussian() -> None:
    even, odd, _ = _halves(40.0, n=1, size=512)[0]
    sigma = 2.0
    de, do = (ndimage.gaussian_filter(h, sigma) for h in (even, odd))
    frequency = ring_sums(even, odd, de, do).result()
    measured = ~np.isnan(frequency.transfer)
    assert measured.sum() >= 5
    expected = np.exp(-2 * (np.pi * sigma * frequency.frequency) ** 2)
    np.testing.assert_allclose(frequency.transfer[measured], expected[measured], atol=0.1)
    identity = ring_sums(even, odd, even, odd).result()
    ok = ~np.isnan(identity.snr_denoised)
    np.testing.assert_allclose(identity.snr_denoised[ok], identity.snr_raw[ok])


def test_mismatched_shapes_are_refused() -> None:
    a = np.zeros((64, 64))
    with pytest.raises(ValueError, match="one shape"):
        split_frame_snr(a, a, a, np.zeros((64, 32)))
