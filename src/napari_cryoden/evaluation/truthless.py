"""Quality without ground truth over a dataset: split-frame SNR and region-pair SNR from files.

:func:`split_frame_report` reads one (even, odd) pair of frame sums at a time, denoises each half
on its own with ``denoise`` (any ``image -> image`` function: a model, or a Gaussian filter), and
pools :mod:`.split_frame`'s patch statistics and :mod:`.frc`'s rings. The same halves filtered
by the Gaussian baseline give that baseline's split-frame numbers, so its ``var_B/var_S`` sits
beside the model's. With picks it also scores :mod:`.region_snr` on ``Re + Ro`` and
``De + Do``. :func:`region_report` does the region-pair SNR on whole micrographs.
Both return frozen dataclasses whose ``to_json()`` goes into ``cryoden evaluate``'s report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.pairs import find_half_pairs, half_stem
from ..errors import InputError
from ..io.images import read_image
from ..io.picks import Picks
from .baselines import gaussian_baseline
from .frc import FrequencySNR, RingSums, ring_sums
from .region_snr import DEFAULT_BASELINE_SIGMA, RegionComparison, region_snr_comparison
from .split_frame import PatchMoments, SplitFrameSNR, patch_moments, pool_split_frame

__all__ = ["SplitFrameReport", "SplitFrameSums", "RegionReport", "half_pairs", "split_frame_report",
           "region_report", "truthless_rows", "truthless_summary_lines", "TRUTHLESS_COLUMNS",
           "format_truthless", "measured_line"]

DenoiseFn = Callable[[np.ndarray], np.ndarray]
ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True)
class SplitFrameReport:
    """The model's split-frame SNR per micrograph and pooled, per frequency, and the baseline's."""

    micrographs: tuple[SplitFrameSNR, ...]
    pooled: SplitFrameSNR
    frequency: FrequencySNR
    baseline: SplitFrameSNR
    baseline_sigma: float
    patch_size: int

    def to_json(self) -> dict[str, Any]:
        """Return the report's ``split_frame`` block (docs/metrics.md).

        Returns
        -------
        dict
            ``pooled``, ``micrographs``, ``frequency``, ``gaussian`` (the baseline pooled, with
            ``sigma``) and ``patch_size``.
        """
        return {"pooled": self.pooled.to_json(),
                "micrographs": [m.to_json() for m in self.micrographs],
                "frequency": self.frequency.to_json(),
                "gaussian": {"sigma": self.baseline_sigma, **self.baseline.to_json()},
                "patch_size": self.patch_size}


@dataclass(frozen=True)
class RegionReport:
    """Region-pair SNR per micrograph and pooled over all pairs, with what it was scored on."""

    micrographs: tuple[RegionComparison, ...]
    pooled: RegionComparison
    images: str

    def to_json(self) -> dict[str, Any]:
        """Return the report's ``region_snr`` block: ``pooled``, ``micrographs``, ``images``.

        Returns
        -------
        dict
            ``images`` says which images were scored (e.g. ``"even + odd sums"``).
        """
        return {"pooled": self.pooled.to_json(), "images": self.images,
                "micrographs": [m.to_json() for m in self.micrographs]}


def half_pairs(even: str | os.PathLike[str],
               odd: str | os.PathLike[str]) -> list[tuple[Path, Path]]:
    """Pair even and odd sums: two folders by name (:func:`find_half_pairs`) or two files."""
    even, odd = Path(even), Path(odd)
    if even.is_dir() or odd.is_dir():
        return find_half_pairs(even, odd)
    for path in (even, odd):
        if not path.is_file():
            raise InputError(f"{path}: no such file or folder of frame sums")
    return [(even, odd)]


class SplitFrameSums:
    """Accumulate one micrograph's halves at a time into a :class:`SplitFrameReport`.

    Per micrograph it keeps the model's and the Gaussian baseline's patch covariances and adds
    the FRC ring sums, so a folder of 4k micrographs never sits in memory at once.
    :func:`split_frame_report` feeds it from files, Inspect from layers.
    """

    def __init__(self, patch_size: int = 256,
                 baseline_sigma: float = DEFAULT_BASELINE_SIGMA) -> None:
        self.patch_size, self.baseline_sigma = int(patch_size), float(baseline_sigma)
        self._moments: list[PatchMoments] = []
        self._base: list[PatchMoments] = []
        self._names: list[str | None] = []
        self._rings: RingSums | None = None

    def add(self, even: np.ndarray, odd: np.ndarray, denoised_even: np.ndarray,
            denoised_odd: np.ndarray, name: str | None = None) -> None:
        """Add one micrograph's halves ``Re``, ``Ro`` and their denoised ``De``, ``Do``."""
        sigma = self.baseline_sigma
        self._moments.append(patch_moments(even, odd, denoised_even, denoised_odd,
                                           self.patch_size))
        self._base.append(patch_moments(even, odd, gaussian_baseline(even, sigma),
                                        gaussian_baseline(odd, sigma), self.patch_size))
        self._names.append(name)
        step = ring_sums(even, odd, denoised_even, denoised_odd)
        self._rings = step if self._rings is None else self._rings + step

    def report(self, pixel_size: float | None = None) -> SplitFrameReport:
        """Return the report of every micrograph added (frequencies in 1/Å given a pixel size)."""
        if self._rings is None:
            raise InputError("split-frame SNR: no even/odd pairs given")
        return SplitFrameReport(
            tuple(SplitFrameSNR.from_moments(m, name)
                  for m, name in zip(self._moments, self._names, strict=True)),
            pool_split_frame(self._moments), self._rings.result(pixel_size),
            pool_split_frame(self._base), self.baseline_sigma, self.patch_size)


def split_frame_report(denoise: DenoiseFn, pairs: Sequence[tuple[Path, Path]], *,
                       patch_size: int = 256, baseline_sigma: float = DEFAULT_BASELINE_SIGMA,
                       picks: Mapping[str, Picks] | None = None, box_size: int | None = None,
                       progress: ProgressFn | None = None,
                       ) -> tuple[SplitFrameReport, RegionReport | None]:
    """Denoise each half of each pair; return the split-frame report (and region SNR with picks).

    Parameters
    ----------
    denoise
        ``denoise(image) -> image`` of one shape; called once per half.
    pairs
        ``(even, odd)`` file pairs (:func:`half_pairs`).
    patch_size
        Patch edge of the correlations.
    baseline_sigma
        Width (px) of the Gaussian baseline scored beside the model.
    picks
        Micrograph stem (the halves' shared name) → picks: also score the region-pair SNR.
    box_size
        Box edge of the region-pair SNR; default: the picks' own (``.box`` files).
    progress
        Called as ``progress(done, total, name)`` after each pair.
    """
    sums = SplitFrameSums(patch_size, baseline_sigma)
    regions: list[RegionComparison] = []
    pixel_size = None
    for done, (even_path, odd_path) in enumerate(pairs, start=1):
        (re, pixel_size), (ro, _) = read_image(even_path), read_image(odd_path)
        _check_halves(re, ro, even_path, odd_path)
        de, do = denoise(re), denoise(ro)
        name = half_stem(even_path)
        sums.add(re, ro, de, do, name)
        if picks and name in picks:
            regions.append(region_snr_comparison(re + ro, de + do, picks[name].xy,
                                                 _box(picks[name], box_size),
                                                 sigma=baseline_sigma, file=name))
        if progress is not None:
            progress(done, len(pairs), name)
    report = sums.report(pixel_size)
    return report, (_pool(regions, "even + odd sums") if picks else None)


def region_report(denoise: DenoiseFn, micrographs: Sequence[Path], picks: Mapping[str, Picks],
                  *, box_size: int | None = None, sigma: float = DEFAULT_BASELINE_SIGMA,
                  progress: ProgressFn | None = None) -> RegionReport:
    """Score the region-pair SNR of each micrograph that has picks, raw, denoised and low-passed.

    Parameters
    ----------
    denoise
        ``denoise(image) -> image``.
    micrographs
        Micrograph files; those without picks are skipped.
    picks
        Micrograph stem → picks (:func:`~napari_cryoden.io.picks.match_picks`).
    box_size
        Box edge, px; default the picks' own.
    sigma
        Width (px) of the Gaussian baseline.
    progress
        Called as ``progress(done, total, name)`` after each micrograph.
    """
    files = [m for m in micrographs if m.stem in picks]
    regions = []
    for done, path in enumerate(files, start=1):
        raw, _ = read_image(path)
        if raw.ndim != 2:
            raise InputError(f"{path}: region-pair SNR needs single micrographs, got a stack")
        regions.append(region_snr_comparison(raw, denoise(raw), picks[path.stem].xy,
                                             _box(picks[path.stem], box_size), sigma=sigma,
                                             file=path.stem))
        if progress is not None:
            progress(done, len(files), path.name)
    return _pool(regions, "micrographs")


def _pool(regions: list[RegionComparison], images: str) -> RegionReport:
    if not regions:
        raise InputError("region-pair SNR: no micrograph has picks")
    pooled = regions[0]
    for region in regions[1:]:
        pooled = pooled + region
    return RegionReport(tuple(regions), pooled, images)


def _box(picks: Picks, box_size: int | None) -> int:
    size = box_size or picks.box_size
    if not size:
        raise InputError(f"{picks.source}: the picks give no box size; pass --box-size")
    return int(round(size))


def _check_halves(even: np.ndarray, odd: np.ndarray, even_path: Path, odd_path: Path) -> None:
    if even.ndim != 2 or even.shape != odd.shape:
        raise InputError(f"{even_path}: shape {even.shape} does not match {odd_path} "
                         f"{odd.shape} (need two single micrographs of one shape)")


TRUTHLESS_COLUMNS = (("split SNR", "snr_denoised_db"), ("Frank SNR", "snr_denoised_frank_db"),
                     ("var_B/var_S", "bias_ratio"), ("region SNR", "region"))
"""The columns of :func:`truthless_rows`: (header, key)."""


def truthless_rows(report: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Return the raw, model and Gaussian rows of the split-frame and region-pair SNR.

    Parameters
    ----------
    report
        A report with a ``split_frame`` and/or ``region_snr`` block.

    Returns
    -------
    list of (str, dict)
        A label and the values by the keys of :data:`TRUTHLESS_COLUMNS` (missing: not measured),
        for the raw input, the model and the Gaussian baseline.
    """
    split = report.get("split_frame") or {}
    region = (report.get("region_snr") or {}).get("pooled") or {}
    pooled, gauss = split.get("pooled") or {}, split.get("gaussian") or {}
    sigma = gauss.get("sigma", region.get("gaussian_sigma"))
    return [("raw", {"snr_denoised_db": pooled.get("snr_raw_half_db"),
                     "region": region.get("snr_raw_db")}),
            ("model", {**pooled, "region": region.get("snr_denoised_db")}),
            (f"Gaussian σ={sigma:g}" if sigma is not None else "Gaussian",
             {**gauss, "region": region.get("snr_gaussian_db")})]


def truthless_summary_lines(report: Mapping[str, Any]) -> list[str]:
    """Return the table of split-frame and region-pair SNR that ``cryoden evaluate`` prints.

    Parameters
    ----------
    report
        A report with a ``split_frame`` and/or ``region_snr`` block.

    Returns
    -------
    list of str
        A header, one row each for the raw input, the model and the Gaussian baseline (dB, and
        ``var_B/var_S``; ``-`` where not measured), and a line saying what was measured.
    """
    columns = TRUTHLESS_COLUMNS
    lines = [f"{'':>16}" + "".join(f" {name:>12}" for name, _ in columns)]
    lines += [f"{label:>16}" + "".join(f" {format_truthless(row.get(key), key):>12}"
                                      for _, key in columns)
              for label, row in truthless_rows(report)]
    lines.append(measured_line(report) + " (docs/metrics.md)")
    return lines


def format_truthless(value: Any, key: str) -> str:
    """Format a value of :func:`truthless_rows`: ``-`` when missing, dB or a plain ratio."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value:.3f}" if key == "bias_ratio" else f"{value:.2f} dB"


def measured_line(report: Mapping[str, Any]) -> str:
    """Return what the truthless blocks of ``report`` measured, in one line."""
    split, region = report.get("split_frame") or {}, report.get("region_snr")
    parts = []
    if split:
        parts.append(f"split-frame: {len(split['micrographs'])} even/odd pair(s), "
                     f"{split['pooled']['n_patches']} patches of {split['patch_size']} px")
    if region:
        parts.append(f"region-pair: {region['pooled']['n_pairs']} box pairs of "
                     f"{region['pooled']['box_size']} px on {region['images']}")
    return "; ".join(parts)
