"""Split-frame SNR estimates against the truth of simulated movies, and var_B/var_S per Gaussian.

Prints the tables of docs/quality-without-truth.md (the same data as
tests/evaluation/test_split_frame.py: four 512² two-frame movies per dose, contrast scale 3):

    python benchmarks/split_frame_truth.py
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_cryoden.evaluation.split_frame import (
    db,
    patch_moments,
    pool_split_frame,
    snr_against_truth,
)
from napari_cryoden.simulation.micrographs import simulate_exposure
from napari_cryoden.simulation.movies import expose_frames
from napari_cryoden.simulation.params import SimulationParams


def halves(dose: float, n: int = 4, size: int = 512) -> list[tuple[np.ndarray, ...]]:
    """(even, odd, truth / 2) of ``n`` two-frame movies at ``dose``."""
    params = SimulationParams(dose=dose, contrast_scale=3.0)
    out = []
    for i in range(n):
        rng = np.random.default_rng(i)
        shot = simulate_exposure(params, rng, size)
        even, odd = expose_frames(shot.truth, dose, 2, params, rng)
        out.append((even.astype(np.float64), odd.astype(np.float64), shot.truth / 2.0))
    return out


def row(data: list[tuple[np.ndarray, ...]], sigma: float) -> tuple[float, ...]:
    """Raw, Topaz-formula, Frank, truth (dB) and var_B/var_S for a Gaussian of ``sigma``."""
    moments, denoised = [], []
    for even, odd, _ in data:
        de, do = (ndimage.gaussian_filter(h, sigma) for h in (even, odd))
        moments.append(patch_moments(even, odd, de, do))
        denoised.append(de)
    est = pool_split_frame(moments)
    truth = snr_against_truth(denoised, [s for *_, s in data])
    return (db(est.snr_raw_half), db(est.snr_denoised), db(est.snr_denoised_frank), db(truth),
            est.bias_ratio)


def main() -> None:
    """Print both tables."""
    print("dose  sigma  raw_half  SNR_mixed²/SNR_raw  Frank  truth  (dB)")
    for dose in (5.0, 10.0, 20.0, 40.0, 80.0):
        data = halves(dose)
        for sigma in (1.0, 2.0):
            raw, topaz, frank, truth, _ = row(data, sigma)
            print(f"{dose:4g}  {sigma:5g}  {raw:8.2f}  {topaz:18.2f}  {frank:5.2f}  {truth:5.2f}")
    data = halves(40.0)
    print("\nsigma  var_B/var_S  (dose 40)")
    for sigma in (0.5, 1.0, 2.0, 4.0, 8.0):
        print(f"{sigma:5g}  {row(data, sigma)[4]:.3f}")


if __name__ == "__main__":
    main()
