"""A vertical scroll area for a dock panel: it scrolls up and down, and is never narrower than
its content (a hidden horizontal scroll bar would otherwise cut the panel's right side off)."""

from __future__ import annotations

from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import QScrollArea, QWidget

__all__ = ["VerticalScrollArea", "vertical_scroll_area"]


class VerticalScrollArea(QScrollArea):
    """A scroll area whose minimum width is its content's, plus the vertical scroll bar."""

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        hint = super().minimumSizeHint()
        content, bar = self.widget(), self.verticalScrollBar()
        if content is None:
            return hint
        bar_width = bar.sizeHint().width() if bar is not None else 16
        width = content.minimumSizeHint().width() + bar_width + 2 * self.frameWidth()
        return QSize(max(hint.width(), width), hint.height())


def vertical_scroll_area(content: QWidget) -> QScrollArea:
    """Return a scroll area showing ``content``: vertical scrolling, never narrower than it."""
    scroll = VerticalScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(content)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return scroll
