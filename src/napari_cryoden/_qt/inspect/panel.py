"""The Inspect widget's layout: form, checklist and summary on top, then table and plot in a
splitter, all scrolling.

The panel sits in a :class:`~qtpy.QtWidgets.QScrollArea`, so that on a 1366×768 screen it
scrolls instead of pushing napari's window off the screen; the splitter's parts never collapse,
and the table keeps room for :data:`TABLE_MIN_ROWS` rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLayout, QScrollArea, QSplitter, QTableWidget, QVBoxLayout, QWidget

from napari_cryoden._qt.scroll import vertical_scroll_area

__all__ = ["TABLE_MIN_ROWS", "scrolling_panel"]

TABLE_MIN_ROWS = 5
"""The table never shrinks below this many rows."""


def scrolling_panel(top: Sequence[QWidget | QLayout], table: QTableWidget,
                    plot: QWidget, above: QWidget | None = None) -> QScrollArea:
    """Stack ``top``, then ``table`` over ``plot`` in a splitter, in a vertical scroll area.

    ``above`` (results with a figure of their own) goes into the splitter above the table.

    The parts whose height follows their width (wrapped text: the checklist chips, the
    summary) go in ``top``: a splitter sizes its parts by their minimum height, which wrapped
    text does not report, so the plot under them would run past the panel's bottom.
    """
    header = table.horizontalHeader()
    rows = table.verticalHeader()
    row_height = rows.defaultSectionSize() if rows is not None else 22
    header_height = header.sizeHint().height() if header is not None else 24
    bar = table.horizontalScrollBar()  # shown when the columns are wider than the dock
    bar_height = bar.sizeHint().height() if bar is not None else 16
    table.setMinimumHeight(header_height + TABLE_MIN_ROWS * row_height + bar_height
                           + 2 * table.frameWidth() + 2)
    splitter = QSplitter(Qt.Orientation.Vertical)
    splitter.setChildrenCollapsible(False)
    if above is not None:
        splitter.addWidget(above)
    splitter.addWidget(table)
    splitter.addWidget(plot)
    splitter.setSizes([220, 420])
    content = QWidget()
    column = QVBoxLayout(content)
    for part in top:
        if isinstance(part, QLayout):
            column.addLayout(part)
        else:
            column.addWidget(part)
    column.addWidget(splitter, stretch=1)
    return vertical_scroll_area(content)
