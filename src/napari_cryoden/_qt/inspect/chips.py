"""The Inspect widget's checklist chips: one coloured verdict and a few words per item, and a
tooltip that says what was checked, the measured value, what was needed (the seed's absolute
threshold) and how the item compares with the baselines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QGridLayout, QLabel

__all__ = ["show_chips", "show_guard_warnings", "smoothing_note", "warnings_html"]

_VERDICT = {True: ("✓", "#2e7d32"), False: ("✗", "#c62828"), None: ("–", "#616161")}
SHORT = {1: "loss smooth", 2: "val ≈ train loss", 3: "test ≈ val MSE", 4: "correlation",
         5: "brightness", 6: "45° scatter", 7: "beats noisy & Gaussian", 8: "even across patches",
         9: "PSNR > 20 dB", 10: "no artifacts", 11: "split-frame SNR rises",
         12: "keeps the signal", 13: "region SNR rises"}
"""A few words per checklist item (:data:`~napari_cryoden.evaluation.checklist.SEED_CHECKLIST`, then
the items judged without a clean image, :mod:`napari_cryoden.evaluation.truthless_checks`)."""
COLUMNS = 2


def show_chips(row: QGridLayout, checklist: Sequence[Mapping[str, Any]]) -> None:
    """Replace the chips in ``row`` by one per checklist item, :data:`COLUMNS` to a row.

    Parameters
    ----------
    row
        The layout holding the chips.
    checklist
        Items of :func:`napari_cryoden.evaluation.checklist.run_checklist`.
    """
    while row.count():
        taken = row.takeAt(0)
        widget = taken.widget() if taken is not None else None
        if widget is not None:
            widget.deleteLater()
    for n, item in enumerate(checklist):
        mark, colour = _VERDICT[item["passed"]]
        chip = QLabel(f"{mark} {item['id']} · {SHORT.get(item['id'], item['check'])}")
        chip.setAlignment(Qt.AlignmentFlag.AlignCenter)
        chip.setWordWrap(True)  # a narrow dock wraps the words instead of cutting them off
        chip.setStyleSheet(f"background:{colour}; color:white; border-radius:4px; "
                           "padding:2px 6px; font-weight:bold;")
        chip.setToolTip(_chip_tooltip(item))
        row.addWidget(chip, n // COLUMNS, n % COLUMNS)


def _chip_tooltip(item: Mapping[str, Any]) -> str:
    verdict = {True: "PASS", False: "FAIL", None: "not judged"}[item["passed"]]
    lines = [f"<b>{item['id']}. {item['check']}: {verdict}</b>",
             f"checked: {item['measure']}", f"measured: {_format_value(item['value'])}",
             f"needed: {item['threshold']}"]
    if item.get("note"):
        lines.append(f"note: {item['note']}")
    relative = item.get("relative") or {}
    if relative.get("passed") is not None:
        word = "at least as good" if relative["passed"] else "worse"
        lines.append(f"against the baselines: {word} ({relative['measure']}: "
                     f"{_format_value(relative['value'])})")
    return "<br>".join(lines)


def _format_value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_format_value(v)}" for k, v in value.items() if v is not None)
    return "–" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def smoothing_note(metadata: Any) -> str:
    """Say that a denoised layer was smoothed after the model, from its metadata ("" if not).

    The Denoise panel records its Smoothing on the layer (``smooth_sigma_px``,
    ``smooth_where``, ``smooth_keep_detail``); Inspect scores the layer as it is, so its user is
    told that the scores are of the smoothed look, not of the model alone.
    """
    from napari_cryoden.inference.smoothing import Smoothing

    try:
        sigma = float((metadata or {}).get("smooth_sigma_px") or 0.0)
        smoothing = Smoothing(sigma, float(metadata.get("smooth_keep_detail") or 0.0),
                              str(metadata.get("smooth_where") or "everywhere"))
    except (AttributeError, TypeError, ValueError):
        return ""
    if not smoothing:
        return ""
    return (f"\nThis denoised layer was smoothed after the model ({smoothing.describe()}, "
            "recorded on the layer): the scores are of that look. Denoise with Smoothing 0 to "
            "judge the model alone.")


def warnings_html(warnings: Sequence[str], summary: str) -> str:
    """The summary under a bold red "Check the weights:" list of the scramble guards' warnings."""
    import html

    lines = "".join(f"<br>⚠ {html.escape(w)}" for w in warnings)
    return (f"<span style='color:#e03c31; font-weight:bold'>Check the weights:{lines}</span>"
            f"<br>{html.escape(summary)}")


def show_guard_warnings(summary: QLabel, warnings: Sequence[str]) -> None:
    """Scramble guards (r <= 0, worse than the noisy input): a notification each and the
    summary in red, so that a wrong raw layout cannot pass unnoticed."""
    from napari.utils.notifications import show_warning

    for warning in warnings:
        show_warning(f"Check the weights: {warning}")
    if warnings:
        summary.setText(warnings_html(warnings, summary.text()))
