"""The Denoise panel's layout: its everyday rows up front, then collapsed sections, all scrolling.

:class:`Sections` fills the panel with a vertical scroll area (:mod:`napari_cryoden._qt.scroll`),
so that with every section open it scrolls instead of pushing the window off a 1366×768 screen;
rows keep their minimum heights. A section is a :class:`superqt.QCollapsible`, collapsed until
the user opens it; :func:`collapsible` builds one around a magicgui container, and
:meth:`Sections.add_section` appends any such section below the ones already there.
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import Container
from qtpy.QtCore import QEvent, QObject, QSize, Qt
from qtpy.QtWidgets import QSizePolicy, QVBoxLayout, QWidget
from superqt import QCollapsible

from napari_cryoden._qt.scroll import VerticalScrollArea

__all__ = ["PanelScrollArea", "Sections", "collapsible", "wrap_text"]


def collapsible(title: str, content: Container[Any], tooltip: str) -> QCollapsible:
    """A collapsed section ``title`` holding ``content``; ``tooltip`` explains its header."""
    section = QCollapsible(title)
    section.addWidget(content.native)
    section.setToolTip(tooltip)
    return section


def wrap_text(label: Any) -> None:
    """Let a magicgui ``Label`` wrap its text and fill its row.

    A wrapping label keeps its natural width, and the row then centres it and its row label
    in the free space, out of line with the rows above.
    """
    label.native.setWordWrap(True)
    label.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)


class PanelScrollArea(VerticalScrollArea):
    """A vertical scroll area as tall as its content, never shorter than the everyday rows.

    napari squeezes a dock to its minimum when it docks another panel below it (Train): the rows
    up to *Compare* stay in sight then, and only the sections scroll. It asks for its content's
    height and does not expand, so the panel below gets the rest of the column.
    """

    def __init__(self, column: QWidget, main: QWidget) -> None:
        super().__init__()
        self._main = main
        self.setWidgetResizable(True)
        self.setWidget(column)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # not expanding: a dock docked below (Train) gets the height this panel does not show
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        hint, column = super().sizeHint(), self.widget()
        if column is None:
            return hint
        return QSize(hint.width(), column.sizeHint().height() + 2 * self.frameWidth())

    def eventFilter(self, watched: QObject | None, event: QEvent | None) -> bool:  # noqa: N802
        if (watched is self.widget() and event is not None
                and event.type() == QEvent.Type.LayoutRequest):
            self.updateGeometry()  # a section opened or closed: the panel asks for a new height
        return super().eventFilter(watched, event)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        hint = super().minimumSizeHint()
        rows = self._main.sizeHint().height() + 2 * self.frameWidth()
        return QSize(hint.width(), max(hint.height(), rows))


class Sections:
    """Mixin of the Denoise panel: a scrolling column of the main rows and collapsed sections.

    The panel provides ``native`` (the magicgui container's widget, still empty of rows).
    """

    native: Any

    def _lay_out(self, main: Container[Any]) -> None:
        """Put ``main`` (the everyday rows) at the top of a scroll area filling the panel."""
        column = QWidget()
        # never shorter than its natural height: a row's reported minimum can be a few px short
        column.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self._column = QVBoxLayout(column)
        self._column.setContentsMargins(0, 0, 0, 0)
        self._column.addWidget(main.native)
        self._column.addStretch(1)  # sections sit under the rows, not spread over the panel
        self.scroll_area = PanelScrollArea(column, main.native)
        self.native.layout().setContentsMargins(0, 0, 0, 0)
        self.native.layout().addWidget(self.scroll_area)

    def add_section(self, section: QWidget) -> QWidget:
        """Append ``section`` (e.g. a :func:`collapsible`) below the existing ones; return it."""
        self._column.insertWidget(self._column.count() - 1, section)
        return section

