"""The Inspect widget's layout: a form on top, then table and plot in a splitter, all scrolling.

The panel sits in a :class:`~qtpy.QtWidgets.QScrollArea`, so that on a 1366×768 screen it
scrolls instead of pushing napari's window off the screen; the splitter's parts never collapse,
and the table keeps room for :data:`TABLE_MIN_ROWS` rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLayout, QScrollArea, QSplitter, QTableWidget, QVBoxLayout, QWidget

__all__ = ["TABLE_MIN_ROWS", "scrolling_panel"]

TABLE_MIN_ROWS = 5
"""The table never shrinks below this many rows."""


def scrolling_panel(top: Sequence[QWidget], table: QTableWidget,
                    bottom: Sequence[QWidget | QLayout]) -> QScrollArea:
    """Stack ``top``, then ``table`` over ``bottom`` in a splitter, in a vertical scroll area."""
    lower = QWidget()
    box = QVBoxLayout(lower)
    box.setContentsMargins(0, 0, 0, 0)
    for part in bottom:
        if isinstance(part, QLayout):
            box.addLayout(part)
        else:
            box.addWidget(part, stretch=1 if part is bottom[-1] else 0)
    header = table.horizontalHeader()
    rows = table.verticalHeader()
    row_height = rows.defaultSectionSize() if rows is not None else 22
    header_height = header.sizeHint().height() if header is not None else 24
    table.setMinimumHeight(header_height + TABLE_MIN_ROWS * row_height + 4)
    splitter = QSplitter(Qt.Orientation.Vertical)
    splitter.setChildrenCollapsible(False)
    splitter.addWidget(table)
    splitter.addWidget(lower)
    splitter.setSizes([220, 420])
    content = QWidget()
    column = QVBoxLayout(content)
    for part in top:
        column.addWidget(part)
    column.addWidget(splitter, stretch=1)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(content)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return scroll
