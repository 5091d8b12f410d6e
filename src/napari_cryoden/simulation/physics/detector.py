"""Direct electron detectors in counting mode: the MTF of the signal and the colour of the noise.

The MTF is the measured curve RELION and Gatan publish, as shipped in ``ttsim3d/data`` and read
with ``starfile``. The DQE is a parametric approximation: the shape of an *ideal* counting
detector, ``DQE(f) = DQE(0) · sinc²(π f)`` (f in cycles per pixel; McMullan et al. 2009,
Ultramicroscopy 109:1144 — a counted event is a delta smeared over one square pixel), times the
detector's ``DQE(0)``. The noise power spectrum then follows from the definition of the DQE,
``NPS(f) = MTF(f)² / DQE(f) · DQE(0)``, normalised so that ``NPS(0) = 1`` (the Poisson variance
of the counted electrons). Where a detector's MTF falls below the sinc its noise falls too.
Frequencies beyond Nyquist (the corners of the 2D spectrum) take the values at Nyquist.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...config.sections import ConfigError

__all__ = ["DETECTORS", "Detector", "detector_filters", "radial_frequency"]


@dataclass(frozen=True)
class Detector:
    """A detector: its MTF files by voltage (kV) in ``ttsim3d/data``, and its DQE(0)."""

    mtf_files: dict[float, str]
    dqe0: float


DETECTORS: dict[str, Detector] = {
    "perfect": Detector({}, 1.0),  # MTF 1 and white noise: Poisson counting alone
    "k3": Detector({300.0: "mtf_k3_standard_300kV_FL2.star",
                    200.0: "mtf_k3_standard_200kV_FL2.star"}, 0.85),
    "k2": Detector({300.0: "mtf_k2_300kV.star", 200.0: "mtf_k2_200kV_FL2.star"}, 0.8),
    "falcon4ec": Detector({300.0: "mtf_falcon4EC_300kV.star",
                           200.0: "mtf_falcon4EC_200kV.star"}, 0.85),
}
"""Counting detectors by name. DQE(0) values are typical published figures, only reported."""


def radial_frequency(shape: tuple[int, int]) -> np.ndarray:
    """``|f|`` in cycles per pixel on the ``rfft2`` grid of an image of ``shape``."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    return np.sqrt(fy * fy + fx * fx)


def mtf_curve(name: str, voltage: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the measured MTF of detector ``name`` at ``voltage`` kV: (cycles per pixel, MTF)."""
    import starfile

    detector = DETECTORS[name]
    if voltage not in detector.mtf_files:
        raise ConfigError(f"exposure: no MTF of {name} at {voltage:g} kV")
    spec = importlib.util.find_spec("ttsim3d")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("exposure: the detector MTFs come from ttsim3d; install the "
                          "'physics' extra")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / detector.mtf_files[voltage]
    table = starfile.read(path)
    return (table["rlnResolutionInversePixel"].to_numpy(float),
            table["rlnMtfValue"].to_numpy(float))


def detector_filters(name: str, voltage: float, shape: tuple[int, int]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(MTF, √NPS)`` of detector ``name`` on the ``rfft2`` grid of an image of ``shape``."""
    f = np.minimum(radial_frequency(shape), 0.5)
    if name == "perfect":
        ones = np.ones(f.shape, np.float32)
        return ones, ones
    freq, values = mtf_curve(name, voltage)
    mtf = np.interp(f, freq, values)
    dqe_shape = np.sinc(f) ** 2  # np.sinc(f) = sin(πf)/(πf); DQE(f)/DQE(0)
    nps = mtf * mtf / dqe_shape
    return mtf.astype(np.float32), np.sqrt(nps).astype(np.float32)
