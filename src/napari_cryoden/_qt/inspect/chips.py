"""The Inspect widget's checklist chips: one coloured verdict per item, details in its tooltip."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QHBoxLayout, QLabel

__all__ = ["show_chips"]

_VERDICT = {True: ("✓", "#2e7d32"), False: ("✗", "#c62828"), None: ("–", "#616161")}


def show_chips(row: QHBoxLayout, checklist: Sequence[Mapping[str, Any]]) -> None:
    """Replace the chips in ``row`` by one per checklist item.

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
    for item in checklist:
        mark, colour = _VERDICT[item["passed"]]
        chip = QLabel(f"{item['id']} {mark}")
        chip.setAlignment(Qt.AlignmentFlag.AlignCenter)
        chip.setStyleSheet(f"background:{colour}; color:white; border-radius:4px; "
                           "padding:2px 6px; font-weight:bold;")
        chip.setToolTip(_chip_tooltip(item))
        row.addWidget(chip)


def _chip_tooltip(item: Mapping[str, Any]) -> str:
    verdict = {True: "PASS", False: "FAIL", None: "not judged"}[item["passed"]]
    lines = [f"<b>{item['id']}. {item['check']}: {verdict}</b>", f"measure: {item['measure']}",
             f"value: {_format_value(item['value'])}", f"need: {item['threshold']}"]
    if item.get("note"):
        lines.append(f"note: {item['note']}")
    return "<br>".join(lines)


def _format_value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_format_value(v)}" for k, v in value.items() if v is not None)
    return "–" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
