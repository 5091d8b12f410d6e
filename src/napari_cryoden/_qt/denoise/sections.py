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
from qtpy.QtWidgets import QSizePolicy, QVBoxLayout, QWidget
from superqt import QCollapsible

from napari_cryoden._qt.scroll import vertical_scroll_area

__all__ = ["Sections", "collapsible"]


def collapsible(title: str, content: Container[Any], tooltip: str) -> QCollapsible:
    """A collapsed section ``title`` holding ``content``; ``tooltip`` explains its header."""
    section = QCollapsible(title)
    section.addWidget(content.native)
    section.setToolTip(tooltip)
    return section


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
        self.scroll_area = vertical_scroll_area(column)
        self.native.layout().setContentsMargins(0, 0, 0, 0)
        self.native.layout().addWidget(self.scroll_area)

    def add_section(self, section: QWidget) -> QWidget:
        """Append ``section`` (e.g. a :func:`collapsible`) below the existing ones; return it."""
        self._column.insertWidget(self._column.count() - 1, section)
        return section
