"""Draw docs/images/simulated_pair.png: a simulated noisy micrograph beside its clean target.

Top row: the whole noisy and clean micrographs and the clean one's power spectrum; bottom row:
a 256² crop of each at full resolution and the spectrum's radial profile with the CTF zeros
predicted for the micrograph's defocus. Run from the repository root::

    python benchmarks/make_simulator_figure.py [--seed S] [--size PX] [--no-carbon] [--out PNG]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from napari_cryoden.simulation.micrographs import (  # noqa: E402
    SimulatedMicrograph,
    SimulationParams,
    ctf_zero,
    simulate_exposure,
)

ROOT = Path(__file__).resolve().parents[1]
CROP = 256


def radial_power(image: np.ndarray, pixel_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotationally averaged power spectrum: spatial frequency (1/Å) and mean power."""
    n = min(image.shape)
    square = image[:n, :n].astype(np.float64)
    power = np.abs(np.fft.fft2(square - square.mean())) ** 2
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(n, pixel_size), np.fft.fftfreq(n, pixel_size)))
    rings = np.round(k * n * pixel_size).astype(int).ravel()
    profile = np.bincount(rings, power.ravel()) / np.maximum(np.bincount(rings), 1)
    return np.arange(len(profile)) / (n * pixel_size), profile


def make_figure(shot: SimulatedMicrograph, params: SimulationParams) -> plt.Figure:
    """Six panels: whole micrographs, their crops, the spectrum and its radial profile."""
    fig, axes = plt.subplots(2, 3, figsize=(15, 10.4), layout="constrained")
    lo, hi = np.percentile(shot.truth, [0.5, 99.5])
    noisy_limits = np.percentile(shot.noisy, [0.5, 99.5])
    crop = _crop_around_a_particle(shot)
    for row, region in enumerate((np.s_[:, :], crop)):
        axes[row, 0].imshow(shot.noisy[region], cmap="gray", vmin=noisy_limits[0],
                            vmax=noisy_limits[1])
        axes[row, 1].imshow(shot.clean[region], cmap="gray", vmin=lo, vmax=hi)
    where = f"defocus {shot.defocus:.2f} µm, {params.pixel_size:g} Å/px"
    axes[0, 0].set_title(f"noisy, {params.dose:g} e⁻/Å² ({where})")
    inside = (shot.particle_centres >= 0) & (shot.particle_centres < shot.clean.shape)
    axes[0, 1].set_title(f"clean (noise-free), {int(inside.all(axis=1).sum())} particle centres")
    axes[1, 0].set_title(f"noisy, a {CROP}² px crop at full resolution")
    axes[1, 1].set_title(f"clean, the same {CROP}² px")
    spectrum = np.fft.fftshift(np.abs(np.fft.fft2(shot.clean - shot.clean.mean())) ** 2)
    half = [slice(n // 4, n - n // 4) for n in spectrum.shape]  # up to half Nyquist
    axes[0, 2].imshow(np.log1p(spectrum[tuple(half)] / np.median(spectrum)), cmap="gray")
    axes[0, 2].set_title("power spectrum of clean (to half Nyquist): Thon rings")
    for ax in axes[:, :2].ravel().tolist() + [axes[0, 2]]:
        ax.set_axis_off()
    _profile_panel(axes[1, 2], shot, params)
    return fig


def _crop_around_a_particle(shot: SimulatedMicrograph) -> tuple[slice, slice]:
    """A CROP² window centred on the particle nearest the middle of the micrograph."""
    middle = np.array(shot.clean.shape) / 2
    distance = np.linalg.norm(shot.particle_centres - middle, axis=1)
    nearest = shot.particle_centres[np.argmin(distance)]
    y, x = np.clip(nearest.astype(int) - CROP // 2, 0, np.array(shot.clean.shape) - CROP)
    return slice(y, y + CROP), slice(x, x + CROP)


def _profile_panel(ax: plt.Axes, shot: SimulatedMicrograph, params: SimulationParams) -> None:
    k, profile = radial_power(shot.clean, params.pixel_size)
    keep = (k > 0.005) & (k < 0.5 / params.pixel_size)
    ax.semilogy(k[keep], profile[keep], lw=1, color="k", label="clean")
    for n in (1, 2, 3, 4):
        ax.axvline(ctf_zero(params, shot.defocus, n), color="tab:red", lw=0.8, ls="--",
                   label="predicted CTF zeros" if n == 1 else None)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("radially averaged power")
    ax.set_title("radial profile (astigmatism blurs the rings slightly)")
    ax.legend()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--no-carbon", action="store_true", help="no carbon edge in view")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "simulated_pair.png")
    args = parser.parse_args(argv)
    params = SimulationParams(carbon_edge_probability=0.0 if args.no_carbon else 1.0)
    shot = simulate_exposure(params, np.random.default_rng(args.seed), args.size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    make_figure(shot, params).savefig(args.out, dpi=64)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
