"""Checklist items judged without a clean target, from the split-frame and region-pair SNR.

They extend the seed's ten items (:mod:`.checklist`) with ids 11–13, in the same form (``id``,
``check``, ``measure``, ``value``, ``threshold``, ``passed``, ``note``), so
:func:`~napari_cryoden.evaluation.checklist.format_checklist` prints them alike. docs/checklist.md
gives the reasons for the thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["TRUTHLESS_THRESHOLDS", "truthless_checklist"]

TRUTHLESS_THRESHOLDS = {
    "min_split_gain_db": 0.0,  # denoised split-frame SNR above the raw halves'
    "max_bias_ratio": 0.25,  # var_B / var_S: at most a quarter of the signal variance distorted
    "min_region_gain_db": 0.0,  # region-pair SNR of the denoised image above the raw one
}
_T = TRUTHLESS_THRESHOLDS


def _item(n: int, check: str, measure: str, value: Any, threshold: str,
          passed: bool | None, note: str | None = None) -> dict[str, Any]:
    return {"id": n, "check": check, "measure": measure, "value": value,
            "threshold": threshold, "passed": passed, "note": note}


def truthless_checklist(split_frame: Mapping[str, Any] | None,
                        region: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Judge the split-frame and region-pair blocks of a report (``None``: not measured).

    Parameters
    ----------
    split_frame
        The report's ``split_frame`` block
        (:meth:`~napari_cryoden.evaluation.truthless.SplitFrameReport.to_json`), or ``None``.
    region
        The report's ``region_snr`` block, or ``None``.

    Returns
    -------
    list of dict
        Items 11 (split-frame SNR gain), 12 (``var_B/var_S``) and 13 (region-pair SNR gain),
        each ``passed=None`` with a note when its measure is missing.
    """
    pooled = (split_frame or {}).get("pooled")
    gaussian = (split_frame or {}).get("gaussian") or {}
    return [_split_gain(pooled), _bias(pooled, gaussian), _region(region)]


def _split_gain(pooled: Mapping[str, Any] | None) -> dict[str, Any]:
    check, threshold = "Split-frame SNR rises with denoising", f"> {_T['min_split_gain_db']} dB"
    measure = "SNR_denoised − SNR_raw_half (split-frame, pooled), dB"
    if not pooled:
        return _item(11, check, measure, None, threshold, None, "needs --even/--odd")
    gain = pooled.get("gain_db")
    ok = gain is not None and math.isfinite(gain) and gain > _T["min_split_gain_db"]
    value = {"snr_raw_half_db": pooled.get("snr_raw_half_db"),
             "snr_denoised_db": pooled.get("snr_denoised_db"), "gain_db": gain}
    return _item(11, check, measure, value, threshold, ok)


def _bias(pooled: Mapping[str, Any] | None, gaussian: Mapping[str, Any]) -> dict[str, Any]:
    check = "Denoising keeps the signal (var_B/var_S)"
    measure = "var_B / var_S: variance of the distorted signal over the signal's (split-frame)"
    threshold = f"<= {_T['max_bias_ratio']}"
    if not pooled:
        return _item(12, check, measure, None, threshold, None, "needs --even/--odd")
    ratio = pooled.get("bias_ratio")
    ok = ratio is not None and math.isfinite(ratio) and ratio <= _T["max_bias_ratio"]
    value = {"bias_ratio": ratio, "gaussian_bias_ratio": gaussian.get("bias_ratio"),
             "gaussian_sigma": gaussian.get("sigma")}
    return _item(12, check, measure, value, threshold, ok,
                 None if ok else "the denoiser smooths away or distorts signal")


def _region(region: Mapping[str, Any] | None) -> dict[str, Any]:
    check = "Region-pair SNR rises with denoising"
    measure = "region-pair SNR of denoised − raw (pooled pairs), dB; Gaussian shown, not judged"
    threshold = f"> {_T['min_region_gain_db']} dB"
    if not region:
        return _item(13, check, measure, None, threshold, None, "needs --picks")
    pooled = region["pooled"]
    raw, den = pooled.get("snr_raw_db"), pooled.get("snr_denoised_db")
    gain = den - raw if raw is not None and den is not None else None
    ok = gain is not None and math.isfinite(gain) and gain > _T["min_region_gain_db"]
    value = {"gain_db": gain, "snr_gaussian_db": pooled.get("snr_gaussian_db"),
             "gaussian_sigma": pooled.get("gaussian_sigma")}
    return _item(13, check, measure, value, threshold, ok,
                 "region-pair SNR rewards plain smoothing: read it with item 12")
