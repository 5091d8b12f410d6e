"""Image formation for the simulator: CTF, ice and carbon, absorption, electron counting."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy import fft as sfft

if TYPE_CHECKING:
    from .params import SimulationParams

_CARBON_POTENTIAL = 1.5  # V, carbon film (with its thin ice) above the ice in the hole
_ICE_FREE_PATH = 3500.0  # Å, inelastic mean free path of 300 kV electrons in ice
_CARBON_FREE_PATH = 1700.0  # Å, the same in amorphous carbon
_TEXTURE_SIGMA = 2.0  # Å, correlation length of the ice/carbon structural noise
_CARBON_TEXTURE = 3.0  # carbon's structural noise relative to the ice's

def electron_wavelength(voltage: float) -> float:
    """Relativistic electron wavelength in Å at ``voltage`` kV (0.0197 Å at 300 kV)."""
    volts = voltage * 1e3
    return 12.2643 / math.sqrt(volts * (1.0 + 0.978466e-6 * volts))


def interaction_constant(voltage: float) -> float:
    """Phase shift per projected potential, rad/(V·Å) (6.5e-4 at 300 kV)."""
    volts, rest_energy = voltage * 1e3, 510998.95
    relativistic = (rest_energy + volts) / (2 * rest_energy + volts)
    return 2 * math.pi / (electron_wavelength(voltage) * volts) * relativistic


def frequencies(shape: tuple[int, int], px: float) -> tuple[np.ndarray, np.ndarray]:
    """|k|² (1/Å²) and the azimuth of the rfft2 grid."""
    ky = sfft.fftfreq(shape[0], d=px).astype(np.float32)[:, None]
    kx = sfft.rfftfreq(shape[1], d=px).astype(np.float32)[None, :]
    return ky**2 + kx**2, np.arctan2(ky, kx)


def gaussian_ft(k2: np.ndarray, sigma: float) -> np.ndarray:
    """Return the Fourier transform of a unit-integral Gaussian (std ``sigma`` Å) at |k|²."""
    return np.exp(np.float32(-2 * math.pi**2 * sigma**2) * k2)


def ctf(
    params: SimulationParams,
    k2: np.ndarray,
    angle: np.ndarray,
    defocus: float,
    astig: float,
    astig_angle: float,
) -> np.ndarray:
    """Phase-contrast transfer -sin(χ + asin(A)) times the B-factor envelope (negative at k=0)."""
    lam, cs = electron_wavelength(params.voltage), params.cs * 1e7
    df = 1e4 * (defocus + 0.5 * astig * np.cos(2 * (angle - astig_angle)))
    chi = math.pi * lam * df * k2 - 0.5 * math.pi * cs * lam**3 * k2**2
    envelope = np.exp(-params.b_factor / 4 * k2)
    return (-np.sin(chi + math.asin(params.amplitude_contrast)) * envelope).astype(np.float32)


def texture_phase_ft(
    params: SimulationParams, rng: np.random.Generator, carbon: np.ndarray | None, k2: np.ndarray
) -> np.ndarray:
    """rfft2 of the structural phase noise of ice (and carbon), plus carbon's mean phase."""
    # the real grid behind k2: an odd width is only known from the carbon mask (when there is
    # none, an even width of the same rfft grid is as good: the texture is white and periodic)
    shape = carbon.shape if carbon is not None else (k2.shape[0], 2 * (k2.shape[1] - 1))
    blur = gaussian_ft(k2, _TEXTURE_SIGMA)
    gain = params.ice_texture / math.sqrt(float(np.mean(blur**2)))  # rms after blur = ice_texture
    field = rng.standard_normal(shape, dtype=np.float32) * np.float32(gain)
    if carbon is not None:
        field *= 1 + _CARBON_TEXTURE * carbon
        step = interaction_constant(params.voltage) * _CARBON_POTENTIAL * params.carbon_thickness
        field += step * carbon  # the film's mean phase: Fresnel fringes at its edge
    return sfft.rfft2(field, workers=1) * blur


def carbon_mask(
    params: SimulationParams, rng: np.random.Generator, shape: tuple[int, int]
) -> np.ndarray | None:
    """1 on carbon film, 0 in the hole, with a soft edge of a large circular hole; or None."""
    if rng.uniform() >= params.carbon_edge_probability:
        return None
    size = max(shape)
    radius = rng.uniform(1.5, 4.0) * size  # hole much larger than the field of view
    direction = rng.uniform(0, 2 * np.pi)
    reach = rng.uniform(0.15, 0.45) * size  # how far the carbon reaches into the field
    centre = np.array(shape) / 2 - (radius - size / 2 + reach) * np.array(
        [np.sin(direction), np.cos(direction)]
    )
    y, x = np.ogrid[: shape[0], : shape[1]]
    distance = np.sqrt((y - centre[0]) ** 2 + (x - centre[1]) ** 2) - radius
    edge = max(1.0, 20.0 / params.pixel_size)
    return (0.5 * (1 + np.tanh(distance / edge))).astype(np.float32)


def absorption(
    params: SimulationParams,
    rng: np.random.Generator,
    carbon: np.ndarray | None,
    shape: tuple[int, int],
) -> np.ndarray:
    """Relative transmission of the ice-thickness variation and the carbon film (mean ≈ 1)."""
    field = smooth_field(rng, shape)
    excess = params.ice_thickness * params.ice_thickness_variation * field  # Å
    absorption = np.exp(-excess / _ICE_FREE_PATH)
    if carbon is not None:
        absorption *= np.exp(-params.carbon_thickness / _CARBON_FREE_PATH * carbon)
    return absorption


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], modes: int = 3) -> np.ndarray:
    """Random field of unit standard deviation varying over a few cycles per field of view."""
    spectrum = np.zeros((shape[0], shape[1] // 2 + 1), np.complex128)
    rows = np.r_[0:modes, shape[0] - modes + 1 : shape[0]]
    noise = rng.standard_normal((len(rows), modes, 2)) @ np.array([1, 1j])
    spectrum[rows[:, None], np.arange(modes)] = noise
    spectrum[0, 0] = 0
    field = sfft.irfft2(spectrum, s=shape, workers=1)
    return field / max(float(field.std()), 1e-12)


def expose(
    truth: np.ndarray, dose: float, params: SimulationParams, rng: np.random.Generator
) -> np.ndarray:
    """Count electrons: Poisson shot noise at ``dose`` e⁻/Å² plus Gaussian read noise."""
    electrons = dose * params.pixel_size**2
    counts = rng.poisson(truth.astype(np.float64) * electrons)
    noisy = counts / electrons + params.read_noise * rng.standard_normal(truth.shape)
    return noisy.astype(np.float32)


