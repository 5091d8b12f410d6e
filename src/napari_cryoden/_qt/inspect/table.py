"""The Inspect widget's per-patch table: one row per patch, one column per metric, sortable.

The metric columns come from :data:`napari_cryoden.evaluation.metrics.METRICS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem

from napari_cryoden.evaluation.inspection import PatchAnalysis
from napari_cryoden.evaluation.metrics import METRICS

__all__ = ["COLUMNS", "build_table", "fill_table"]

COLUMNS = [("patch #", None, "{:.0f}"), ("y", "y", "{:.0f}"), ("x", "x", "{:.0f}"),
           *[(m.label, m.key, m.fmt) for m in METRICS], ("noisy RMSE", "noisy_rmse", "{:.4f}")]
_COLUMN_TIPS = ("patch number (row-major)", "top row (px)", "left column (px)",
                *[f"{m.description}, denoised vs clean "
                  f"({'higher' if m.higher_is_better else 'lower'} is better)" for m in METRICS],
                "RMSE of the noisy input vs clean")


class _NumberItem(QTableWidgetItem):
    """A read-only cell that shows a formatted number and sorts by its value (NaN last)."""

    def __init__(self, value: float, fmt: str) -> None:
        super().__init__("" if math.isnan(value) else fmt.format(value))
        self.setData(Qt.ItemDataRole.UserRole, float(value))
        self.setFlags(Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a, b = self.data(Qt.ItemDataRole.UserRole), other.data(Qt.ItemDataRole.UserRole)
        return (not math.isnan(a)) and (math.isnan(b) or a < b)


def build_table(on_select: Callable[[], None]) -> QTableWidget:
    """Return an empty table of :data:`COLUMNS` that calls ``on_select`` when a row is chosen.

    Parameters
    ----------
    on_select
        Connected to the table's ``itemSelectionChanged``.

    Returns
    -------
    QTableWidget
        Single-row selection, header tooltips, sortable once filled.
    """
    table = QTableWidget(0, len(COLUMNS))
    table.setHorizontalHeaderLabels([c[0] for c in COLUMNS])
    for j, tip in enumerate(_COLUMN_TIPS):
        item = table.horizontalHeaderItem(j)
        assert item is not None  # made by setHorizontalHeaderLabels above
        item.setToolTip(tip)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    columns, rows = table.horizontalHeader(), table.verticalHeader()
    assert columns is not None and rows is not None  # a table view always has both headers
    rows.setVisible(False)
    columns.setSortIndicatorShown(True)
    rows.setDefaultSectionSize(22)
    columns.setStretchLastSection(True)
    table.setToolTip("Click a column header to sort; click a row to go to its patch.")
    table.itemSelectionChanged.connect(on_select)
    return table


def fill_table(table: QTableWidget, analysis: PatchAnalysis) -> None:
    """Show one row per patch of ``analysis`` (the noisy column only when it was given).

    Parameters
    ----------
    table
        A table from :func:`build_table`.
    analysis
        The patch rows to show.
    """
    table.setSortingEnabled(False)
    table.clearContents()
    table.setRowCount(len(analysis.rows))
    for i, row in enumerate(analysis.rows):
        for j, (_, key, fmt) in enumerate(COLUMNS):
            value = i if key is None else row.get(key, math.nan)
            table.setItem(i, j, _NumberItem(float(value), fmt))
    table.setColumnHidden(len(COLUMNS) - 1, not analysis.has_noisy)
    table.resizeColumnsToContents()
    for j in range(len(COLUMNS) - 1):  # room for the sort arrow next to each header
        table.setColumnWidth(j, table.columnWidth(j) + 4)
    table.setSortingEnabled(True)
    table.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # patch 0 first, not Qt's last-first
