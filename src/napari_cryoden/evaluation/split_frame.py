"""Split-frame SNR: how much a denoiser raised the signal-to-noise ratio, without a clean image.

The even and odd frame sums ``Re``, ``Ro`` of a movie are two exposures of the same signal ``S``
with independent noise. A denoiser that never saw the micrograph turns each half into ``De``,
``Do``. Frank & Al-Ali (1975) relate correlations to SNR (``SNR = CC / (1 − CC)``); Bepler et al.
(2020, Topaz-Denoise) and Palovcak et al. (2020) estimate the denoised SNR as
``SNR_mixed² / SNR_raw_half`` with ``SNR_raw_half`` from ``CC(Re, Ro)`` and ``SNR_mixed`` the mean
of ``CC/(1 − CC)`` over ``(De, Ro)`` and ``(Re, Do)``. Correlations and covariances are computed
per patch (means removed per patch) and averaged over patches.

The honesty terms say where the SNR came from: ``var_S = cov(Re, Ro)`` is the signal's
variance, ``var(De) − cov(De, Do)`` the noise left in a denoised half, and
``var_B = cov(De, Do) + var_S − 2·cov(De, Ro)`` the variance of ``E[De] − S``, the signal the
denoiser distorted or erased; ``var_B / var_S`` grows as a filter smooths signal away.
See docs/metrics.md ("Quality without ground truth").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .metrics import patch_grid

__all__ = ["PatchMoments", "SplitFrameSNR", "snr_from_cc", "db", "patch_moments",
           "split_frame_snr", "pool_split_frame", "snr_against_truth"]

# the four images, in the order of the moments' pairs
_PAIRS = (("re", "ro"), ("de", "ro"), ("re", "do"), ("de", "do"), ("de", "de"), ("do", "do"),
          ("re", "re"), ("ro", "ro"))


def snr_from_cc(cc: float) -> float:
    """Return Frank & Al-Ali's ``CC / (1 − CC)`` (``inf`` at ``CC = 1``)."""
    return math.inf if cc >= 1 else cc / (1.0 - cc)


def db(ratio: float) -> float:
    """Return ``10·log10(ratio)`` in dB (NaN for a ratio <= 0 or NaN)."""
    return 10.0 * math.log10(ratio) if ratio > 0 and math.isfinite(ratio) else (
        math.inf if ratio == math.inf else math.nan)


@dataclass(frozen=True)
class PatchMoments:
    """Per-patch covariances of the four images, one row per patch (means removed per patch).

    ``cov`` maps a pair name such as ``"de,ro"`` to an array with one value per patch.
    """

    cov: dict[str, np.ndarray]

    @property
    def n_patches(self) -> int:
        """Number of patches."""
        return int(next(iter(self.cov.values())).size)

    def cc(self, a: str, b: str) -> np.ndarray:
        """Pearson correlation of images ``a`` and ``b`` in every patch."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.cov[f"{a},{b}"] / np.sqrt(self.cov[f"{a},{a}"] * self.cov[f"{b},{b}"])

    @staticmethod
    def join(parts: Sequence[PatchMoments]) -> PatchMoments:
        """Concatenate the patches of several micrographs."""
        return PatchMoments({k: np.concatenate([p.cov[k] for p in parts]) for k in parts[0].cov})


def patch_moments(even: np.ndarray, odd: np.ndarray, denoised_even: np.ndarray,
                  denoised_odd: np.ndarray, patch_size: int = 256,
                  boxes: Sequence[tuple[int, int]] | None = None) -> PatchMoments:
    """Return the covariances of the even/odd halves and their denoised versions per patch.

    Parameters
    ----------
    even, odd
        The raw half sums ``Re``, ``Ro`` of one micrograph, 2D arrays of one shape.
    denoised_even, denoised_odd
        ``De``, ``Do``: each half denoised on its own.
    patch_size
        Edge of the square patches (:func:`~napari_cryoden.evaluation.metrics.patch_grid`).
    boxes
        The ``(y, x)`` top-left corners of the patches to use (e.g. the held-out patches of an
        adaptation); None: the whole grid.
    """
    images = {"re": even, "ro": odd, "de": denoised_even, "do": denoised_odd}
    shapes = {name: np.shape(a) for name, a in images.items()}
    if len(set(shapes.values())) != 1 or np.ndim(even) != 2:
        raise ValueError(f"split-frame SNR needs four 2D images of one shape, got {shapes}")
    cov: dict[str, list[float]] = {f"{a},{b}": [] for a, b in _PAIRS}
    for y, x in patch_grid(even.shape, patch_size) if boxes is None else boxes:
        box = {k: np.asarray(v[y:y + patch_size, x:x + patch_size], np.float64)
               for k, v in images.items()}
        box = {k: v - v.mean() for k, v in box.items()}
        for a, b in _PAIRS:
            cov[f"{a},{b}"].append(float(np.mean(box[a] * box[b])))
    return PatchMoments({k: np.asarray(v) for k, v in cov.items()})


@dataclass(frozen=True)
class SplitFrameSNR:
    """The split-frame SNR of one micrograph, or pooled over several (``file`` is ``None``).

    CC values are means over patches; ``snr_*`` are ratios (``*_db`` in dB); ``var_s``,
    ``residual_noise`` and ``var_b`` are means over patches, in the images' units squared.
    ``snr_denoised_frank`` is ``ρ / (1 − ρ)`` with ``ρ = CC_mixed² / CC_raw`` (Frank & Al-Ali's
    exact relation for images of unequal SNR; the ratio formula approximates it at low SNR).
    """

    file: str | None
    n_patches: int
    cc_raw: float
    cc_mixed: float
    snr_raw_half: float
    snr_mixed: float
    snr_denoised: float
    snr_denoised_frank: float
    var_s: float
    residual_noise: float
    var_b: float

    @property
    def bias_ratio(self) -> float:
        """``var_B / var_S``: the fraction of the signal's variance the denoiser distorted."""
        return self.var_b / self.var_s if self.var_s > 0 else math.nan

    @property
    def gain_db(self) -> float:
        """Denoised minus raw split-frame SNR, dB."""
        return db(self.snr_denoised) - db(self.snr_raw_half)

    @classmethod
    def from_moments(cls, moments: PatchMoments, file: str | None = None) -> SplitFrameSNR:
        """Compute the SNR and honesty terms from per-patch covariances."""
        mean = lambda values: float(np.nanmean(values))  # noqa: E731
        cc_raw = mean(moments.cc("re", "ro"))
        mixed = (mean(moments.cc("de", "ro")), mean(moments.cc("re", "do")))
        snr_raw = snr_from_cc(cc_raw)
        snr_mixed = float(np.mean([snr_from_cc(c) for c in mixed]))
        cc_mixed = float(np.mean(mixed))
        rho = cc_mixed**2 / cc_raw if cc_raw > 0 else math.nan
        c = {k: mean(v) for k, v in moments.cov.items()}
        var_s = c["re,ro"]
        noise = 0.5 * (c["de,de"] + c["do,do"]) - c["de,do"]
        cross = 0.5 * (c["de,ro"] + c["re,do"])
        return cls(file=file, n_patches=moments.n_patches, cc_raw=cc_raw, cc_mixed=cc_mixed,
                   snr_raw_half=snr_raw, snr_mixed=snr_mixed,
                   snr_denoised=snr_mixed**2 / snr_raw if snr_raw > 0 else math.nan,
                   snr_denoised_frank=snr_from_cc(rho) if rho == rho else math.nan,
                   var_s=var_s, residual_noise=noise, var_b=c["de,do"] + var_s - 2 * cross)

    def to_json(self) -> dict[str, Any]:
        """Return the fields, the dB values, ``gain_db`` and ``bias_ratio`` as a JSON mapping.

        Returns
        -------
        dict
            Every field, ``snr_raw_half_db``, ``snr_denoised_db``, ``snr_denoised_frank_db``,
            ``gain_db`` and ``bias_ratio``.
        """
        head = {} if self.file is None else {"file": self.file}
        body = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "file"}
        return {**head, **body, "snr_raw_half_db": db(self.snr_raw_half),
                "snr_denoised_db": db(self.snr_denoised),
                "snr_denoised_frank_db": db(self.snr_denoised_frank), "gain_db": self.gain_db,
                "bias_ratio": self.bias_ratio}


def split_frame_snr(even: np.ndarray, odd: np.ndarray, denoised_even: np.ndarray,
                    denoised_odd: np.ndarray, *, patch_size: int = 256,
                    file: str | None = None) -> SplitFrameSNR:
    """Estimate the split-frame SNR of one micrograph from its raw and denoised halves.

    Parameters
    ----------
    even, odd
        The raw even and odd frame sums ``Re``, ``Ro`` (2D, one shape).
    denoised_even, denoised_odd
        ``De``, ``Do``: each half denoised separately, by a model that never saw them.
    patch_size
        Edge of the patches over which correlations are computed and then averaged.
    file
        The micrograph's name, kept in the result.

    Returns
    -------
    SplitFrameSNR
        SNRs (ratio and dB) and the honesty terms ``var_s``, ``residual_noise``, ``var_b``.
    """
    return SplitFrameSNR.from_moments(
        patch_moments(even, odd, denoised_even, denoised_odd, patch_size), file)


def pool_split_frame(moments: Sequence[PatchMoments]) -> SplitFrameSNR:
    """Return the split-frame SNR over the patches of several micrographs together.

    Parameters
    ----------
    moments
        :func:`patch_moments` of each micrograph.

    Returns
    -------
    SplitFrameSNR
        With ``file=None``: every patch of every micrograph weighs the same.
    """
    if not moments:
        raise ValueError("pool_split_frame needs the moments of at least one micrograph")
    return SplitFrameSNR.from_moments(PatchMoments.join(moments))


def snr_against_truth(images: Sequence[np.ndarray], signals: Sequence[np.ndarray],
                      patch_size: int = 256) -> float:
    """Return the true SNR of images whose noise-free signal is known (simulations).

    In each patch (means removed) an image ``D`` splits into its signal part ``α·S``, the
    least-squares projection on the noise-free ``S``, and the residual ``D − α·S`` (noise plus
    whatever the denoiser distorted). ``var(α·S) / var(D − α·S) = r² / (1 − r²)`` with
    ``r = CC(D, S)``; ``r`` is averaged over the patches of all images, as the split-frame
    estimate averages its correlations, and the SNR is ``r̄² / (1 − r̄²)``.

    Parameters
    ----------
    images
        The (denoised or raw) images.
    signals
        The noise-free image of each, in any units (e.g. ``truth / 2`` for a half sum).
    patch_size
        As for :func:`split_frame_snr`.

    Returns
    -------
    float
        The SNR as a ratio (:func:`db` gives dB).
    """
    ccs = []
    for image, signal in zip(images, signals, strict=True):
        for y, x in patch_grid(np.shape(image), patch_size):
            d = np.asarray(image[y:y + patch_size, x:x + patch_size], np.float64).ravel()
            s = np.asarray(signal[y:y + patch_size, x:x + patch_size], np.float64).ravel()
            ccs.append(float(np.corrcoef(d, s)[0, 1]))
    r2 = float(np.nanmean(ccs)) ** 2
    return snr_from_cc(r2) if r2 < 1 else math.inf
